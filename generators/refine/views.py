"""Stage 3: where to look from. A seeded distribution of head poses and camera jitter."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facebench.captures import Camera
from facebench.errors import InvalidConfig
from facebench.pose import Pose, look_at_head


@dataclass(frozen=True)
class ViewSampling:
    """New viewpoints around a head.

    Yaw is stratified over its range so every pose bin gets views even for small counts; pitch and
    roll are uniform. Distance and focal length jitter multiplicatively around the input rig's.
    """

    n_views: int = 64
    yaw_range: tuple[float, float] = (-180.0, 180.0)
    pitch_range: tuple[float, float] = (-60.0, 60.0)
    roll_range: tuple[float, float] = (-10.0, 10.0)
    distance_jitter: float = 0.08
    focal_jitter: float = 0.08

    def __post_init__(self) -> None:
        if self.n_views < 1:
            raise InvalidConfig(f"n_views must be ≥ 1, got {self.n_views}")
        for name, (lo, hi), lim in (("yaw", self.yaw_range, 180), ("pitch", self.pitch_range, 89),
                                    ("roll", self.roll_range, 180)):
            if not (-lim <= lo <= hi <= lim):
                raise InvalidConfig(f"{name} range {lo}..{hi} must lie within ±{lim} and be ordered")
        if not (0 <= self.distance_jitter < 0.5 and 0 <= self.focal_jitter < 0.5):
            raise InvalidConfig("distance/focal jitter must be in [0, 0.5)")

    def sample_poses(self, seed: int) -> list[Pose]:
        rng = np.random.default_rng(seed)
        lo, hi = self.yaw_range
        strata = lo + (hi - lo) * (np.arange(self.n_views) + rng.random(self.n_views)) / self.n_views
        pitch = rng.uniform(*self.pitch_range, self.n_views)
        roll = rng.uniform(*self.roll_range, self.n_views)
        return [Pose(float(y), float(p), float(r)) for y, p, r in zip(strata, pitch, roll, strict=True)]

    def sample_cameras(self, seed: int, head_to_world: np.ndarray, distance: float, focal: float,
                       size: int) -> list[tuple[Pose, Camera]]:
        """Cameras looking at the head origin, with the principal point at the image centre."""
        rng = np.random.default_rng([seed, 1])
        out = []
        for pose in self.sample_poses(seed):
            d = distance * (1 + rng.uniform(-self.distance_jitter, self.distance_jitter))
            f = focal * (1 + rng.uniform(-self.focal_jitter, self.focal_jitter))
            K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
            out.append((pose, Camera(K, look_at_head(pose, d, head_to_world), size, size)))
        return out
