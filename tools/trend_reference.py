#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Reference values for tests/test_trend.c, from SciPy (Debian python3-scipy).

For fixed series (with and without ties, n = 4..30): Kendall's tau-b and its
p-value (scipy.stats.kendalltau: exact method for n <= 10 without ties,
asymptotic otherwise), and Theil-Sen slope, intercept and 95 % interval
(scipy.stats.theilslopes). For the asymptotic case, Mann-Kendall's
continuity-corrected p-value is computed here from SciPy's S and variance
(SciPy itself omits the correction): p = 2 sf((|S| - 1) / sqrt(Var S)).
Run from the repository root; writes tests/data/trend_reference.json.
"""
import json

import numpy as np
from scipy import stats

rng = np.random.default_rng(7)
series = [
    ("monotone4", [1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4]),
    ("monotone6", [0, 1, 2, 3, 4, 5], [3.0, 3.1, 3.5, 3.6, 4.0, 4.2]),
    ("noisy8", list(range(8)), [0.30, 0.28, 0.35, 0.33, 0.41, 0.38, 0.45, 0.47]),
    ("flat10", [0, 5, 9, 20, 31, 40, 52, 60, 75, 90], list(rng.normal(0, 1, 10))),
    ("ties12", list(range(12)), [1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5]),
    ("falling15", list(range(15)), list(10 - 0.3 * np.arange(15) + rng.normal(0, 0.8, 15))),
    ("days30", sorted(rng.choice(400, 30, replace=False).tolist()), list(0.002 * np.arange(30) + rng.normal(0, 0.02, 30))),
]
out = []
for name, t, y in series:
    t, y = np.asarray(t, float), np.asarray(y, float)
    n = len(t)
    ties = len(np.unique(y)) < n
    exact = n <= 10 and not ties
    kt = stats.kendalltau(t, y, method="exact" if exact else "asymptotic")
    s = sum(np.sign(y[j] - y[i]) for i in range(n) for j in range(i + 1, n))
    _, counts = np.unique(y, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - sum(c * (c - 1) * (2 * c + 5) for c in counts)) / 18
    if exact:
        p = kt.pvalue
    else:
        # SciPy's asymptotic z is S / sqrt(var): check var against it, then correct
        assert abs(abs(s) / np.sqrt(var) - abs(stats.norm.isf(kt.pvalue / 2))) < 1e-6
        p = 2 * stats.norm.sf((abs(s) - 1) / np.sqrt(var))
    ts = stats.theilslopes(y, t, 0.95)
    out.append({"name": name, "t": t.tolist(), "y": y.tolist(), "s": float(s), "var_s": float(var),
                "tau": float(kt.statistic), "p": float(p), "exact": bool(exact),
                "slope": float(ts[0]), "intercept": float(ts[1]), "low": float(ts[2]), "high": float(ts[3])})
    print(f"{name}: n {n} S {s:+.0f} tau {kt.statistic:+.3f} p {p:.4g} slope {ts[0]:.4g} [{ts[2]:.4g}, {ts[3]:.4g}]")
json.dump(out, open("tests/data/trend_reference.json", "w"), indent=1)
