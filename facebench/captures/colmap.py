"""COLMAP sparse models, text and binary (https://colmap.github.io/format.html), parsed here with ``struct``.

A model is ``cameras.{bin,txt}`` + ``images.{bin,txt}`` (``points3D`` is not needed) in the folder itself, in
``sparse/``, or in ``sparse/N/``; images live in ``images/`` beside ``sparse/`` unless ``images_dir`` says
otherwise. When both forms are present the binary one is read, as COLMAP does. COLMAP is already OpenCV:
``images`` holds world→camera (unit quaternion QW QX QY QZ, translation). Every camera model COLMAP defines is
known; those OpenCV can undistort are read with their distortion kept (``Distortion``), the others (FOV,
THIN_PRISM_FISHEYE, RAD_TAN_THIN_PRISM_FISHEYE) fail in one line.

Binary layout (little-endian): cameras.bin = u64 count, then per camera i32 id, i32 model_id, u64 width,
u64 height, f64 × params; images.bin = u64 count, then per image i32 id, f64 × 4 qvec, f64 × 3 tvec,
i32 camera_id, NUL-terminated name, u64 n_points2D, n × (f64 x, f64 y, i64 point3D_id).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from facebench.captures.camera import Camera, Distortion, checked_distortion, checked_intrinsics, numbers
from facebench.captures.capture import Capture, View
from facebench.errors import InvalidCapture, require_exists

# COLMAP's camera models: id → (name, number of parameters), as in colmap/src/colmap/sensor/models.h
MODELS: dict[int, tuple[str, int]] = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5), 4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5), 8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12), 11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
}  # fmt: skip
PARAMS = {name: n for name, n in MODELS.values()}
UNSUPPORTED = ("FOV", "THIN_PRISM_FISHEYE", "RAD_TAN_THIN_PRISM_FISHEYE")  # no OpenCV equivalent


def model_dirs(folder: Path) -> list[Path]:
    """Folders holding a COLMAP model at ``folder``, ``folder/sparse`` or ``folder/sparse/N``."""
    cands = [folder, folder / "sparse"]
    if (folder / "sparse").is_dir():
        cands += sorted((d for d in (folder / "sparse").iterdir() if d.is_dir()), key=lambda d: d.name)
    return [d for d in cands if _file(d, "cameras") and _file(d, "images")]


def detect(folder: Path) -> bool:
    return bool(model_dirs(folder))


def _file(model: Path, stem: str) -> Path | None:
    for ext in (".bin", ".txt"):
        if (model / f"{stem}{ext}").is_file():
            return model / f"{stem}{ext}"
    return None


def read_colmap(model_dir: str | Path, images_dir: str | Path | None = None) -> Capture:
    """Import a COLMAP model (text or binary): a capture folder holding it (here, ``sparse/``, ``sparse/N/``)
    or the model folder itself. Distortion is kept; ``View.load_image`` undistorts."""
    folder = require_exists(model_dir, "COLMAP model folder")
    models = model_dirs(folder)
    if not models:
        raise InvalidCapture("no COLMAP model (cameras.bin/.txt + images.bin/.txt) here, in sparse/ or sparse/N/",
                             folder)
    if len(models) > 1:
        raise InvalidCapture(f"{len(models)} COLMAP models ({', '.join(str(m.relative_to(folder)) for m in models)})",
                             folder, hint="name the one to read, e.g. sparse/0")
    model = models[0]
    root = _project_root(model)
    images = Path(images_dir) if images_dir is not None else root / "images"
    cams_path, imgs_path = _file(model, "cameras"), _file(model, "images")
    cameras = _read_cameras(cams_path)
    views = []
    for image_id, q, t, cid, name in _read_images(imgs_path):
        where = f"image {image_id} ({name})"
        if cid not in cameras:
            raise InvalidCapture(f"{where} refers to camera {cid}, which cameras{cams_path.suffix} lacks", imgs_path)
        K, w, h, dist = cameras[cid]
        w2c = np.eye(4)
        w2c[:3, :3] = _rotation(q, imgs_path, where)
        w2c[:3, 3] = t
        views.append(View(id=Path(name).with_suffix("").as_posix().replace("/", "-"), camera=Camera(K, w2c, w, h),
                          image_path=images / name, distortion=dist))
    if not views:
        raise InvalidCapture("no images", imgs_path)
    return Capture(views=views, subject=root.name, root=root, source_file=imgs_path,
                   meta={"format": "colmap", "model": model.relative_to(root).as_posix() if model != root else "."})


def _project_root(model: Path) -> Path:
    """The folder above ``sparse/`` (or ``sparse/N/``), where COLMAP keeps ``images/``."""
    if model.name == "sparse":
        return model.parent
    if model.parent.name == "sparse":
        return model.parent.parent
    return model


def _intrinsics(model: str, p: np.ndarray, where: Path, what: str) -> tuple[np.ndarray, Distortion | None]:
    """COLMAP parameters → (K, OpenCV distortion). Fisheye radials follow θd = θ(1 + k1θ² + …) in both."""
    if model in UNSUPPORTED or model not in PARAMS:
        raise InvalidCapture(f"{what}: unsupported camera model {model}", where,
                             hint="undistort with `colmap image_undistorter` first, or recalibrate as "
                                  "OPENCV / OPENCV_FISHEYE / FULL_OPENCV")
    if len(p) != PARAMS[model]:
        raise InvalidCapture(f"{what}: {model} takes {PARAMS[model]} parameters, got {len(p)}", where)
    if model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE"):
        (f, cx, cy), rest = p[:3], p[3:]
        fx = fy = f
    else:
        (fx, fy, cx, cy), rest = p[:4], p[4:]
    K = checked_intrinsics([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], where, what)
    pad = [0.0] * 4
    if model in ("SIMPLE_PINHOLE", "PINHOLE"):
        return K, None
    if model in ("SIMPLE_RADIAL", "RADIAL"):  # k1 [k2]
        return K, checked_distortion("OPENCV", [*rest, *pad][:4], where, what)
    if model in ("OPENCV", "FULL_OPENCV"):  # k1 k2 p1 p2 [k3 k4 k5 k6]: OpenCV's own order
        return K, checked_distortion("OPENCV", list(rest), where, what)
    return K, checked_distortion("OPENCV_FISHEYE", [*rest, *pad][:4], where, what)  # k1 [k2 [k3 k4]]


def _read_cameras(path: Path) -> dict[int, tuple[np.ndarray, int, int, Distortion | None]]:
    out = {}
    for cid, model, w, h, params, what in (_cameras_bin if path.suffix == ".bin" else _cameras_txt)(path):
        if w < 1 or h < 1:
            raise InvalidCapture(f"{what}: image size {w}×{h}", path)
        if cid in out:
            raise InvalidCapture(f"{what}: camera id {cid} appears twice", path)
        K, dist = _intrinsics(model, params, path, what)
        out[cid] = (K, w, h, dist)
    return out


def _cameras_txt(path: Path):
    for ln, line in enumerate(_text(path).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tok = line.split()
        try:
            cid, model, w, h = int(tok[0]), tok[1], int(tok[2]), int(tok[3])
            params = np.array([float(t) for t in tok[4:]])
        except (IndexError, ValueError):
            raise InvalidCapture(f"line {ln}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...'", path) from None
        yield cid, model, w, h, numbers(params, None, path, f"line {ln} parameters"), f"line {ln}"


def _cameras_bin(path: Path):
    data = path.read_bytes()
    with _binary(path):
        (n,), off = struct.unpack_from("<Q", data, 0), 8
        for _ in range(n):
            cid, model_id, w, h = struct.unpack_from("<iiQQ", data, off)
            off += 24
            if model_id not in MODELS:
                raise InvalidCapture(f"camera {cid}: unknown camera model id {model_id}", path,
                                     hint="COLMAP defines ids 0-11; is this a cameras.bin?")
            model, k = MODELS[model_id]
            params = np.array(struct.unpack_from(f"<{k}d", data, off))
            off += 8 * k
            yield cid, model, w, h, numbers(params, None, path, f"camera {cid} parameters"), f"camera {cid}"
        _trailing(data, off, path)


def _read_images(path: Path):
    return (_images_bin if path.suffix == ".bin" else _images_txt)(path)


def _images_txt(path: Path):
    """Two lines per image: 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME', then its 2D points (maybe empty)."""
    lines = _text(path).splitlines()
    k = 0
    while k < len(lines):
        line, ln = lines[k].strip(), k + 1
        k += 1
        if not line or line.startswith("#"):
            continue
        tok = line.split()
        try:
            image_id = int(tok[0])
            q = np.array([float(t) for t in tok[1:5]])
            t = np.array([float(t) for t in tok[5:8]])
            cid, name = int(tok[8]), " ".join(tok[9:])
            if len(q) != 4 or len(t) != 3 or not name:
                raise ValueError
        except (IndexError, ValueError):
            raise InvalidCapture(f"line {ln}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME', got "
                                 f"{line[:60]!r}", path) from None
        k += 1  # the POINTS2D line that follows every image line
        yield image_id, q, numbers(t, (3,), path, f"line {ln} translation"), cid, name


