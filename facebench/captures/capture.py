"""``View`` (one image, its camera, and what else is known of it) and ``Capture`` (one subject's views, the head
frame when the capture declares one). Every format's reader returns a ``Capture``; ``Capture.check`` is the one
place that says whether it can be used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from facebench.captures.camera import Camera, Distortion
from facebench.captures.undistort import undistort
from facebench.errors import InvalidCapture
from facebench.imageio import read_file
from facebench.names import check_name
from facebench.pose import Pose, view_pose

IGNORE = 255  # the label of pixels undistortion brings in from outside the image


@dataclass
class View:
    """One image of a capture, with its camera and optional label map, pose, lens distortion and valid-pixel mask.

    ``camera`` is the pinhole camera of the undistorted image: when ``distortion`` is set, ``load_image``,
    ``load_labels`` and ``load_valid`` return the files' pixels resampled to it (OpenCV, same K and size).
    ``valid_path`` is a single-channel mask, nerfstudio's meaning: 0 = ignore this pixel, anything else = valid.
    """

    id: str
    camera: Camera
    image_path: Path | None = None
    label_path: Path | None = None
    pose: Pose | None = None
    distortion: Distortion | None = None
    valid_path: Path | None = None

    def _read(self, path: Path, what: str) -> Image.Image:
        img = read_file(path, what, InvalidCapture)  # decoded whole: a truncated file fails here, naming itself
        if img.size != (self.camera.width, self.camera.height):
            raise InvalidCapture(f"{what} is {img.size[0]}×{img.size[1]} but its camera says "
                                 f"{self.camera.width}×{self.camera.height}", path)
        return img

    def _undistorted(self, array: np.ndarray, nearest: bool, fill: int) -> np.ndarray:
        if self.distortion is None or self.distortion.is_identity:
            return array
        return undistort(array, self.camera.K, self.distortion, nearest=nearest, fill=fill)

    def load_image(self) -> np.ndarray:
        """H×W×3 uint8 RGB, undistorted."""
        if self.image_path is None:
            raise InvalidCapture(f"view {self.id} has no image")
        img = np.array(self._read(self.image_path, "image").convert("RGB"))
        return self._undistorted(img, nearest=False, fill=0)

    def load_labels(self) -> np.ndarray:
        """H×W uint8 class ids, undistorted (nearest; pixels from outside the image are 255, ignore)."""
        if self.label_path is None:
            raise InvalidCapture(f"view {self.id} has no label map")
        img = self._read(self.label_path, "label map")
        if img.mode not in ("L", "P"):
            raise InvalidCapture(f"label map must be a single-channel PNG, got mode {img.mode}", self.label_path)
        return self._undistorted(np.array(img, dtype=np.uint8), nearest=True, fill=IGNORE)

    def load_valid(self) -> np.ndarray | None:
        """H×W bool, True where the pixel may be used, or None when every pixel may.

        The mask at ``valid_path`` (0 = ignore), undistorted (nearest); with a distortion, pixels whose source
        lies outside the image on disk are invalid too."""
        if self.valid_path is None and (self.distortion is None or self.distortion.is_identity):
            return None
        if self.valid_path is None:
            mask = np.full((self.camera.height, self.camera.width), 255, np.uint8)
        else:
            img = self._read(self.valid_path, "valid-pixel mask")
            if img.mode not in ("1", "L", "P", "I", "I;16"):
                raise InvalidCapture(f"valid-pixel mask must be a single-channel image, got mode {img.mode}",
                                     self.valid_path)
            mask = np.where(np.array(img) > 0, 255, 0).astype(np.uint8)
        return self._undistorted(mask, nearest=True, fill=0) > 0


@dataclass
class Capture:
    """A set of calibrated views of one subject, plus the head frame when the capture declares one.

    ``head_to_world`` (4×4 similarity: rotation, translation, scale) is None when the capture does not say
    where the head is: a capture's world frame is arbitrary, so nothing may assume it is the head frame.
    ``source_file`` is the file the cameras were read from (for messages; default ``root/transforms.json``).
    """

    views: list[View]
    subject: str = "subject"
    head_to_world: np.ndarray | None = None
    root: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source_file: Path | None = None

    def __post_init__(self) -> None:
        if self.head_to_world is not None:
            self.head_to_world = checked_frame(self.head_to_world, self.source)

    def __len__(self) -> int:
        return len(self.views)

    @property
    def source(self) -> Path | None:
        """The file the capture was read from (for messages)."""
        if self.source_file is not None:
            return self.source_file
        return self.root / "transforms.json" if self.root is not None else None

    def with_frame(self, head_to_world: np.ndarray) -> Capture:
        """The same capture with its head frame set (declared, read from a file, or estimated)."""
        return dataclasses.replace(self, head_to_world=np.asarray(head_to_world, dtype=np.float64))

    def pose_of(self, view: View) -> Pose:
        """The view's recorded pose, or the one implied by its camera and the head frame."""
        if view.pose is not None:
            return view.pose
        if self.head_to_world is None:
            raise InvalidCapture(f"view {view.id} has no pose and the capture declares no head frame", self.source,
                                 hint="estimate one: facebench generate --head-frame auto")
        return view_pose(view.camera.world_to_camera, self.head_to_world)

    def check(self) -> Capture:
        """Fail early, naming the file: names that are not plain file names (they name generate's work folders
        and the dataset's samples), duplicate view ids, missing images, mixed sizes, cameras that don't look at
        the head."""
        check_name(self.subject, "subject", self.source, InvalidCapture)
        ids: set[str] = set()
        for v in self.views:
            check_name(v.id, "view id", self.source, InvalidCapture)
            if v.id in ids:
                raise InvalidCapture(f"view id {v.id} appears twice", self.source)
            ids.add(v.id)
        sizes: dict[tuple[int, int], Path] = {}
        for v in self.views:
            if v.image_path is None or not v.image_path.exists():
                raise InvalidCapture(f"view {v.id}: image missing", v.image_path or self.root)
            sizes.setdefault((v.camera.width, v.camera.height), v.image_path)
        if len(sizes) > 1:
            (a, pa), (b, pb) = list(sizes.items())[:2]
            raise InvalidCapture(f"inconsistent image sizes: {a[0]}×{a[1]} ({pa.name}) vs {b[0]}×{b[1]} "
                                 f"({pb.name})", self.source)
        if len(self.views) < 2:
            raise InvalidCapture(f"{len(self.views)} view: a multiview capture needs at least 2", self.source)
        if self.head_to_world is not None:  # the head origin must project inside every image, in front
            target, what = self.head_to_world[:3, 3], "the head"
        else:  # no frame yet: the cameras must at least look at one common point
            target, what = common_focus([v.camera for v in self.views]), "the point all cameras look at"
        for v in self.views:
            uv, z = v.camera.project(target[None])
            u, w = uv[0]
            if z[0] <= 0 or not (0 <= u < v.camera.width and 0 <= w < v.camera.height):
                raise InvalidCapture(f"camera of view {v.id} does not see {what} (it projects to "
                                     f"({u:.0f}, {w:.0f}) at depth {z[0]:.2f})", self.source)
        return self


    def check_files(self) -> Capture:
        """Decode every image, label map and valid-pixel mask once (label ids checked against facebench's
        classes), so that a damaged file fails in one line naming it before any work starts, not in a worker."""
        from facebench.labels import FACEBENCH

        for v in self.views:
            if v.image_path is not None:
                v._read(v.image_path, "image")  # also checks its size against the camera
            if v.label_path is not None:
                img = v._read(v.label_path, "label map")
                if img.mode not in ("L", "P"):
                    raise InvalidCapture(f"label map must be a single-channel PNG, got mode {img.mode}",
                                         v.label_path)
                FACEBENCH.validate(np.asarray(img, dtype=np.uint8), v.label_path)
            if v.valid_path is not None:
                v._read(v.valid_path, "valid-pixel mask")
        return self


def checked_frame(matrix: Any, where: Path | str | None = None) -> np.ndarray:
    """A 4×4 head→world similarity (rotation, translation, positive scale), or one line saying what is wrong."""
    try:
        m = np.asarray(matrix, dtype=np.float64).reshape(4, 4)
    except (TypeError, ValueError):
        raise InvalidCapture("head_to_world must be a 4×4 matrix of numbers", where) from None
    if not np.isfinite(m).all() or not np.allclose(m[3], [0, 0, 0, 1]):
        raise InvalidCapture("head_to_world must be finite with last row 0 0 0 1", where)
    det = np.linalg.det(m[:3, :3])
    if det <= 1e-12:
        raise InvalidCapture(f"head_to_world is singular or mirrored (determinant {det:.3g})", where)
    r = m[:3, :3] / np.cbrt(det)
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-4):
        raise InvalidCapture("head_to_world is not a rotation + translation (+ uniform scale)", where)
    return m


def common_focus(cameras: list[Camera]) -> np.ndarray:
    """The point closest (least squares) to every camera's optical axis: where a rig looks."""
    a = np.zeros((3, 3))
    b = np.zeros(3)
    for c in cameras:
        d = c.camera_to_world[:3, 2]
        p = np.eye(3) - np.outer(d, d)
        a += p
        b += p @ c.center
    return np.linalg.lstsq(a, b, rcond=None)[0]


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, from its header only."""
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError):
        raise InvalidCapture("not a readable image", path) from None
