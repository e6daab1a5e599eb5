"""Stage 4: rendered label colours or logits back to class ids.

Three ways, for the two label representations (REFERENCES.md):
- logits: argmax over rendered per-class channels;
- palette (the paper's way): nearest palette colour in CIELAB, where distances match perception,
  so blended boundary colours snap to the class they look most like;
- k-means, when the palette is unknown: cluster the rendered colours and name each cluster by the
  class it overlaps most in the initial masks (a Hungarian match on the co-occurrence counts).
Background always comes from alpha: a pixel the Gaussians do not cover is background.
"""

from __future__ import annotations

import numpy as np
import torch

from facebench.labels import LabelSet


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(…, 3) sRGB in [0, 1] -> CIELAB (D65)."""
    c = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def argmax_labels(logits: torch.Tensor, alpha: torch.Tensor, alpha_min: float = 0.5) -> np.ndarray:
    """[C, H, W] rendered per-class scores -> H×W ids; pixels with alpha < alpha_min are background (0)."""
    ids = logits[1:].argmax(0) + 1  # foreground classes only; background is decided by alpha
    ids = torch.where(alpha >= alpha_min, ids, torch.zeros_like(ids))
    return ids.to(torch.uint8).numpy()


def nearest_palette(colors: np.ndarray, alpha: np.ndarray, labels: LabelSet, alpha_min: float = 0.5) -> np.ndarray:
    """H×W×3 rendered palette colours in [0, 1] -> H×W ids by nearest CIELAB palette colour (foreground only)."""
    lab = srgb_to_lab(np.clip(colors, 0, 1))
    pal = srgb_to_lab(labels.palette_array[1:].astype(np.float64) / 255)
    d = ((lab[..., None, :] - pal) ** 2).sum(-1)
    ids = (d.argmin(-1) + 1).astype(np.uint8)
    ids[alpha < alpha_min] = 0
    return ids


def kmeans_labels(colors: list[np.ndarray], alphas: list[np.ndarray], reference: list[np.ndarray],
                  num_classes: int, seed: int = 0, alpha_min: float = 0.5) -> list[np.ndarray]:
    """Cluster foreground colours of all renders; name clusters by overlap with ``reference`` masks.

    ``reference`` masks align with the first ``len(reference)`` renders (the input views).
    """
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans

    fg = [a >= alpha_min for a in alphas]
    pixels = np.concatenate([c[m] for c, m in zip(colors, fg, strict=True)])
    rng = np.random.default_rng(seed)
    fit_on = pixels[rng.choice(len(pixels), min(len(pixels), 50_000), replace=False)]
    km = KMeans(n_clusters=num_classes - 1, n_init=4, random_state=seed).fit(srgb_to_lab(fit_on))
    assign = [km.predict(srgb_to_lab(c[m])) for c, m in zip(colors, fg, strict=True)]
    co = np.zeros((num_classes - 1, num_classes - 1))
    for a, m, ref in zip(assign, fg, reference, strict=False):
        r = ref[m]
        keep = (r > 0) & (r < num_classes)
        np.add.at(co, (a[keep], r[keep].astype(int) - 1), 1)
    rows, cols = linear_sum_assignment(-co)
    name = np.zeros(num_classes - 1, np.uint8)
    name[rows] = cols + 1
    out = []
    for a, m in zip(assign, fg, strict=True):
        ids = np.zeros(m.shape, np.uint8)
        ids[m] = name[a]
        out.append(ids)
    return out
