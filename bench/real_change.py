#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Real change on real series: how well cxrtrack's pair signals and flags
separate the NIH follow-up pairs whose labels changed from those whose did
not, on the dev patients of ../shared/data/nih/series1024.

The NIH labels are text-mined from the radiology reports (Wang et al.
2017): noisy, and a label set that "changes" between two films may only
reflect how the report was worded. They are the only truth at hand; read
every figure here with that in mind. The CheXNet reference probabilities
(chexnet_reference_preds.csv, a DenseNet-121 re-implementation with mean
AUROC about 0.84) give the ceiling a strong classifier reaches on the pairs
where both films have them.

Pairs: each film against the patient's previous frontal film of the same
view kind (PA with PA, AP with AP), as analyze's 'previous' rows, in visit
order. A pair is CHANGED when its label sets differ ('No Finding' counting
as empty), STABLE when they are identical.

For every stored signal of a pair: its CHANGED-vs-STABLE AUROC, a 95 %
bootstrap interval over patients (patients resampled, not pairs: a
patient's pairs are not independent), and its coverage (pairs that have
it). How ill a patient is decides most of what the labels call CHANGED (a
film with findings is reported again in other words, one without is "No
Finding" again), so the table also has yardsticks that carry no change
(how ill both films look; how many follow-ups apart they are) and, for
every signal, its AUROC within thirds of that illness yardstick and within
patient: a signal that notices change beats the yardsticks there, not only
pooled. Per finding: when it appears between two films, does its probability
rise beyond its test-retest limit, against how often that happens in
stable pairs. Per patient: gained a finding (in any later film) or not,
against flagged (slow_progression, acute_change or unconfirmed_change on
any signal) or not.

The pipeline runs on a fresh store: the full NIH metadata ingested with
the series1024 films, then `cxrtrack analyze` with its defaults (or the
options after --). Also printed: the share of each pair's change score
that lies in the outer 12 % band of the thorax window's box (shoulders,
arms, neck, chest wall: where misalignment, not disease, shows).

Another set of patients is checked the same way with --images DIR (their
films, NIH file names) and, if their rows are not in the full NIH metadata,
--nih CSV (Data_Entry_2017 columns); the CheXNet rows and the classifier's
training split are looked up by image name and patient id as for the dev
set (patients not in train256 count as never seen).

--train256-series does that for the train256 patients outside series1024
with two films or more there (83 patients, 59 same-view pairs, 256 px):
patients other than the dev ones for the pixel measures; the default
classifier was trained on most of their films, so its signals are
flattered there (its "unseen" column is the 16 it never saw).

Usage: bench/real_change.py [--build DIR] [--db PATH] [--reuse] [--patients FILE]
                            [--images DIR | --train256-series] [--nih CSV]
                            [-- analyze options...]