def _images_bin(path: Path):
    data = path.read_bytes()
    with _binary(path):
        (n,), off = struct.unpack_from("<Q", data, 0), 8
        for _ in range(n):
            image_id, qw, qx, qy, qz, tx, ty, tz, cid = struct.unpack_from("<idddddddi", data, off)
            off += 64
            end = data.index(b"\0", off)
            name = data[off:end].decode("utf-8")
            (n_points,) = struct.unpack_from("<Q", data, end + 1)
            off = end + 9 + 24 * n_points
            if off > len(data):
                raise struct.error("truncated")
            t = numbers([tx, ty, tz], (3,), path, f"image {image_id} translation")
            yield image_id, np.array([qw, qx, qy, qz]), t, cid, name
        _trailing(data, off, path)


class _binary:
    """Turn the ways a malformed binary model fails into one line."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, (struct.error, ValueError, UnicodeDecodeError, MemoryError)):
            raise InvalidCapture(f"truncated or malformed COLMAP binary model ({exc})", self.path,
                                 hint="re-export it with `colmap model_converter`") from None
        return False


def _trailing(data: bytes, off: int, path: Path) -> None:
    if off != len(data):
        raise InvalidCapture(f"{len(data) - off} bytes left after the last record: not a COLMAP binary model", path)


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise InvalidCapture("not a text file", path, hint="a binary model must be named .bin") from None


def _rotation(q: np.ndarray, where: Path, what: str) -> np.ndarray:
    q = numbers(q, (4,), where, f"{what} quaternion")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1) > 1e-3:
        raise InvalidCapture(f"{what}: quaternion QW QX QY QZ has norm {norm:.4g}, not 1", where)
    w, x, y, z = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip
