"""Head pose from 2D landmarks by perspective-n-point against the mean 3D face (numpy + scipy).

Model: ``x = K (R X + t)`` with ``R`` the head→camera rotation of ``facebench.pose`` and a pinhole
``K`` whose focal length is assumed (photos carry no calibration): ``focal_scale · max(width, height)``,
default 1.5 (a 37° field of view, a typical portrait lens). Yaw is insensitive to this guess; the
synthetic check in tests/test_import_pnp.py renders with a 30° lens and solves with the default.

Solver: ``scipy.optimize.least_squares`` on (rotation vector, translation) with a soft-L1 loss
(robust to a few bad points), started from several yaws and kept at the lowest cost, because the
mirror-image pose is a local minimum for near-planar point sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from facebench.pose import Pose, pose_to_rotation, rotation_to_pose

START_YAWS = (-50.0, 0.0, 50.0)
JAW = np.arange(17)
JAW_WEIGHT = 0.5  # annotated jaw points trace the silhouette, not fixed 3D points: trust them less


@dataclass(frozen=True)
class PnPResult:
    pose: Pose
    rotation: np.ndarray  # (3, 3) head→camera
    translation: np.ndarray  # (3,) metres
    rms_px: float  # reprojection error
    rms_rel: float  # reprojection error / landmark spread: ~0.03 for a good fit, > 0.15 means a wrong layout


def intrinsics(width: int, height: int, focal_scale: float = 1.5) -> np.ndarray:
    f = focal_scale * max(width, height)
    return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


def project(points3d: np.ndarray, rotation: np.ndarray, translation: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(N, 3) head-frame points -> (N, 2) pixels."""
    cam = points3d @ rotation.T + translation
    uv = cam @ k.T
    return uv[:, :2] / uv[:, 2:3]


def solve_pose(
    points2d: np.ndarray,
    points3d: np.ndarray,
    width: int,
    height: int,
    focal_scale: float = 1.5,
    weights: np.ndarray | None = None,
) -> PnPResult:
    """Pose of the head whose landmarks ``points3d`` (N, 3) appear at ``points2d`` (N, 2) pixels."""
    p2 = np.asarray(points2d, dtype=np.float64)
    p3 = np.asarray(points3d, dtype=np.float64)
    w = np.ones(len(p2)) if weights is None else np.asarray(weights, dtype=np.float64)
    k = intrinsics(width, height, focal_scale)
    f = k[0, 0]
    spread2 = np.sqrt(((p2 - p2.mean(0)) ** 2).sum(1).mean())
    spread3 = np.sqrt(((p3[:, :2] - p3[:, :2].mean(0)) ** 2).sum(1).mean())
    depth = f * spread3 / max(spread2, 1e-6)
    centre = np.append((p2.mean(0) - k[:2, 2]) / f * depth, depth)
    scale = max(0.02 * spread2, 0.5)
    sw = np.sqrt(w)[:, None]

    def residual(x: np.ndarray) -> np.ndarray:
        r = Rotation.from_rotvec(x[:3]).as_matrix()
        return ((project(p3, r, x[3:], k) - p2) * sw).ravel()

    best = None
    for yaw in START_YAWS:
        r0 = Rotation.from_matrix(pose_to_rotation(Pose(yaw, 0.0, 0.0))).as_rotvec()
        t0 = centre - pose_to_rotation(Pose(yaw, 0.0, 0.0)) @ p3.mean(0)
        sol = least_squares(residual, np.concatenate([r0, t0]), loss="soft_l1", f_scale=scale, max_nfev=200)
        if best is None or sol.cost < best.cost:
            best = sol
    rot = Rotation.from_rotvec(best.x[:3]).as_matrix()
    err = project(p3, rot, best.x[3:], k) - p2
    rms = float(np.sqrt((err**2).sum(1).mean()))
    return PnPResult(rotation_to_pose(rot), rot, best.x[3:].copy(), rms, rms / max(spread2, 1e-6))


def pose_from_68(points2d: np.ndarray, width: int, height: int, idx68: np.ndarray | None = None,
                 focal_scale: float = 1.5) -> PnPResult:
    """Pose from iBUG-68 landmarks (or the subset ``idx68`` of them) against the mean face."""
    from facebench.importers.landmarks import mean_face

    idx = np.arange(68) if idx68 is None else np.asarray(idx68)
    w = np.where(np.isin(idx, JAW), JAW_WEIGHT, 1.0)
    return solve_pose(points2d, mean_face().points[idx], width, height, focal_scale, w)
