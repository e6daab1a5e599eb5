"""Stage 5: automatic clean-up, replacing the paper's manual edits around eyes and lips.

Every step is a pure function on H×W uint8 ids and can be switched on or off through ``CleanupConfig``
(``config.py``).
Pixels a step removes are refilled from the nearest kept pixel (one Euclidean distance transform), so
no step invents a class that was not next to the pixel.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from facebench.labels import IGNORE, LabelSet
from generators.refine.config import CleanupConfig


def fill_from_nearest(ids: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Replace ``holes`` pixels by the id of the nearest non-hole pixel."""
    if not holes.any() or holes.all():
        return ids
    _, (iy, ix) = ndimage.distance_transform_edt(holes, return_indices=True)
    return ids[iy, ix]


def remove_small_components(ids: np.ndarray, min_frac: float) -> np.ndarray:
    """Drop connected pieces of any foreground class smaller than ``min_frac`` of the image."""
    min_px = max(1, int(round(min_frac * ids.size)))
    drop = np.zeros(ids.shape, bool)
    for c in np.unique(ids):
        if c in (0, IGNORE):
            continue
        comp, n = ndimage.label(ids == c)
        if n == 0:
            continue
        sizes = np.bincount(comp.ravel(), minlength=n + 1)
        small = sizes < min_px
        small[0] = False
        drop |= small[comp]
    return fill_from_nearest(ids, drop)


def fill_foreground_holes(ids: np.ndarray) -> np.ndarray:
    """Background enclosed by foreground (a hole in the head) takes the nearest foreground class."""
    fg = ids != 0
    holes = ndimage.binary_fill_holes(fg) & ~fg
    return fill_from_nearest(ids, holes)


def majority_smooth(ids: np.ndarray, num_classes: int, radius: int = 1) -> np.ndarray:
    """Per-class morphological smoothing as a mode filter: each pixel takes its window's majority class."""
    t = torch.from_numpy(ids.astype(np.int64))
    keep_ignore = t == IGNORE
    onehot = torch.nn.functional.one_hot(t.clamp_max(num_classes - 1), num_classes).permute(2, 0, 1).float()
    k = 2 * radius + 1
    votes = torch.nn.functional.avg_pool2d(onehot[None], k, stride=1, padding=radius, count_include_pad=False)[0]
    votes += onehot * 1e-3  # ties keep the pixel's own class
    out = votes.argmax(0)
    out[keep_ignore] = IGNORE
    return out.to(torch.uint8).numpy()


def sides_lut(labels: LabelSet) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (left ids, right ids) of the subject-side pairs in ``labels``."""
    pairs = [(labels.index(f"l_{p}"), labels.index(f"r_{p}")) for p in ("brow", "eye", "ear")]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def head_x(means: torch.Tensor, head_to_world: np.ndarray) -> torch.Tensor:
    """[N] coordinate of world points ``means [N, 3]`` along the head frame's x axis (the subject's left)."""
    w2h = torch.from_numpy(np.linalg.inv(head_to_world)).to(means)
    return means.detach() @ w2h[0, :3] + w2h[0, 3]


def enforce_sides_3d(scores: torch.Tensor, x_head: torch.Tensor, labels: LabelSet, margin: float = 0.0) -> torch.Tensor:
    """Per-Gaussian left/right consistency: a Gaussian on the subject's left cannot be r_ear, and so on.

    ``scores``: [N, C] per-Gaussian class scores (logits or probabilities); ``x_head``: [N] coordinate
    along the head frame's x axis, which points to the subject's left. For Gaussians clearly on one
    side, the opposite-side class's score moves to its mirror class (max of the two), and the opposite
    class is disabled. Returns a new tensor.
    """
    left, right = (torch.from_numpy(a) for a in sides_lut(labels))
    out = scores.clone()
    floor = scores.min().detach() - 10.0
    on_left = x_head > margin
    on_right = x_head < -margin
    lv, rv = out[:, left], out[:, right]
    out[:, left] = torch.where(on_left[:, None], torch.maximum(lv, rv), torch.where(on_right[:, None], floor, lv))
    out[:, right] = torch.where(on_right[:, None], torch.maximum(lv, rv), torch.where(on_left[:, None], floor, rv))
    return out


def apply_confidence(ids: np.ndarray, confidence: np.ndarray, min_confidence: float) -> np.ndarray:
    """Mark foreground pixels whose confidence is below ``min_confidence`` as 255 (ignored, not guessed)."""
    out = ids.copy()
    out[(confidence < min_confidence) & (ids != 0)] = IGNORE
    return out


def cleanup(ids: np.ndarray, cfg: CleanupConfig, num_classes: int, confidence: np.ndarray | None = None) -> np.ndarray:
    """Run the enabled 2D steps in a fixed order: components, holes, smoothing, then confidence."""
    if not cfg.enabled:
        return ids
    out = ids
    if cfg.remove_small:
        out = remove_small_components(out, cfg.min_component_frac)
    if cfg.fill_holes:
        out = fill_foreground_holes(out)
    if cfg.smooth and cfg.smooth_radius > 0:
        out = majority_smooth(out, num_classes, cfg.smooth_radius)
    if cfg.confidence and confidence is not None:
        out = apply_confidence(out, confidence, cfg.min_confidence)
    return out
