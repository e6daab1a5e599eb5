"""A rough head pose from a face-parsing mask alone, for datasets without landmarks (Helen).

Region centroids (eyes, brows, nose, mouth, glasses, ears) stand in for landmarks. Each is matched
with a 3D *anchor*: the point whose projections best explain that region's visible centroid over
many synthetic renders (triangulated offline by ``make_mean_face.region_anchors``; the mean of the
region's iBUG-68 points if the JSON has no anchors). This is coarse (see docs/datasets.md for the
measured error) but enough to bin frontal / three-quarter / profile. It needs the nose, the mouth
and at least three more regions; otherwise the pose falls back to the side that is visible: yaw ±75°.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files

import numpy as np

from facebench.importers.landmarks import mean_face
from facebench.importers.pnp import solve_pose
from facebench.labels import FACEBENCH
from facebench.pose import Pose

# (region name, facebench classes forming it, iBUG-68 points whose mean is the fallback anchor)
REGIONS: tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...] = (
    ("r_eye", ("r_eye",), tuple(range(36, 42))),
    ("l_eye", ("l_eye",), tuple(range(42, 48))),
    ("r_brow", ("r_brow",), tuple(range(17, 22))),
    ("l_brow", ("l_brow",), tuple(range(22, 27))),
    ("nose", ("nose",), tuple(range(28, 36))),
    ("mouth", ("u_lip", "l_lip", "mouth"), tuple(range(48, 68))),
    ("eye_g", ("eye_g",), ()),
    ("r_ear", ("r_ear",), ()),
    ("l_ear", ("l_ear",), ()),
)
MIN_PIXELS = 12
LEFT, RIGHT = ("l_eye", "l_brow", "l_ear"), ("r_eye", "r_brow", "r_ear")


@lru_cache(maxsize=1)
def anchors() -> dict[str, np.ndarray]:
    doc = json.loads(files("facebench.importers").joinpath("mean_face_68.json").read_text())
    out = {k: np.asarray(v, dtype=np.float64) for k, v in doc.get("region_anchors", {}).items()}
    pts = mean_face().points
    for name, _, idx in REGIONS:
        if name not in out and idx:
            out[name] = pts[list(idx)].mean(0)
    return out


def region_centroids(mask: np.ndarray) -> dict[str, tuple[float, float]]:
    """Pixel centroid (x, y) of every region present in a facebench-labelled mask."""
    counts = np.bincount(mask.ravel(), minlength=256)
    out = {}
    for name, classes, _ in REGIONS:
        ids = [FACEBENCH.index(c) for c in classes]
        if counts[ids].sum() >= MIN_PIXELS:
            ys, xs = np.nonzero(np.isin(mask, ids))
            out[name] = (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)
    return out


def pose_from_mask(mask: np.ndarray) -> tuple[Pose, str, float]:
    """(pose, pose_source, reprojection rms px) from a facebench-labelled mask."""
    cents = {k: v for k, v in region_centroids(mask).items() if k in anchors()}
    h, w = mask.shape
    if len(cents) >= 5 and "nose" in cents and "mouth" in cents:
        names = sorted(cents)
        r = solve_pose(np.array([cents[n] for n in names]), np.array([anchors()[n] for n in names]), w, h)
        return r.pose, "pnp-mask-centroids", r.rms_px
    left = sum(n in cents for n in LEFT)
    right = sum(n in cents for n in RIGHT)
    if left == right:
        return Pose(0.0, 0.0, 0.0), "unknown", float("nan")
    # Only the subject's left features visible -> we see their left side -> positive yaw.
    return Pose(75.0 if left > right else -75.0, 0.0, 0.0), "mask-visible-side", float("nan")
