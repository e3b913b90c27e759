# SPDX-License-Identifier: MIT
"""What the synthetic benches do to a real film to make a second visit of
it without disease change (bench/diff_lesions.py, bench/change_types.py)."""
import random

import cv2
import numpy as np


def repose(img, seed, shift=15):
    """@img (float, 0..1) re-posed (+-3 degrees, +-@shift px, +-3 % scale)
    and re-exposed (gain and gamma 0.9-1.1, noise sigma 0.004), from @seed."""
    g = random.Random(seed)
    h, w = img.shape
    M = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), g.uniform(-3, 3), g.uniform(0.97, 1.03))
    M[:, 2] += (g.uniform(-shift, shift), g.uniform(-shift, shift))
    out = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
    out = np.clip(out, 0, 1) ** g.uniform(0.9, 1.1) * g.uniform(0.9, 1.1)
    out = out + np.random.default_rng(seed).normal(0, 0.004, out.shape)
    return np.clip(out, 0, 1)
