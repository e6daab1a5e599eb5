"""Head pose of a view (yaw, pitch, roll in degrees) and pose bins.

The head frame is the OpenCV camera frame of a camera looking straight at the face:
x toward the subject's left, y down, z from the face into the head. A view's pose is the
rotation R = R_world→camera · R_head→world, decomposed as R = Rz(roll) · Rx(pitch) · Ry(yaw):

- yaw 0 is frontal; positive yaw puts the camera on the subject's left (we see their left side);
- pitch > 0 puts the camera above the eye plane (we see the top of the head);
- roll rotates the image about the optical axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Default bins by |yaw| in degrees: (name, low inclusive, high exclusive).
POSE_BINS: tuple[tuple[str, float, float], ...] = (
    ("frontal", 0.0, 30.0),
    ("three_quarter", 30.0, 60.0),
    ("profile", 60.0, 100.0),
    ("rear", 100.0, 180.0001),
)
POSE_BIN_NAMES: tuple[str, ...] = tuple(b[0] for b in POSE_BINS)


@dataclass(frozen=True)
class Pose:
    """Head pose relative to a camera, in degrees."""

    yaw: float
    pitch: float
    roll: float = 0.0

    @property
    def bin(self) -> str:
        return pose_bin(self.yaw)


def pose_bin(yaw: float, bins: tuple[tuple[str, float, float], ...] = POSE_BINS) -> str:
    """Name of the |yaw| bin that ``yaw`` (degrees) falls in."""
    a = abs(float(wrap_degrees(float(yaw))))
    for name, lo, hi in bins:
        if lo <= a < hi:
            return name
    raise ValueError(f"yaw {yaw} outside every bin")


def pose_bins_array(yaw: np.ndarray, bins: tuple[tuple[str, float, float], ...] = POSE_BINS) -> np.ndarray:
    """Vectorised ``pose_bin``: an object array of bin names."""
    a = np.abs(wrap_degrees(np.asarray(yaw, dtype=np.float64)))
    edges = np.array([b[1] for b in bins[1:]])
    return np.array([b[0] for b in bins], dtype=object)[np.searchsorted(edges, a, side="right")]


def wrap_degrees(a: float | np.ndarray) -> float | np.ndarray:
    """Wrap angles to [-180, 180)."""
    return (a + 180.0) % 360.0 - 180.0


def rot_x(deg: float) -> np.ndarray:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(deg: float) -> np.ndarray:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def pose_to_rotation(pose: Pose) -> np.ndarray:
    """Head→camera rotation for a pose: Rz(roll) · Rx(pitch) · Ry(yaw)."""
    return rot_z(pose.roll) @ rot_x(pose.pitch) @ rot_y(pose.yaw)


def rotation_to_pose(r_head_to_cam: np.ndarray) -> Pose:
    """Decompose a head→camera rotation into (yaw, pitch, roll) degrees."""
    r = np.asarray(r_head_to_cam, dtype=np.float64)
    pitch = math.degrees(math.asin(float(np.clip(r[2, 1], -1.0, 1.0))))
    yaw = math.degrees(math.atan2(-r[2, 0], r[2, 2]))
    roll = math.degrees(math.atan2(-r[0, 1], r[1, 1]))
    return Pose(yaw=yaw, pitch=pitch, roll=roll)


def split_frame(head_to_world: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """(rotation 3×3, scale, translation) of a head→world similarity (world units per head-frame metre).

    A capture's world may be rotated, moved and scaled against the head frame; poses use the rotation only."""
    h2w = np.asarray(head_to_world, dtype=np.float64)
    m = h2w[:3, :3]
    scale = float(np.cbrt(np.linalg.det(m)))
    return m / scale, scale, h2w[:3, 3]


def similarity(rotation: np.ndarray, scale: float, translation: np.ndarray) -> np.ndarray:
    """The 4×4 head→world matrix ``[s·R | t]``."""
    out = np.eye(4)
    out[:3, :3] = float(scale) * np.asarray(rotation, dtype=np.float64)
    out[:3, 3] = translation
    return out


def view_pose(world_to_camera: np.ndarray, head_to_world: np.ndarray | None = None) -> Pose:
    """Head pose seen by a camera (4×4 world→camera, OpenCV) given the head frame (4×4 head→world similarity)."""
    h2w = np.eye(4) if head_to_world is None else np.asarray(head_to_world, dtype=np.float64)
    r = np.asarray(world_to_camera, dtype=np.float64)[:3, :3] @ split_frame(h2w)[0]
    return rotation_to_pose(r)


def look_at_head(pose: Pose, distance: float, head_to_world: np.ndarray | None = None) -> np.ndarray:
    """4×4 world→camera (OpenCV) of a camera at ``distance`` (world units) from the head origin that sees ``pose``."""
    h2w = np.eye(4) if head_to_world is None else np.asarray(head_to_world, dtype=np.float64)
    rot, _, origin = split_frame(h2w)
    r_hc = pose_to_rotation(pose)
    # In camera coordinates the head origin sits on the optical axis at depth `distance`.
    w2c = np.eye(4)
    w2c[:3, :3] = r_hc @ rot.T
    w2c[:3, 3] = np.array([0.0, 0.0, distance]) - w2c[:3, :3] @ origin
    return w2c
