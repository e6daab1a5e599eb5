"""Camera rig: perspective cameras on a sphere around the head, aimed at the head origin.

World frame = head frame (``head_to_world`` is the identity), so a camera's yaw/pitch is the head
pose it sees (``facebench.pose.look_at_head``). Modes:

- ``spiral`` (default): a Fibonacci lattice on the sphere band, i.e. sin(pitch) stratified evenly
  and yaw advanced by the golden ratio, so any view count covers the band evenly;
- ``grid``: yaw × pitch rings (3 rings from 9 views up, 5 from 40 up, always including pitch 0
  when the range is symmetric);
- ``random``: yaw uniform and sin(pitch) uniform (area-uniform on the band), from a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facebench.captures import Camera
from facebench.errors import InvalidConfig
from facebench.pose import Pose, look_at_head

RIG_MODES = ("spiral", "grid", "random")

# Framing: at 0.85 m a 22° vertical field of view spans 0.33 m at the head origin, so the head (hair, ears,
# chin, a little neck) fills the frame as in face-parsing datasets (CelebAMask-HQ crops to the face). The
# earlier 30° framed head and shoulders: cloth took 27% of the pixels and an eye was a few pixels wide.
DISTANCE = 0.85
FOV = 22.0


@dataclass(frozen=True)
class RigConfig:
    """Where cameras go. Angles in degrees; ``distance`` in metres; ``fov`` vertical, degrees."""

    views: int = 24
    yaw_range: tuple[float, float] = (-180.0, 180.0)
    pitch_range: tuple[float, float] = (-60.0, 60.0)
    distance: float = DISTANCE
    fov: float = FOV
    mode: str = "spiral"

    def __post_init__(self) -> None:
        lo, hi = self.yaw_range
        if not (-180.0 <= lo <= hi <= 180.0):
            raise InvalidConfig(f"yaw range must satisfy -180 <= low <= high <= 180, got {lo}..{hi}")
        lo, hi = self.pitch_range
        if not (-89.0 <= lo <= hi <= 89.0):
            raise InvalidConfig(f"pitch range must satisfy -89 <= low <= high <= 89, got {lo}..{hi}")
        if self.views < 1:
            raise InvalidConfig(f"views must be >= 1, got {self.views}")
        if not 0.3 <= self.distance <= 10.0:
            raise InvalidConfig(f"distance must be in [0.3, 10] metres, got {self.distance}")
        if not 5.0 <= self.fov <= 120.0:
            raise InvalidConfig(f"fov must be in [5, 120] degrees, got {self.fov}")
        if self.mode not in RIG_MODES:
            raise InvalidConfig(f"unknown rig mode {self.mode!r}", hint="use " + " or ".join(RIG_MODES))


def intrinsics(size: int, fov: float) -> np.ndarray:
    """Square pinhole K with the principal point at the image centre (pixel centres at i + 0.5)."""
    f = 0.5 * size / math.tan(math.radians(fov) / 2)
    return np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])


def camera_for_pose(pose: Pose, size: int = 256, distance: float = DISTANCE, fov: float = FOV) -> Camera:
    return Camera(K=intrinsics(size, fov), world_to_camera=look_at_head(pose, distance), width=size, height=size)


def rig_poses(config: RigConfig, seed: int = 0) -> list[Pose]:
    """The poses of ``config`` (deterministic for a seed)."""
    (y0, y1), (p0, p1) = config.yaw_range, config.pitch_range
    n = config.views
    if config.mode == "random":
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x716]))
        yaw = rng.uniform(y0, y1, n)
        s = rng.uniform(math.sin(math.radians(p0)), math.sin(math.radians(p1)), n)
        pitch = np.degrees(np.arcsin(s))
        return [Pose(float(a), float(b), 0.0) for a, b in zip(yaw, pitch, strict=True)]
    full = (y1 - y0) >= 359.999
    if config.mode == "spiral":
        golden = (math.sqrt(5.0) - 1.0) / 2.0
        s0, s1 = math.sin(math.radians(p0)), math.sin(math.radians(p1))
        out = []
        for i in range(n):
            f = (i * golden) % 1.0
            yaw = y0 + f * (y1 - y0)
            pitch = math.degrees(math.asin(s0 + (i + 0.5) / n * (s1 - s0)))
            out.append(Pose(float(((yaw + 180.0) % 360.0) - 180.0) if full else float(yaw), float(pitch), 0.0))
        return out
    rings = 1 if n < 9 else (3 if n < 40 else 5)
    pitches = np.linspace(p0, p1, rings) if rings > 1 else np.array([(p0 + p1) / 2])
    n_yaw = -(-n // rings)
    yaws = np.linspace(y0, y1, n_yaw, endpoint=not full) if n_yaw > 1 else np.array([(y0 + y1) / 2])
    grid = [Pose(float(a), float(b), 0.0) for b in pitches for a in yaws]
    return grid[:n]


def rig_cameras(config: RigConfig, size: int = 256, seed: int = 0) -> list[Camera]:
    return [camera_for_pose(p, size, config.distance, config.fov) for p in rig_poses(config, seed)]
