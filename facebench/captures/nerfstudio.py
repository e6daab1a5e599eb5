"""nerfstudio ``transforms.json``: the format facebench writes, and reads from nerfstudio, instant-ngp-style tools.

Fields (https://docs.nerf.studio/quickstart/data_conventions.html): intrinsics ``fl_x fl_y cx cy w h`` and the
distortion ``k1 k2 k3 k4 p1 p2``, each per frame or once at the top; ``camera_model`` ``OPENCV`` (default;
also COLMAP's perspective names) or ``OPENCV_FISHEYE``; per frame ``file_path``, ``transform_matrix`` (OpenGL
camera→world, converted to OpenCV here and nowhere else) and optionally ``mask_path`` (0 = ignore the pixel).

facebench adds a few fields (ignored by other tools): per frame ``label_path`` (an H×W uint8 PNG of class
ids), ``pose`` ({yaw, pitch, roll}) and ``facebench_id``; at the top ``facebench`` = {subject, head_to_world,
label_set, ...}. ``head_to_world`` is the only head frame any format declares.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from facebench.captures.camera import (
    Camera,
    Distortion,
    checked_distortion,
    checked_intrinsics,
    checked_rotation,
    number,
    size,
)
from facebench.captures.capture import Capture, View, checked_frame
from facebench.errors import InvalidCapture, require_exists
from facebench.files import atomic_write
from facebench.pose import Pose

FILE = "transforms.json"
PERSPECTIVE = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL")  # nerfstudio: CameraType.PERSPECTIVE
FISHEYE = "OPENCV_FISHEYE"
_COEFFS = ("k1", "k2", "k3", "k4", "p1", "p2")


def detect(folder: Path) -> bool:
    return (folder / FILE).is_file()


def read_transforms(path: str | Path) -> Capture:
    """Read a nerfstudio ``transforms.json`` (a file, or a folder that holds one)."""
    path = require_exists(path, "capture")
    if path.is_dir():
        path = require_exists(path / FILE, FILE)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InvalidCapture(f"not valid JSON ({e.msg} at line {e.lineno})", path) from None
    except UnicodeDecodeError:
        raise InvalidCapture("not a text file", path) from None
    except (OSError, RecursionError) as e:  # unreadable, or JSON nested thousands deep
        raise InvalidCapture(f"not readable JSON ({type(e).__name__})", path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list) or not doc["frames"]:
        raise InvalidCapture("no 'frames' list", path)
    root = path.parent
    views = [_view(i, fr, doc, root, path) for i, fr in enumerate(doc["frames"])]
    fb = doc.get("facebench", {})
    if not isinstance(fb, dict):
        raise InvalidCapture("'facebench' must be an object", path)
    meta = {k: v for k, v in fb.items() if k not in ("subject", "head_to_world")}
    return Capture(
        views=views,
        subject=str(fb.get("subject", root.name)),
        head_to_world=None if fb.get("head_to_world") is None else checked_frame(fb["head_to_world"], path),
        root=root,
        meta=meta,
        source_file=path,
    )


def _view(i: int, fr: Any, doc: dict, root: Path, path: Path) -> View:
    if not isinstance(fr, dict):
        raise InvalidCapture(f"frame {i} is not an object", path)

    def has(key: str) -> bool:
        return key in fr or key in doc

    def get(key: str) -> Any:
        if key in fr:
            return fr[key]
        if key in doc:
            return doc[key]
        raise InvalidCapture(f"frame {i} has no '{key}' (neither per frame nor global)", path)

    try:
        c2w = np.asarray(fr["transform_matrix"], dtype=np.float64)
        if c2w.shape == (3, 4):
            c2w = np.vstack([c2w, [0, 0, 0, 1]])
        if c2w.shape != (4, 4) or not np.isfinite(c2w).all():
            raise ValueError
    except (KeyError, ValueError, TypeError):
        raise InvalidCapture(f"frame {i} has no valid 4×4 'transform_matrix'", path) from None
    checked_rotation(c2w[:3, :3], path, f"frame {i} 'transform_matrix'")
    what = f"frame {i}"
    fx = number(get("fl_x"), path, f"{what} fl_x")
    fy = number(get("fl_y"), path, f"{what} fl_y") if has("fl_y") else fx
    K = checked_intrinsics([[fx, 0, number(get("cx"), path, f"{what} cx")],
                            [0, fy, number(get("cy"), path, f"{what} cy")], [0, 0, 1]], path, what)
    cam = Camera.from_opengl_c2w(c2w, K, size(get("w"), path, f"{what} w"), size(get("h"), path, f"{what} h"))
    file_path = fr.get("file_path")
    if not file_path or not isinstance(file_path, str):
        raise InvalidCapture(f"frame {i} has no 'file_path'", path)
    pose = fr.get("pose")
    if pose is not None:
        if not isinstance(pose, dict) or not {"yaw", "pitch"} <= set(pose) <= {"yaw", "pitch", "roll"}:
            raise InvalidCapture(f"frame {i} 'pose' must be {{yaw, pitch, roll}} in degrees", path)
        pose = Pose(**{k: number(v, path, f"{what} pose {k}") for k, v in pose.items()})
    label, mask = fr.get("label_path"), fr.get("mask_path")
    for key, value in (("label_path", label), ("mask_path", mask)):
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidCapture(f"frame {i} '{key}' must be a relative path, got {value!r}", path)
    return View(
        id=str(fr.get("facebench_id", Path(file_path).stem)),
        camera=cam,
        image_path=root / file_path,
        label_path=None if label is None else root / label,
        pose=pose,
        distortion=_distortion(str(get("camera_model")) if has("camera_model") else "OPENCV",
                               {k: number(get(k), path, f"{what} {k}") if has(k) else 0.0 for k in _COEFFS},
                               path, what),
        valid_path=None if mask is None else root / mask,
    )


def _distortion(model: str, c: dict[str, float], path: Path, what: str) -> Distortion | None:
    """nerfstudio's coefficients in OpenCV's terms. Perspective: radial 1 + k1 r² + k2 r⁴ + k3 r⁶ + k4 r⁸ and
    tangential p1 p2 (OpenCV has no r⁸ numerator term, so k4 must be 0); fisheye: OpenCV's k1..k4."""
    if model in PERSPECTIVE:
        if c["k4"]:
            raise InvalidCapture(f"{what}: k4 = {c['k4']:g} with camera_model {model}: the r⁸ radial term has no "
                                 "OpenCV equivalent", path, hint="set k4 to 0, or calibrate as OPENCV_FISHEYE")
        return checked_distortion("OPENCV", [c["k1"], c["k2"], c["p1"], c["p2"], c["k3"]], path, what)
    if model == FISHEYE:
        if c["p1"] or c["p2"]:
            raise InvalidCapture(f"{what}: OPENCV_FISHEYE has no tangential terms, but p1/p2 are set", path)
        return checked_distortion(FISHEYE, [c["k1"], c["k2"], c["k3"], c["k4"]], path, what)
    raise InvalidCapture(f"{what}: unsupported camera model {model}", path,
                         hint="facebench reads OPENCV (and the other perspective models) or OPENCV_FISHEYE")


