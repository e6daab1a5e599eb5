"""Cameras: a pinhole ``Camera`` (K, OpenCV world→camera, size), the lens ``Distortion`` kept beside it, and
the checks every reader shares, so that a bad number in any format fails as one line naming its file.

Inside facebench cameras are OpenCV (x right, y down, z forward). A view's ``camera`` is always the pinhole
camera of the *undistorted* image; its ``distortion`` (if any) says how the pixels on disk depart from it,
in OpenCV's own terms, and ``View.load_image`` removes it with OpenCV (``undistort.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facebench.errors import InvalidCapture

_GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass
class Camera:
    """A pinhole camera: intrinsics, world→camera extrinsics (OpenCV) and image size."""

    K: np.ndarray
    world_to_camera: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        self.K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        self.world_to_camera = np.asarray(self.world_to_camera, dtype=np.float64).reshape(4, 4)

    @property
    def camera_to_world(self) -> np.ndarray:
        return np.linalg.inv(self.world_to_camera)

    @property
    def center(self) -> np.ndarray:
        return self.camera_to_world[:3, 3]

    def to_opengl_c2w(self) -> np.ndarray:
        """nerfstudio / OpenGL camera→world (x right, y up, z backward)."""
        return self.camera_to_world @ _GL_TO_CV

    @classmethod
    def from_opengl_c2w(cls, c2w: np.ndarray, K: np.ndarray, width: int, height: int) -> Camera:
        c2w_cv = np.asarray(c2w, dtype=np.float64) @ _GL_TO_CV
        return cls(K=K, world_to_camera=np.linalg.inv(c2w_cv), width=width, height=height)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project N×3 world points: (N×2 pixel coords, N depths)."""
        p = points @ self.world_to_camera[:3, :3].T + self.world_to_camera[:3, 3]
        z = p[:, 2]
        uv = (p @ self.K.T)[:, :2] / np.where(np.abs(z) < 1e-12, 1e-12, z)[:, None]
        return uv, z

    def scaled(self, width: int, height: int) -> Camera:
        """The same camera at another resolution (pixel-centre consistent)."""
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0] *= sx
        K[1] *= sy
        return Camera(K=K, world_to_camera=self.world_to_camera.copy(), width=width, height=height)


# model → the coefficient counts OpenCV accepts for it
DISTORTION_MODELS: dict[str, tuple[int, ...]] = {
    "OPENCV": (4, 5, 8, 12, 14),  # cv2.undistort's distCoeffs: k1 k2 p1 p2 [k3 [k4 k5 k6 [s1 s2 s3 s4 [τx τy]]]]
    "OPENCV_FISHEYE": (4,),  # cv2.fisheye: k1 k2 k3 k4 (θd = θ(1 + k1θ² + k2θ⁴ + k3θ⁶ + k4θ⁸))
}


@dataclass(frozen=True)
class Distortion:
    """How a view's pixels on disk depart from its pinhole camera, as OpenCV models it.

    ``model`` is ``"OPENCV"`` (``params`` = OpenCV's distCoeffs, in its order: k1, k2, p1, p2[, k3[, k4, k5,
    k6 …]]) or ``"OPENCV_FISHEYE"`` (``params`` = k1, k2, k3, k4 of ``cv2.fisheye``). Readers translate their
    format's parameters into these; nothing else in facebench knows any other lens model.
    """

    model: str
    params: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(float(p) for p in self.params))
        if self.model not in DISTORTION_MODELS:
            raise ValueError(f"unknown distortion model {self.model!r} (use {' or '.join(DISTORTION_MODELS)})")
        if len(self.params) not in DISTORTION_MODELS[self.model]:
            raise ValueError(f"{self.model} takes {' or '.join(map(str, DISTORTION_MODELS[self.model]))} "
                             f"coefficients, got {len(self.params)}")
        if not all(np.isfinite(self.params)):
            raise ValueError("distortion coefficients must be finite")

    @property
    def is_identity(self) -> bool:
        """True for an OPENCV lens with every coefficient 0. A fisheye never is: with k = 0 it is still the
        equidistant projection (r = θ), not the pinhole one (r = tan θ)."""
        return self.model == "OPENCV" and not any(self.params)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "params": list(self.params)}


# ---------------------------------------------------------------------------------------------------------------
# Checks shared by the readers: each turns a malformed value into one InvalidCapture line naming the file.

