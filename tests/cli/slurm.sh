#!/bin/sh
# SPDX-License-Identifier: MIT
# The cohort on a real Slurm cluster: a one-node cluster started here from
# Debian's slurmctld, slurmd and munge (own key, socket, ports and state
# under a temporary folder; nothing of the machine's is touched), the
# job array of tools/slurm/submit.sh over sample/ and a copy of it under
# new ids, the merge job after it, and the merged store compared row for
# row with the store built in one go. Without the Slurm packages, or when
# the daemons cannot start here, it says why and skips (exit 77); it can
# be run by hand: CXRTRACK=build/src/cxrtrack sh tests/cli/slurm.sh
set -eu
: "${CXRTRACK:?}"
X=$CXRTRACK
SRC=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
for b in munged munge slurmctld slurmd sbatch squeue sinfo scancel; do
  command -v $b >/dev/null 2>&1 || skip "$b is not installed (apt-get install slurmctld slurmd slurm-client munge)"
done
[ "$(id -u)" = 0 ] || skip "the one-node cluster runs its daemons as root"
T=$(mktemp -d)
export SLURM_CONF="$T/slurm.conf" CXR_NO_PROGRESS=1
cleanup() {
  scancel --quiet --user=root 2>/dev/null || true
  for p in slurmd slurmctld munged; do
    [ -f "$T/$p.pid" ] && kill "$(cat "$T/$p.pid")" 2>/dev/null || true
  done
  sleep 1
  rm -rf "$T"
}
trap cleanup EXIT
logs() { for f in "$T"/*.log; do echo "== $f"; tail -20 "$f"; done; }

# munge: a key of our own, its own socket
dd if=/dev/urandom of="$T/munge.key" bs=1024 count=1 2>/dev/null
chmod 600 "$T/munge.key"
munged --force --key-file="$T/munge.key" --socket="$T/munge.sock" --pid-file="$T/munged.pid" \
  --log-file="$T/munged.log" --seed-file="$T/munge.seed" 2>"$T/munged.err" \
  || { cat "$T/munged.err"; skip "munged does not start here"; }
PORT=$((20000 + ($$ % 5000) * 2))
H=$(hostname -s)
mkdir -p "$T/state" "$T/spool"
cat > "$T/slurm.conf" <<CONF
ClusterName=cxrtest
SlurmctldHost=$H
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge.sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
NodeName=$H CPUs=$(nproc) State=UNKNOWN
PartitionName=cxr Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -f "$T/slurm.conf" -i 2>"$T/slurmctld.err" || { cat "$T/slurmctld.err"; logs; skip "slurmctld does not start here"; }
slurmd -f "$T/slurm.conf" 2>"$T/slurmd.err" || { cat "$T/slurmd.err"; logs; skip "slurmd does not start here"; }
i=0
until [ "$(sinfo -h -o %T 2>/dev/null | head -1)" = idle ]; do
  i=$((i + 1))
  [ $i -lt 60 ] || { sinfo 2>&1 || true; logs; skip "the node did not come up in 30 s"; }
  sleep 0.5
done
echo "slurm: one-node cluster up ($H, ports $PORT-$((PORT + 1)))"

# the cohort (three of sample/'s patients and a copy of them, as in
# tests/cli/shards.sh: quick under ASan on a loaded machine), and the
# store built in one go
python3 "$SRC/tools/replicate_manifest.py" "$SRC/sample/manifest.csv" 1 \
  | awk -F, '$2 != "1543" && $2 != "r01_1543"' > "$T/cohort.csv"
"$X" ingest --db "$T/one.sqlite" --manifest "$T/cohort.csv" > "$T/one.out" 2>&1 || { cat "$T/one.out"; fail ingest; }
"$X" analyze --db "$T/one.sqlite" >> "$T/one.out" 2>&1 || { cat "$T/one.out"; fail analyze; }

# the same on the cluster: 3 shard tasks, then the merge
cd "$T"
export CXRTRACK="$X"
sh "$SRC/tools/slurm/submit.sh" 3 "$T/run" --manifest "$T/cohort.csv" > "$T/submit.out" 2>&1 \
  || { cat "$T/submit.out"; fail "sbatch refused the jobs"; }
cat "$T/submit.out"
i=0
while [ -n "$(squeue -h 2>/dev/null)" ]; do
  i=$((i + 1))
  [ $i -lt 1200 ] || { squeue; logs; fail "jobs still queued after 600 s"; }
  sleep 0.5
done
for f in "$T"/run/logs/*.log; do echo "== $f"; cat "$f"; done
[ -f "$T/run/cohort.sqlite" ] || { logs; fail "the merge job made no store"; }
for k in 1 2 3; do
  grep -q "analyze:" "$T/run/logs/shard-$k.log" || fail "shard $k did not analyze"
done
grep -q "progression: .* patients flagged" "$T/run/logs/merge.log" || fail "the merge did not flag"
sh "$SRC/tools/store_rows.sh" "$X" "$T/one.sqlite" > "$T/one.rows"
sh "$SRC/tools/store_rows.sh" "$X" "$T/run/cohort.sqlite" > "$T/slurm.rows"
diff "$T/one.rows" "$T/slurm.rows" > "$T/diff" || { head -20 "$T/diff"; fail "the cluster's store differs from the one built in one go"; }
echo "slurm: merged store of 3 array tasks = the store built in one go ($(grep -c . "$T/one.rows") lines)"