def write_transforms(capture: Capture, path: str | Path) -> Path:
    """Write ``capture`` as a nerfstudio ``transforms.json`` (paths relative to its folder)."""
    path = Path(path)
    root = path.parent
    models = {"OPENCV" if v.distortion is None else v.distortion.model for v in capture.views}
    if len(models) > 1:
        raise InvalidCapture("transforms.json has one camera_model for all frames, but the views mix "
                             + " and ".join(sorted(models)), path)
    model = models.pop() if models else "OPENCV"
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
        if v.distortion is not None:
            frame.update(_coefficients(v.distortion, path))
        if v.label_path is not None:
            frame["label_path"] = _rel(v.label_path, root)
        if v.valid_path is not None:
            frame["mask_path"] = _rel(v.valid_path, root)
        if v.pose is not None or capture.head_to_world is not None:
            pose = capture.pose_of(v)
            frame["pose"] = {"yaw": pose.yaw, "pitch": pose.pitch, "roll": pose.roll}
        frames.append(frame)
    doc = {
        "camera_model": model,
        "frames": frames,
        "facebench": {"subject": capture.subject, **capture.meta, **(
            {} if capture.head_to_world is None else {"head_to_world": capture.head_to_world.tolist()})},
    }
    atomic_write(path, json.dumps(doc, indent=1))
    return path


def _coefficients(d: Distortion, path: Path) -> dict[str, float]:
    if d.model == FISHEYE:
        return dict(zip(("k1", "k2", "k3", "k4"), d.params, strict=True))
    p = (*d.params, 0.0)[:5] if len(d.params) <= 5 else d.params
    if len(p) > 5 and any(p[5:]):
        raise InvalidCapture("transforms.json cannot hold OpenCV's rational or thin-prism coefficients "
                             "(k4 k5 k6 s1..s4)", path, hint="write it undistorted, or keep its COLMAP model")
    return {"k1": p[0], "k2": p[1], "p1": p[2], "p2": p[3], "k3": p[4]}


def _rel(p: Path | None, root: Path) -> str | None:
    if p is None:
        return None
    p = Path(p)
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(p)