Where = Path | str | None


def numbers(value: Any, shape: tuple[int, ...] | None, where: Where, what: str) -> np.ndarray:
    """``value`` as a finite float array (of ``shape`` unless None), or one line saying what is wrong."""
    if isinstance(value, (str, bytes, dict)) or value is None:
        raise InvalidCapture(f"{what} must be numbers, got {_short(value)}", where)
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidCapture(f"{what} must be numbers, got {_short(value)}", where) from None
    if shape is not None and a.shape != shape:
        raise InvalidCapture(f"{what} must be {'×'.join(map(str, shape)) or 'one'} number{'s' * bool(shape)}, "
                             f"got shape {'×'.join(map(str, a.shape)) or 'scalar'}", where)
    if not np.isfinite(a).all():
        raise InvalidCapture(f"{what} has non-finite numbers", where)
    return a


def number(value: Any, where: Where, what: str) -> float:
    if isinstance(value, bool):
        raise InvalidCapture(f"{what} must be a number, got {value}", where)
    return float(numbers(value, (), where, what))


def size(value: Any, where: Where, what: str) -> int:
    """A positive integer image size (JSON ints, or floats that are whole)."""
    v = number(value, where, what)
    if v < 1 or v != int(v):
        raise InvalidCapture(f"{what} must be a positive whole number of pixels, got {_short(value)}", where)
    return int(v)


def checked_intrinsics(K: Any, where: Where, what: str) -> np.ndarray:
    """A 3×3 pinhole K (its 3×4 / 4×4 padded forms accepted): positive focal lengths, last row 0 0 1."""
    k = numbers(K, None, where, what)
    if k.shape in ((3, 4), (4, 4)):
        k = k[:3, :3]
    if k.shape != (3, 3):
        raise InvalidCapture(f"{what} must be a 3×3 matrix, got shape {'×'.join(map(str, k.shape)) or 'scalar'}",
                             where)
    if not np.allclose(k[2], [0, 0, 1]) or k[1, 0] != 0:
        raise InvalidCapture(f"{what} is not an intrinsic matrix (expected [[fx, s, cx], [0, fy, cy], [0, 0, 1]])",
                             where)
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise InvalidCapture(f"{what} has focal lengths {k[0, 0]:g}, {k[1, 1]:g}: they must be positive", where)
    return k


def checked_world_to_camera(m: Any, where: Where, what: str) -> np.ndarray:
    """A rigid world→camera transform (3×4 or 4×4): a rotation (orthonormal, det +1) and a translation."""
    a = numbers(m, None, where, what)
    if a.shape == (3, 4):
        a = np.vstack([a, [0, 0, 0, 1]])
    if a.shape != (4, 4):
        raise InvalidCapture(f"{what} must be a 3×4 or 4×4 matrix, got shape "
                             f"{'×'.join(map(str, a.shape)) or 'scalar'}", where)
    if not np.allclose(a[3], [0, 0, 0, 1]):
        raise InvalidCapture(f"{what} must have last row 0 0 0 1", where)
    checked_rotation(a[:3, :3], where, what)
    return a


def checked_rotation(r: np.ndarray, where: Where, what: str) -> np.ndarray:
    """``r`` if it is a rotation (orthonormal to 1e-4, determinant +1), else one line."""
    det = float(np.linalg.det(r))
    if abs(det) < 1e-9:
        raise InvalidCapture(f"{what} is singular (rotation determinant {det:.3g})", where)
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-4) or det < 0:
        raise InvalidCapture(f"{what} is not a rotation (determinant {det:.4g}; it must be orthonormal with "
                             f"determinant +1)", where, hint="is it world→camera, unscaled and unmirrored?")
    return r


def checked_distortion(model: str, params: Any, where: Where, what: str) -> Distortion | None:
    """A Distortion, or None for a pinhole lens (OPENCV with every coefficient 0: nothing to undistort)."""
    p = numbers(params, None, where, f"{what} distortion")
    if p.ndim != 1:
        raise InvalidCapture(f"{what} distortion must be a list of numbers", where)
    try:
        d = Distortion(model, tuple(p))
    except ValueError as e:
        raise InvalidCapture(f"{what}: {e}", where) from None
    return None if d.is_identity else d


def _short(value: Any) -> str:
    s = repr(value)
    return s if len(s) <= 40 else s[:37] + "..."