"""
import csv, hashlib, os, random, sqlite3, subprocess, sys, tempfile, time

import numpy as np

from nihsets import unseen_train256


def read_map(path, scale):
    """A stored difference map as |d|-ready floats, 0 where nothing was
    compared: an 8-bit PNG with its scale (schema 0015), or a float16 .npy
    of older stores."""
    if path.endswith(".npy"):
        return np.load(path).astype(np.float32)
    import cv2  # python3-opencv
    v = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.float32)
    return np.where(v > 0, (v - 128) * float(scale), 0).astype(np.float32)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
D = os.path.join(ROOT, "..", "shared", "data", "nih")


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def auroc(pos, neg):
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    ranks = np.empty(len(allv))
    order = np.argsort(allv, kind="mergesort")
    sv = allv[order]
    i = 0
    while i < len(sv):  # average ranks of ties
        j = i
        while j + 1 < len(sv) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    rp = ranks[:len(pos)].sum()
    return (rp - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def strat_auroc(pairs, value, key):
    """The chance that a CHANGED pair outranks a STABLE pair of the same
    stratum (key(pair)): each stratum's AUROC weighted by its number of
    CHANGED x STABLE comparisons (van Elteren's weights). What a signal
    earns by telling one stratum from another does not count."""
    by = {}
    for p in pairs:
        v = value(p)
        if v is not None:
            by.setdefault(key(p), ([], []))[0 if p["changed"] else 1].append(v)
    num = den = 0.0
    for pos, neg in by.values():
        if pos and neg:
            w = len(pos) * len(neg)
            num += w * auroc(pos, neg)
            den += w
    return num / den if den else float("nan")


def pooled_auroc(pairs, value):
    return auroc([v for p in pairs if p["changed"] for v in [value(p)] if v is not None],
                 [v for p in pairs if not p["changed"] for v in [value(p)] if v is not None])


def bootstrap(pairs, value, stat=pooled_auroc, reps=1000, seed=1):
    """95 % interval of stat(pairs, value), resampling patients (a patient
    drawn twice counts as two patients)."""
    rng = random.Random(seed)
    by = {}
    for p in pairs:
        by.setdefault(p["patient"], []).append(p)
    pats = sorted(by)
    out = []
    for _ in range(reps):
        sample = [dict(p, patient=(pid, j)) for j, pid in enumerate(rng.choice(pats) for _ in pats)
                  for p in by[pid]]
        a = stat(sample, value)
        if a == a:
            out.append(a)
    if not out:
        return float("nan"), float("nan")
    return float(np.percentile(out, 2.5)), float(np.percentile(out, 97.5))


def within(key):
    """stat for bootstrap: strat_auroc over the strata key(pair)."""
    return lambda pairs, value: strat_auroc(pairs, value, key)


def labels_of(text):
    return frozenset(x for x in (text or "").split("|") if x and x != "No Finding")


def main():
    build = arg("--build", os.path.join(ROOT, "build"))
    X = os.path.join(build, "src", "cxrtrack")
    extra = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    subprocess.run(["sh", os.path.join(HERE, "machine.sh")])
    print("NIH labels are text-mined and noisy: CHANGED/STABLE below is the labels' word, not a "
          "radiologist's reading of the pair.\n")
    db = arg("--db")
    tmp = None
    if db is None:
        tmp = tempfile.mkdtemp(prefix="cxr-real-")
        db = os.path.join(tmp, "s.sqlite")
    images = arg("--images", os.path.join(D, "series1024"))
    if "--train256-series" in sys.argv:
        images = os.path.join(tmp or tempfile.mkdtemp(prefix="cxr-real-"), "train256-series")
        os.makedirs(images, exist_ok=True)
        for n in unseen_train256(D):
            if not os.path.exists(os.path.join(images, n)):
                os.symlink(os.path.abspath(os.path.join(D, "train256", n)), os.path.join(images, n))
    if not ("--reuse" in sys.argv and os.path.exists(db)):
        t0 = time.time()
        subprocess.run([X, "ingest", "--db", db, "--nih", arg("--nih", os.path.join(D, "Data_Entry_2017_v2020.csv.gz")),
                        "--images", images,
                        # another set may well be a folder of links into an archive
                        "--follow-symlinks"],
                       check=True, stdout=subprocess.DEVNULL)
        r = subprocess.run([X, "analyze", "--db", db] + extra, check=True, capture_output=True, text=True)
        print(r.stdout.strip())
        print(f"(ingest + analyze {time.time() - t0:.0f} s)\n")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    keep = None
    if arg("--patients"):
        keep = {l.strip() for l in open(arg("--patients")) if l.strip()}

    # films and pairs
    films = {}
    for r in con.execute("SELECT scan_id, image_index, patient_id, visit, view_kind, finding_labels"
                         " FROM frontal_scans ORDER BY patient_id, visit"):
        if keep and r["patient_id"] not in keep:
            continue
        films[r["scan_id"]] = dict(r)
    by_pat = {}
    for f in films.values():
        by_pat.setdefault(f["patient_id"], []).append(f)
    chex = {}
    cpath = os.path.join(D, "chexnet_reference_preds.csv")
    for r in csv.DictReader(open(cpath)):
        chex[r["Image Index"]] = np.array([float(v) for k, v in r.items() if k.startswith("prob_")])
    findings = None
    model = con.execute("SELECT model_id, classes FROM models WHERE architecture NOT IN ('cxr-lungnet', 'cxr-brixia-ridge')"
                        " ORDER BY model_id DESC LIMIT 1").fetchone()
    probs = {}
    if model:
        findings = model["classes"].split("|")
        for r in con.execute("SELECT scan_id, finding, probability FROM predictions WHERE model_id = ?",
                             (model["model_id"],)):
            probs.setdefault(r[0], {})[r[1]] = r[2]
    limits = {}
    if model:
        limits = dict(con.execute("SELECT signal, limit_value FROM retest_limits WHERE model_id = ?",
                                  (model["model_id"],)).fetchall())
    # the limit a flag uses: the larger of the retest and visit-to-visit limits
    flag_limits = {}
    if model:
        flag_limits = dict(con.execute("SELECT signal, max(limit_value, coalesce(visit_limit, 0))"
                                       " FROM retest_limits WHERE model_id = ?", (model["model_id"],)).fetchall())
    emb = {}
    if model:
        for r in con.execute("SELECT scan_id, vector FROM embeddings WHERE model_id = ?", (model["model_id"],)):
            emb[r[0]] = np.frombuffer(r[1], "<f4")
    # the Brixia global of each film whose zones are plausible (latest head)
    brixia = {}
    if con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'film_severity'").fetchone()[0]:
        for r in con.execute("SELECT scan_id, global FROM film_severity WHERE status = 'ok'"
                             " ORDER BY model_id"):
            brixia[r[0]] = r[1]
    lungs, lung_mask = {}, {}
    if con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'lung_fields'").fetchone()[0]:
        for r in con.execute("SELECT scan_id, right_area_px + left_area_px, status, mask_path FROM lung_fields"):
            lungs[r[0]] = (r[1], r[2])
            if r[2] == "ok" and r[3]:
                lung_mask[r[0]] = r[3]
    changes = {}
    cols = [c[1] for c in con.execute("PRAGMA table_info(pair_changes)")]
    for r in con.execute("SELECT c.*, r.status AS reg_status FROM pair_changes c JOIN registrations r"
                         " USING (fixed_scan_id, moving_scan_id, kind) WHERE c.kind = 'previous'"):
        changes[(r["fixed_scan_id"], r["moving_scan_id"])] = dict(r)
    for r in con.execute("SELECT fixed_scan_id, moving_scan_id, max(heatmap_delta_max)"
                         " FROM pair_finding_changes WHERE kind = 'previous' GROUP BY 1, 2"):
        if (r[0], r[1]) in changes:
            changes[(r[0], r[1])]["max_heatmap_rise"] = r[2]
    regs = {}
    for r in con.execute("SELECT fixed_scan_id, moving_scan_id, status FROM registrations WHERE kind = 'previous'"):
        regs[(r[0], r[1])] = r[2]
    zones = {}
    if con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'pair_change_regions'").fetchone()[0]:
        for r in con.execute("SELECT fixed_scan_id, moving_scan_id, region, area_px, change_score,"
                             " mean_d FROM pair_change_regions WHERE kind = 'previous'"):
            zones.setdefault((r[0], r[1]), []).append((r[2], r[3], r[4], r[5]))
    psig = {}
    if con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'pair_signals'").fetchone()[0] and model:
        for r in con.execute("SELECT * FROM pair_signals WHERE kind IN ('previous', 'same_view')"
                             " AND model_id = ?",
                             (model["model_id"],)):
            psig[(r["fixed_scan_id"], r["moving_scan_id"])] = dict(r)
    if con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'pair_probability_change'").fetchone()[0]:
        for r in con.execute("SELECT * FROM pair_probability_change WHERE model_id = ?", (model["model_id"],)):
            key = (r["fixed_scan_id"], r["moving_scan_id"])
            if key in psig:
                psig[key]["change_in_limits"] = r["change_in_limits"]

    pairs = []
    for pid, fs in by_pat.items():
        for view in ("PA", "AP", "unknown"):
            seq = [f for f in fs if f["view_kind"] == view]
            for a, b in zip(seq, seq[1:]):
                la, lb = labels_of(a["finding_labels"]), labels_of(b["finding_labels"])
                p = {"patient": pid, "fixed": a, "moving": b, "changed": la != lb,
                     "gained": bool(lb - la), "new": lb - la, "change": changes.get((a["scan_id"], b["scan_id"])),
                     "reg": regs.get((a["scan_id"], b["scan_id"])),
                     "psig": psig.get((a["scan_id"], b["scan_id"])),
                     "zones": zones.get((a["scan_id"], b["scan_id"]))}
                pairs.append(p)
    n_ch = sum(p["changed"] for p in pairs)
    print(f"{len(by_pat)} patients, {len(pairs)} consecutive same-view pairs: {n_ch} CHANGED, "
          f"{len(pairs) - n_ch} STABLE")
    regc = {}
    for p in pairs:
        regc[p["reg"] or "none"] = regc.get(p["reg"] or "none", 0) + 1
    print("registration status of these pairs:", ", ".join(f"{k} {v}" for k, v in sorted(regc.items())))
    print()

    def col(name):
        return lambda p: p["change"][name] if p["change"] and p["change"].get(name) is not None else None

    def prob_delta_max(p):
        a, b = probs.get(p["fixed"]["scan_id"]), probs.get(p["moving"]["scan_id"])
        if not a or not b:
            return None
        return max(abs(b[k] - a[k]) for k in a)

    def prob_rise_max(p):
        a, b = probs.get(p["fixed"]["scan_id"]), probs.get(p["moving"]["scan_id"])
        if not a or not b:
            return None
        return max(b[k] - a[k] for k in a)

    def emb_dist(p):
        a, b = emb.get(p["fixed"]["scan_id"]), emb.get(p["moving"]["scan_id"])
        if a is None or b is None:
            return None
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        return None if na == 0 or nb == 0 else float(1 - a @ b / (na * nb))

    def lung_area_change(p):
        a, b = lungs.get(p["fixed"]["scan_id"]), lungs.get(p["moving"]["scan_id"])
        if not a or not b or a[1] != "ok" or b[1] != "ok" or a[0] <= 0:
            return None
        return abs(b[0] / a[0] - 1)

    def chexnet(p):
        a, b = chex.get(p["fixed"]["image_index"]), chex.get(p["moving"]["image_index"])
        if a is None or b is None:
            return None
        return float(np.max(np.abs(b - a)))

    def stored(name, f=lambda v: v):
        return lambda p: f(p["psig"][name]) if p["psig"] and p["psig"].get(name) is not None else None

    def lung_both(p):
        if not p["psig"]:
            return None
        v = [abs(p["psig"][k]) for k in ("lung_area_change_right", "lung_area_change_left")
             if p["psig"][k] is not None]
        return max(v) if v else None

    def zone_worst(p):
        z = [sc / ar for _, ar, sc, _ in p["zones"] or [] if ar > 0]
        return max(z) if z else None

    def zone_shift(p):
        z = [abs(md) for _, ar, _, md in p["zones"] or [] if md is not None]
        return max(z) if z else None

    def brixia_delta(p):
        a, b = brixia.get(p["fixed"]["scan_id"]), brixia.get(p["moving"]["scan_id"])
        return abs(b - a) if a is not None and b is not None else None

    def severity(p):
        a, b = probs.get(p["fixed"]["scan_id"]), probs.get(p["moving"]["scan_id"])
        return sum(a.values()) + sum(b.values()) if a and b else None

    signals = [("change_score", col("change_score")),
               ("worst lung zone: change_score per px^2", zone_worst),
               ("worst lung zone: |mean signed change|", zone_shift), ("changed_area_mm2", col("changed_area_mm2")),
               ("change_energy", col("change_energy")), ("trend_score", col("trend_score")),
               ("feature_change", col("feature_change")),
               ("max heatmap rise (any finding)", col("max_heatmap_rise")),
               ("embedding_distance", emb_dist), ("max |probability delta|", prob_delta_max),
               ("max probability rise", prob_rise_max), ("lung area change", lung_area_change),
               ("stored pair_signals: embedding_distance", stored("embedding_distance")),
               ("stored pair_signals: max |probability delta|", stored("max_abs_probability_delta")),
               ("stored pair_signals: max probability rise", stored("max_probability_rise")),
               ("stored pair_signals: max |lung area change|", lung_both),
               ("stored: max |probability delta| / its limit", stored("change_in_limits")),
               ("CheXNet reference: max |delta| (ceiling)", chexnet),
               ("|Brixia global delta| (severity head)", brixia_delta),
               # yardsticks: they carry no change between the two films
               ("no change: sum of both films' probabilities", severity),
               ("no change: follow-up numbers apart", lambda p: p["moving"]["visit"] - p["fixed"]["visit"])]
    for extra_col in ("change_score_lungs", "change_score_right", "change_score_left"):
        if extra_col in cols:
            signals.insert(1, (extra_col, col(extra_col)))
    # The default classifier (tools/train.py) was trained on train256, which
    # holds the dev patients' films at 256 px: it held out a patient when
    # sha256(id) mod 5 == 0 and trained on the others with films there. Its
    # signals on the patients it saw may have learnt their labels; the last
    # column is the patients it never saw (all of them for a set of other
    # patients).
    in_train256 = {r["Patient ID"] for r in csv.DictReader(open(os.path.join(D, "images.csv")))}

    def trained_on(pid):
        return pid in in_train256 and int(hashlib.sha256(pid.encode()).hexdigest(), 16) % 5 != 0
    unseen = [p for p in pairs if not trained_on(p["patient"])]
    print(f"the default classifier never saw {len({p['patient'] for p in unseen})} of these "
          f"{len(by_pat)} patients ({len(unseen)} pairs, {sum(p['changed'] for p in unseen)} CHANGED); it was "
          "trained on the others' films (train256), so their probability signals may be optimistic")
    if any(x == "-m" or x.startswith("--model") for x in extra):
        print("(analyze ran with another classifier (" + " ".join(extra) + "): the last column is still "
              "the patients the default one never saw, for a like-for-like comparison)")
    # How sick a patient is decides most of the labels' CHANGED: a film
    # with findings is reported again in other words, one without them is
    # "No Finding" again. A signal that only says how sick the patient is
    # scores well pooled (the 'no change' yardsticks below). The severity
    # column compares a CHANGED pair only with STABLE pairs of the same
    # third of that yardstick (the sum of both films' probabilities: no
    # labels in it, and the same whichever film comes first; strata from
    # the labels themselves would favour rises or falls by which film they
    # take); the patient column compares a patient's pairs with each other.
    sev_of = {(p["fixed"]["scan_id"], p["moving"]["scan_id"]): severity(p) for p in pairs}
    sev = sorted(v for v in sev_of.values() if v is not None)
    edges = [sev[len(sev) // 3], sev[2 * len(sev) // 3]] if sev else []
    third_of = {k: None if v is None else sum(v >= e for e in edges) for k, v in sev_of.items()}

    def third(p):  # the bootstrap's copies of a pair keep its films
        return third_of[(p["fixed"]["scan_id"], p["moving"]["scan_id"])]
    by_severity, by_patient = within(third), within(lambda p: p["patient"])
    print("CHANGED pairs by third of the severity yardstick (sum of both films' probabilities): " + ", ".join(
        f"{sum(p['changed'] for p in pairs if third(p) == k)} of {sum(third(p) == k for p in pairs)}"
        for k in range(3)))
    wp = {p["patient"] for p in pairs if p["changed"]} & {p["patient"] for p in pairs if not p["changed"]}
    print(f"AUROC pooled over all pairs (95 % CI over patients), within a third of severity (same CI), and "
          f"within patient ({len(wp)} patients with pairs of both kinds); 'no change' rows are yardsticks "
          "that carry no change between the two films")
    print(f"{'signal':44s} {'AUROC':>6s} {'95% CI (patients)':>16s} {'coverage':>9s} {'unseen':>6s} "
          f"{'severity':>8s} {'95% CI':>16s} {'patient':>7s}")
    for name, f in signals:
        pos = [v for p in pairs if p["changed"] for v in [f(p)] if v is not None]
        neg = [v for p in pairs if not p["changed"] for v in [f(p)] if v is not None]
        a = auroc(pos, neg)
        lo, hi = bootstrap(pairs, f)
        cov = len(pos) + len(neg)
        au = pooled_auroc(unseen, f)
        sa = by_severity(pairs, f)
        slo, shi = bootstrap(pairs, f, by_severity)
        wa = by_patient(pairs, f)
        print(f"{name:44s} {a:6.3f} {f'[{lo:.3f}, {hi:.3f}]':>16s} {f'{cov}/{len(pairs)}':>9s} {au:6.3f} "
              f"{sa:8.3f} {f'[{slo:.3f}, {shi:.3f}]':>16s} {wa:7.3f}")
    print()

    # like for like with the ceiling: the pairs that have CheXNet's probabilities
    both = [p for p in pairs if chexnet(p) is not None]
    if both:
        # CheXNet has no re-posed copies: its findings' deltas are scaled by
        # their own spread over these pairs (p95 of |delta|, all pairs, no
        # labels), the nearest thing to a retest limit it has
        d = np.array([np.abs(chex[p["moving"]["image_index"]] - chex[p["fixed"]["image_index"]]) for p in both])
        spread = np.maximum(np.percentile(d, 95, axis=0), 1e-6)
        scaled = {id(p): float(np.max(row / spread)) for p, row in zip(both, d)}
        seen = len(set(map(id, both)) - set(map(id, unseen)))
        print(f"on the {len(both)} pairs with CheXNet reference probabilities "
              f"({sum(p['changed'] for p in both)} CHANGED; {seen} of patients the default classifier was "
              "trained on, whose films had their labels and CheXNet's probabilities as its targets):")
        for name, f in (("cxrtrack: max |probability delta|", prob_delta_max),
                        ("cxrtrack: max |probability delta| / its limit", stored("change_in_limits")),
                        ("CheXNet: max |delta|", chexnet),
                        ("CheXNet: max |delta| / its spread (p95)", lambda p: scaled[id(p)])):
            pos = [v for p in both if p["changed"] for v in [f(p)] if v is not None]
            neg = [v for p in both if not p["changed"] for v in [f(p)] if v is not None]
            print(f"  {name:46s} {auroc(pos, neg):6.3f}  {len(pos) + len(neg):4d}/{len(both)}")
        print()

    # per finding: appearing findings against stable pairs
    if findings and limits:
        print("per finding: a finding appears between two films; does its probability rise beyond "
              "its test-retest limit? (against stable pairs)")
        print(f"{'finding':20s} {'appears':>8s} {'rises':>6s} {'stable rises':>13s}")
        stable = [p for p in pairs if not p["changed"]]
        for k in findings:
            lim = limits.get("probability:" + k)
            if lim is None:
                continue
            app = [p for p in pairs if k in p["new"]]

            def rose(p):
                a, b = probs.get(p["fixed"]["scan_id"]), probs.get(p["moving"]["scan_id"])
                return a and b and b[k] - a[k] > lim
            ra = sum(bool(rose(p)) for p in app)
            rs = sum(bool(rose(p)) for p in stable)
            if app:
                print(f"{k:20s} {len(app):8d} {ra:6d} {rs:6d}/{len(stable):<6d}")
        print()

    # per patient flags
    flagged = {r[0] for r in con.execute("SELECT DISTINCT patient_id FROM progression_flags WHERE kind IN"
                                         " ('slow_progression', 'acute_change', 'unconfirmed_change')")}
    gained, never = set(), set()
    seen_rise = set()  # gained a finding whose probability rose beyond its flag limit
    across = set()  # gained a finding at a film of another view than the film before
    for pid, fs in by_pat.items():
        first = labels_of(fs[0]["finding_labels"])
        seen = set(first)
        g = False
        for prev, f in zip(fs, fs[1:]):
            l = labels_of(f["finding_labels"])
            if l - seen:
                g = True
                if prev["view_kind"] != f["view_kind"]:
                    across.add(pid)
                # against the first film of the same view kind, as the flags compare
                base = next(b for b in fs if b["view_kind"] == f["view_kind"])
                pb, pf = probs.get(base["scan_id"]), probs.get(f["scan_id"])
                for k in l - seen:
                    lim = flag_limits.get("probability:" + k)
                    if base is not f and pb and pf and lim and pf[k] - pb[k] > lim:
                        seen_rise.add(pid)
            seen |= l
        allsame = all(labels_of(f["finding_labels"]) == first for f in fs)
        if g:
            gained.add(pid)
        elif allsame:
            never.add(pid)
    print("per patient (flag: slow_progression, acute_change or unconfirmed_change on any signal):")
    print(f"  gained a finding:        {len(gained & flagged):3d} flagged of {len(gained)}")
    print(f"  labels never changed:    {len(never & flagged):3d} flagged of {len(never)}")
    other = set(by_pat) - gained - never
    print(f"  other (lost a finding):  {len(other & flagged):3d} flagged of {len(other)}")
    # Most never-changing patients are "No Finding" throughout and most
    # gaining ones were ill from their first film: telling them apart needs
    # no change. Two checks of that: the gaining patients whose first film
    # is "No Finding" (a new finding in a patient who had none), and a
    # yardstick that flags by how ill a patient looks, not by change.
    well = {pid for pid, fs in by_pat.items() if not labels_of(fs[0]["finding_labels"])}
    print(f"  of these, first film 'No Finding': gained {len(gained & well & flagged)} flagged of "
          f"{len(gained & well)}; never changed {len(never & well & flagged)} flagged of {len(never & well)}")
    if probs:
        ill = {pid: max(sum(probs[f["scan_id"]].values()) for f in fs if f["scan_id"] in probs)
               for pid, fs in by_pat.items() if any(f["scan_id"] in probs for f in fs)}
        allow, caught, nn = len(never & flagged), set(), 0
        for pid in sorted(ill, key=lambda q: -ill[q]):
            if pid in never:
                if nn == allow:
                    break
                nn += 1
            caught.add(pid)
        print(f"  yardstick with no change in it (flag the patients whose most ill-looking film has the "
              f"largest sum of probabilities, as many never-changing as the flags ({allow})): gained {len(gained & caught)} "
              f"flagged of {len(gained)}")
    print(f"  gained a finding whose probability rose beyond its limit against the first film of its view: "
          f"{len(seen_rise)} of {len(gained)}, flagged {len(seen_rise & flagged)}; the other "
          f"{len(gained - seen_rise)}: flagged {len((gained - seen_rise) & flagged)} (on other signals)")
    print(f"  gained a finding at a film of another view than the one before it (the flags compare "
          f"films of one view): {len(across)} of {len(gained)}, flagged {len(across & flagged)}")
    # each change of view between consecutive films: what the report names
    # instead (a change whose later film has a finding risen beyond its
    # same-view limit), and, over the PA/AP ones (AP minus PA), what a change
    # of view alone does to the probabilities: their spread about the median
    # shift against the same-view limit the flags use
    named, changes, named_changes, xd = set(), 0, 0, {}
    for fs in by_pat.values():
        for a, b in zip(fs, fs[1:]):
            pa, pb = probs.get(a["scan_id"]), probs.get(b["scan_id"])
            if a["view_kind"] == b["view_kind"] or not pa or not pb:
                continue
            changes += 1
            if any(lim and pb[k] - pa[k] > lim for k in pa for lim in [flag_limits.get("probability:" + k)]):
                named.add(a["patient_id"])
                named_changes += 1
            if {a["view_kind"], b["view_kind"]} == {"PA", "AP"}:
                sign = 1 if b["view_kind"] == "AP" else -1
                for k in pa:
                    xd.setdefault(k, []).append(sign * (pb[k] - pa[k]))
    print(f"  named in the report as a rise across a change of view (not a flag): {len(named & gained)} "
          f"of the gaining ({len(named & across)} of the {len(across)} above), {len(named & never)} of the "
          f"never changing, {len(named & other)} of the others; {named_changes} of the {changes} "
          f"changes of view between consecutive films")
    ratios = []
    for k, v in xd.items():
        lim = flag_limits.get("probability:" + k)
        if lim:
            v = np.asarray(v)
            ratios.append(1.96 * 1.4826 * np.median(np.abs(v - np.median(v))) / lim)
    if ratios:
        print(f"  consecutive PA/AP pairs: {len(next(iter(xd.values())))}; per finding, their spread about "
              f"the median shift (1.96 x 1.4826 x MAD) is {min(ratios):.1f} to {max(ratios):.1f} times "
              f"the same-view limit (median {np.median(ratios):.1f})")
    un = {p["patient"] for p in unseen}
    print(f"  of the {len(un)} the classifier never saw: gained {len(gained & flagged & un)} flagged of "
          f"{len(gained & un)}, never changed {len(never & flagged & un)} flagged of {len(never & un)}")
    kinds = {}
    for pid, kind in con.execute("SELECT patient_id, kind FROM progression_flags"):
        if pid in by_pat:
            kinds[kind] = kinds.get(kind, 0) + 1
    print("  flag rows:", ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    print()

    # where the change score lies: the outer band of the window's box, and
    # for comparison how much of FIXED's lung fields lie there
    shares, lung_shares = [], []
    art = db + ".artifacts"
    for p in pairs:
        c = p["change"]
        if not c or not c.get("map_path"):
            continue
        f = os.path.join(art, c["map_path"])
        if ".artifacts/" in c["map_path"]:  # stores before schema 0009
            f = os.path.join(os.path.dirname(db), c["map_path"])
        if not os.path.exists(f):
            continue
        d = np.abs(read_map(f, c.get("map_scale")))
        h, w = d.shape
        t = c["threshold"]
        e = np.maximum(d - t, 0)
        tot = e.sum()
        if tot <= 0:
            continue
        y0, y1, x0, x1 = int(0.05 * h), int(0.85 * h), int(0.08 * w), int(0.92 * w)
        bh, bw = int(0.12 * (y1 - y0)), int(0.12 * (x1 - x0))
        inner = np.zeros_like(e, bool)
        inner[y0 + bh:y1 - bh, x0 + bw:x1 - bw] = True
        shares.append(e[~inner].sum() / tot)
        mp = lung_mask.get(p["fixed"]["scan_id"])
        if mp and os.path.exists(os.path.join(art, mp)):
            from PIL import Image
            m = np.asarray(Image.open(os.path.join(art, mp)).convert("L").resize((w, h))) > 127
            if m.sum():
                lung_shares.append(m[~inner].sum() / m.sum())
    if shares:
        print(f"share of the change score in the outer 12 % band of the window's box: median "
              f"{np.median(shares):.2f}, mean {np.mean(shares):.2f} over {len(shares)} maps with a score")
    if lung_shares:
        print(f"share of FIXED's lung fields in the same band: median {np.median(lung_shares):.2f}, "
              f"mean {np.mean(lung_shares):.2f} over {len(lung_shares)} of those maps")
    if tmp:
        print(f"(store: {db})")


if __name__ == "__main__":
    main()
