# SPDX-License-Identifier: MIT
"""The NIH film sets the benches draw from ../shared/data/nih: the dev
patients (series1024, 1024 px) and the patients never seen (train256's
256-px films of the patients outside series1024)."""
import collections
import os


def unseen_train256(nih, min_films=2):
    """Sorted names of the train256 films (in @nih/train256) of patients not
    in @nih/series1024 who have @min_films films or more there."""
    dev = {n[:8] for n in os.listdir(os.path.join(nih, "series1024"))}
    names = sorted(n for n in os.listdir(os.path.join(nih, "train256")) if n.endswith(".png"))
    count = collections.Counter(n[:8] for n in names)
    return [n for n in names if count[n[:8]] >= min_films and n[:8] not in dev]
