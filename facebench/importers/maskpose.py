"""A rough head pose from a face-parsing mask alone, for datasets without landmarks (Helen).

Region centroids (eyes, brows, nose, mouth) stand in for landmarks: each is matched with the mean of
the corresponding iBUG-68 points of the mean 3D face and solved by PnP. A visible region's centroid is
not the projection of a fixed 3D point, so this is coarse (good to about 10° in yaw on synthetic
renders, enough to bin frontal / three-quarter / profile). With fewer than four regions (a profile
with one eye hidden and no brows) the pose falls back to the side that is visible: yaw ±75°.
"""

from __future__ import annotations

import numpy as np

from facebench.importers.landmarks import mean_face
from facebench.importers.pnp import solve_pose
from facebench.labels import FACEBENCH
from facebench.pose import Pose

# facebench class ids whose union forms a region -> iBUG-68 points whose mean is its 3D anchor.
REGIONS: tuple[tuple[tuple[str, ...], range], ...] = (
    (("r_eye",), range(36, 42)),
    (("l_eye",), range(42, 48)),
    (("r_brow",), range(17, 22)),
    (("l_brow",), range(22, 27)),
    (("nose",), range(28, 36)),
    (("u_lip", "l_lip", "mouth"), range(48, 68)),
)
MIN_PIXELS = 12


def region_points(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(2D centroids, 3D anchors, indices into REGIONS) of the regions present in a facebench mask."""
    pts3 = mean_face().points
    p2, p3, which = [], [], []
    counts = np.bincount(mask.ravel(), minlength=256)
    for k, (names, idx) in enumerate(REGIONS):
        ids = [FACEBENCH.index(n) for n in names]
        if counts[ids].sum() < MIN_PIXELS:
            continue
        ys, xs = np.nonzero(np.isin(mask, ids))
        p2.append([xs.mean() + 0.5, ys.mean() + 0.5])
        p3.append(pts3[list(idx)].mean(0))
        which.append(k)
    return np.asarray(p2, dtype=np.float64).reshape(-1, 2), np.asarray(p3).reshape(-1, 3), which


def pose_from_mask(mask: np.ndarray) -> tuple[Pose, str, float]:
    """(pose, pose_source, reprojection rms px) from a facebench-labelled mask."""
    p2, p3, which = region_points(mask)
    h, w = mask.shape
    if len(which) >= 4 and 4 in which and 5 in which:
        r = solve_pose(p2, p3, w, h)
        return r.pose, "pnp-mask-centroids", r.rms_px
    left = sum(k in which for k in (1, 3))
    right = sum(k in which for k in (0, 2))
    if left == right:
        return Pose(0.0, 0.0, 0.0), "unknown", float("nan")
    # Only the subject's left features visible -> we see their left side -> positive yaw.
    return Pose(75.0 if left > right else -75.0, 0.0, 0.0), "mask-visible-side", float("nan")
