"""Multiview captures: cameras, views, and their on-disk formats.

Inside facebench cameras are OpenCV (x right, y down, z forward) with a 4×4 world→camera
matrix and 3×3 intrinsics K. nerfstudio's ``transforms.json`` stores OpenGL camera→world;
the conversion happens in this module's reader and writer and nowhere else.

facebench adds a few fields to ``transforms.json`` (ignored by other tools):
per frame ``label_path`` (an H×W uint8 PNG of class ids) and ``pose`` ({yaw, pitch, roll});
at the top level ``facebench`` = {subject, head_to_world, label_set, ...}.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facebench.errors import InputNotFound, InvalidCapture, require_exists
from facebench.files import atomic_write
from facebench.pose import Pose, view_pose

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


@dataclass
class View:
    """One image of a capture, with its camera and optional label map and pose."""

    id: str
    camera: Camera
    image_path: Path | None = None
    label_path: Path | None = None
    pose: Pose | None = None

    def load_image(self) -> np.ndarray:
        """H×W×3 uint8 RGB."""
        if self.image_path is None:
            raise InvalidCapture(f"view {self.id} has no image")
        path = require_exists(self.image_path, "image")
        img = np.array(Image.open(path).convert("RGB"))
        if img.shape[:2] != (self.camera.height, self.camera.width):
            raise InvalidCapture(
                f"image is {img.shape[1]}×{img.shape[0]} but its camera says "
                f"{self.camera.width}×{self.camera.height}",
                path,
            )
        return img

    def load_labels(self) -> np.ndarray:
        """H×W uint8 class ids."""
        if self.label_path is None:
            raise InvalidCapture(f"view {self.id} has no label map")
        path = require_exists(self.label_path, "label map")
        img = Image.open(path)
        if img.mode not in ("L", "P"):
            raise InvalidCapture(f"label map must be a single-channel PNG, got mode {img.mode}", path)
        return np.array(img, dtype=np.uint8)


@dataclass
class Capture:
    """A set of calibrated views of one subject, plus the head frame when the capture declares one.

    ``head_to_world`` (4×4 similarity: rotation, translation, scale) is None when the capture does not say
    where the head is: a capture's world frame is arbitrary, so nothing may assume it is the head frame.
    """

    views: list[View]
    subject: str = "subject"
    head_to_world: np.ndarray | None = None
    root: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.head_to_world is not None:
            self.head_to_world = checked_frame(self.head_to_world, self.source)

    def __len__(self) -> int:
        return len(self.views)

    @property
    def source(self) -> Path | None:
        """The file the capture was read from (for messages)."""
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
        """Fail early, naming the file: missing images, mixed sizes, cameras that don't look at the head."""
        sizes: dict[tuple[int, int], Path] = {}
        for v in self.views:
            if v.image_path is None or not v.image_path.exists():
                raise InvalidCapture(f"view {v.id}: image missing", v.image_path or self.root)
            sizes.setdefault((v.camera.width, v.camera.height), v.image_path)
        if len(sizes) != 1:
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


