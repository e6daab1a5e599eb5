"""Check a landmark layout against the mean face before trusting it, group by group.

A 106-point (or any foreign) layout is mapped to iBUG-68 by index tables that are easy to get
subtly wrong (an eye's corners swapped, a contour counted from the other end). A wrong group
shows up as a large residual once the pose is fitted robustly on all points: the robust loss keeps
the fit on the correct majority, and the misplaced points stay far from where the mean face puts
them. So over a sample of images we fit, measure each group's median residual (relative to the
landmark spread) and drop groups whose residual is far above the rest. The decision is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facebench.importers.landmarks import mean_face
from facebench.importers.pnp import intrinsics, pose_from_68, project

GROUPS_68: dict[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)),
    "brows": tuple(range(17, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nostrils": tuple(range(31, 36)),
    "eyes": tuple(range(36, 48)),
    "outer_lips": tuple(range(48, 60)),
    "inner_lips": tuple(range(60, 68)),
}
RATIO = 2.5  # a group is dropped if its residual exceeds RATIO × the median over all points ...
FLOOR = 0.12  # ... and FLOOR × the landmark spread


@dataclass(frozen=True)
class LayoutCheck:
    keep: np.ndarray  # bool over the checked iBUG-68 indices
    residual: dict[str, float]  # median residual / spread per group
    dropped: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"group_residual": {k: round(v, 4) for k, v in self.residual.items()}, "dropped": list(self.dropped)}


def check_layout(samples: list[tuple[np.ndarray, int, int]], idx68: np.ndarray) -> LayoutCheck:
    """``samples``: (points (N, 2) in the order of ``idx68``, width, height) per image."""
    idx68 = np.asarray(idx68)
    keep = np.ones(len(idx68), dtype=bool)
    if not samples:
        return LayoutCheck(keep, {}, ())
    pts3 = mean_face().points[idx68]
    rel = []
    for xy, w, h in samples:
        r = pose_from_68(xy, w, h, idx68)
        err = np.linalg.norm(project(pts3, r.rotation, r.translation, intrinsics(w, h)) - xy, axis=1)
        spread = np.sqrt(((xy - xy.mean(0)) ** 2).sum(1).mean())
        rel.append(err / max(spread, 1e-6))
    per_point = np.median(np.asarray(rel), axis=0)
    overall = float(np.median(per_point))
    residual, dropped = {}, []
    for name, members in GROUPS_68.items():
        sel = np.isin(idx68, members)
        if not sel.any():
            continue
        residual[name] = float(np.median(per_point[sel]))
        if residual[name] > max(RATIO * overall, FLOOR):
            keep &= ~sel
            dropped.append(name)
    return LayoutCheck(keep, residual, tuple(dropped))
