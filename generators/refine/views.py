"""Stage 3: where to look from. A seeded distribution of head poses and camera jitter (``ViewSampling``)."""

from __future__ import annotations

import numpy as np

from facebench.captures import Camera
from facebench.pose import Pose, look_at_head
from generators.refine.config import ViewSampling


def sample_poses(vs: ViewSampling, seed: int) -> list[Pose]:
    """``vs.n_views`` poses: yaw stratified over its range, pitch and roll uniform."""
    rng = np.random.default_rng(seed)
    lo, hi = vs.yaw_range
    strata = lo + (hi - lo) * (np.arange(vs.n_views) + rng.random(vs.n_views)) / vs.n_views
    pitch = rng.uniform(*vs.pitch_range, vs.n_views)
    roll = rng.uniform(*vs.roll_range, vs.n_views)
    return [Pose(float(y), float(p), float(r)) for y, p, r in zip(strata, pitch, roll, strict=True)]


def sample_cameras(vs: ViewSampling, seed: int, head_to_world: np.ndarray, distance: float, focal: float,
                   size: int) -> list[tuple[Pose, Camera]]:
    """Cameras looking at the head origin, with the principal point at the image centre."""
    rng = np.random.default_rng([seed, 1])
    out = []
    for pose in sample_poses(vs, seed):
        d = distance * (1 + rng.uniform(-vs.distance_jitter, vs.distance_jitter))
        f = focal * (1 + rng.uniform(-vs.focal_jitter, vs.focal_jitter))
        K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
        out.append((pose, Camera(K, look_at_head(pose, d, head_to_world), size, size)))
    return out