def find_captures(paths: list[Path]) -> list[Path]:
    """Each path is a capture folder (with transforms.json) or a folder of such folders, in name order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise InputNotFound("capture does not exist", p)
        if (p / "transforms.json").exists():
            out.append(p)
            continue
        subs = sorted(d for d in p.iterdir() if (d / "transforms.json").exists()) if p.is_dir() else []
        if not subs:
            raise InvalidCapture("no transforms.json here or in its subfolders", p)
        out.extend(subs)
    return out


def read_capture(path: str | Path) -> Capture:
    """Read a capture folder and check it once (``Capture.check``): what the refinement reads."""
    return read_transforms(path).check()


def write_transforms(capture: Capture, path: str | Path) -> Path:
    """Write ``capture`` as a nerfstudio ``transforms.json`` (paths relative to its folder)."""
    path = Path(path)
    root = path.parent
    frames = []
    for v in capture.views:
        K = v.camera.K
        frame: dict[str, Any] = {
            "file_path": _rel(v.image_path, root),
            "transform_matrix": v.camera.to_opengl_c2w().tolist(),
            "fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]),
            "cx": float(K[0, 2]), "cy": float(K[1, 2]),
            "w": int(v.camera.width), "h": int(v.camera.height),
            "facebench_id": v.id,
        }  # fmt: skip
        if v.label_path is not None:
            frame["label_path"] = _rel(v.label_path, root)
        if v.pose is not None or capture.head_to_world is not None:
            pose = capture.pose_of(v)
            frame["pose"] = {"yaw": pose.yaw, "pitch": pose.pitch, "roll": pose.roll}
        frames.append(frame)
    doc = {
        "camera_model": "OPENCV",
        "frames": frames,
        "facebench": {"subject": capture.subject, **capture.meta, **(
            {} if capture.head_to_world is None else {"head_to_world": capture.head_to_world.tolist()})},
    }
    atomic_write(path, json.dumps(doc, indent=1))
    return path


def _rel(p: Path | None, root: Path) -> str | None:
    if p is None:
        return None
    p = Path(p)
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(p)


def read_transforms(path: str | Path) -> Capture:
    """Read a nerfstudio ``transforms.json`` (a file, or a folder that holds one)."""
    path = require_exists(path, "capture")
    if path.is_dir():
        path = require_exists(path / "transforms.json", "transforms.json")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InvalidCapture(f"not valid JSON ({e.msg} at line {e.lineno})", path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list) or not doc["frames"]:
        raise InvalidCapture("no 'frames' list", path)
    root = path.parent
    views = []
    for i, fr in enumerate(doc["frames"]):
        def get(key: str, fr: dict = fr, i: int = i) -> Any:
            if key in fr:
                return fr[key]
            if key in doc:
                return doc[key]
            raise InvalidCapture(f"frame {i} has no '{key}' (neither per frame nor global)", path)

        try:
            c2w = np.asarray(fr["transform_matrix"], dtype=np.float64)
            if c2w.shape == (3, 4):
                c2w = np.vstack([c2w, [0, 0, 0, 1]])
            if c2w.shape != (4, 4):
                raise ValueError
        except (KeyError, ValueError, TypeError):
            raise InvalidCapture(f"frame {i} has no valid 4×4 'transform_matrix'", path) from None
        fx, fy = float(get("fl_x")), float(get("fl_y") if ("fl_y" in fr or "fl_y" in doc) else get("fl_x"))
        K = np.array([[fx, 0, float(get("cx"))], [0, fy, float(get("cy"))], [0, 0, 1]])
        cam = Camera.from_opengl_c2w(c2w, K, int(get("w")), int(get("h")))
        pose = Pose(**fr["pose"]) if isinstance(fr.get("pose"), dict) else None
        file_path = fr.get("file_path")
        if not file_path:
            raise InvalidCapture(f"frame {i} has no 'file_path'", path)
        label = fr.get("label_path")
        views.append(View(
            id=str(fr.get("facebench_id", Path(file_path).stem)),
            camera=cam,
            image_path=root / file_path,
            label_path=None if label is None else root / label,
            pose=pose,
        ))  # fmt: skip
    fb = doc.get("facebench", {})
    meta = {k: v for k, v in fb.items() if k not in ("subject", "head_to_world")}
    return Capture(
        views=views,
        subject=str(fb.get("subject", root.name)),
        head_to_world=None if fb.get("head_to_world") is None else checked_frame(fb["head_to_world"], path),
        root=root,
        meta=meta,
    )


def _qvec_to_rotmat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


_COLMAP_PINHOLE = {"SIMPLE_PINHOLE": 3, "PINHOLE": 4, "SIMPLE_RADIAL": 4, "RADIAL": 5, "OPENCV": 8}


def read_colmap(model_dir: str | Path, images_dir: str | Path | None = None) -> Capture:
    """Import a COLMAP text model (``cameras.txt`` + ``images.txt``); COLMAP is already OpenCV.

    Distortion parameters are dropped: undistort with COLMAP first if they matter.
    """
    model_dir = require_exists(model_dir, "COLMAP model folder")
    cams_path = require_exists(Path(model_dir) / "cameras.txt", "cameras.txt")
    imgs_path = require_exists(Path(model_dir) / "images.txt", "images.txt")
    images_dir = Path(images_dir) if images_dir is not None else Path(model_dir).parent / "images"
    intrinsics: dict[int, tuple[np.ndarray, int, int]] = {}
    for ln, line in enumerate(cams_path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        tok = line.split()
        try:
            cid, model, w, h = int(tok[0]), tok[1], int(tok[2]), int(tok[3])
            params = [float(t) for t in tok[4:]]
        except (IndexError, ValueError):
            raise InvalidCapture(f"line {ln}: expected 'ID MODEL W H PARAMS...'", cams_path) from None
        if model not in _COLMAP_PINHOLE or len(params) < _COLMAP_PINHOLE[model]:
            raise InvalidCapture(f"line {ln}: unsupported camera model {model}", cams_path,
                                 hint="use SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL or OPENCV")
        if model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
            fx = fy = params[0]
            cx, cy = params[1], params[2]
        else:
            fx, fy, cx, cy = params[:4]
        intrinsics[cid] = (np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]), w, h)
    lines = [ln for ln in imgs_path.read_text().splitlines() if not ln.startswith("#")]
    views = []
    # images.txt alternates a pose line and a (possibly empty) 2D-points line.
    for k in range(0, len(lines), 2):
        line = lines[k].strip()
        if not line:
            continue
        tok = line.split()
        try:
            q = np.array([float(t) for t in tok[1:5]])
            t = np.array([float(t) for t in tok[5:8]])
            cid, name = int(tok[8]), tok[9]
        except (IndexError, ValueError):
            raise InvalidCapture(f"bad image line {line[:60]!r}", imgs_path) from None
        if cid not in intrinsics:
            raise InvalidCapture(f"image {name} refers to unknown camera {cid}", imgs_path)
        K, w, h = intrinsics[cid]
        w2c = np.eye(4)
        w2c[:3, :3] = _qvec_to_rotmat(q)
        w2c[:3, 3] = t
        views.append(View(id=Path(name).stem, camera=Camera(K, w2c, w, h), image_path=images_dir / name))
    if not views:
        raise InvalidCapture("no images", imgs_path)
    return Capture(views=views, subject=Path(model_dir).name, root=Path(model_dir))
