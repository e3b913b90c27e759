#!/bin/sh
# SPDX-License-Identifier: MIT
# A cohort on a Slurm cluster: N shard tasks (a job array) and the merge
# that waits for all of them. Prints the two job ids.
#   tools/slurm/submit.sh N OUT INGEST_ARGS...
# e.g. tools/slurm/submit.sh 16 /shared/nih --nih Data_Entry_2017.csv --images /shared/nih/images
# OUT and the inputs must be on a file system every node sees. Extra sbatch
# options (partition, time, account) go in $SBATCH_OPTS; the cxrtrack to
# run in $CXRTRACK (default: the one on PATH).
set -eu
[ $# -ge 3 ] || { echo "usage: $0 N OUT INGEST_ARGS..." >&2; exit 2; }
N=$1 OUT=$2
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
# shellcheck disable=SC2086 # SBATCH_OPTS is a list of options
A=$(sbatch --parsable ${SBATCH_OPTS:-} --array=1-"$N" --output="$OUT/logs/shard-%a.log" \
  "$HERE/shard.sbatch" "$N" "$OUT" "$@")
A=${A%%;*}
# shellcheck disable=SC2086
M=$(sbatch --parsable ${SBATCH_OPTS:-} --dependency=afterok:"$A" --output="$OUT/logs/merge.log" \
  "$HERE/merge.sbatch" "$N" "$OUT")
M=${M%%;*}
echo "shards: job $A (array 1-$N), merge: job $M (after all shards succeed)"
echo "result: $OUT/cohort.sqlite; logs: $OUT/logs/"
