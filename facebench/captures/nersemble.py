"""NeRSemble (https://tobias-kirschstein.github.io/nersemble/): 16 synchronised cameras around a head.

Calibration: ``camera_params.json`` in the participant folder (v1) or in its ``calibration/`` (v2) =
``{"world_2_cam": {serial: 4×4 world→camera, OpenCV}, "intrinsics": 3×3 shared by all cameras}``; the
benchmark release gives ``intrinsics`` per serial instead (``{serial: 3×3}``). Both are read. The dataset's
shared intrinsics are for the full 2200×3208 (w×h) frames, while its images are usually downscaled
(``images-2x``): K is rescaled to the images' size, from ``calibrated_size`` when given, else from the full
size when the principal point says the intrinsics are not at the images' own resolution.

Images, one per camera, ``cam_{serial}.{png,jpg}``, found in the first of: the folder itself, ``images/``,
``images-2x/``, or ``sequences/{sequence}/[timesteps/]frame_{frame:05d}/images[-2x]/`` (v1's layout; the first
sequence and frame unless named). v2 ships videos (``cam_{serial}.mp4``): extract a frame first.
NeRSemble's images are already undistorted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from facebench.captures.camera import Camera, checked_intrinsics, checked_world_to_camera
from facebench.captures.capture import Capture, View, image_size
from facebench.errors import InvalidCapture, require_exists

FILE = "camera_params.json"
FULL_SIZE = (2200, 3208)  # (width, height) the dataset's intrinsics are calibrated at
_IMAGE = re.compile(r"^cam_(.+)\.(png|jpg|jpeg)$", re.IGNORECASE)
_IMAGE_DIRS = ("images", "images-2x")
_FRAME = re.compile(r"^frame_(\d+)$")


def calibration_file(folder: Path) -> Path | None:
    for p in (folder / FILE, folder / "calibration" / FILE):
        if p.is_file():
            return p
    return None


def detect(folder: Path) -> bool:
    return calibration_file(folder) is not None


def read_nersemble(folder: str | Path, sequence: str | None = None, frame: int | str | None = None,
                   calibrated_size: tuple[int, int] | None = None) -> Capture:
    """Read one frame of a NeRSemble participant: the cameras of ``camera_params.json`` that have an image."""
    folder = require_exists(folder, "NeRSemble folder")
    path = calibration_file(folder)
    if path is None:
        raise InvalidCapture(f"no {FILE} here or in calibration/", folder)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InvalidCapture(f"not valid JSON ({e.msg} at line {e.lineno})", path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("world_2_cam"), dict) or "intrinsics" not in doc:
        raise InvalidCapture("expected {'world_2_cam': {serial: 4×4}, 'intrinsics': 3×3 or {serial: 3×3}}", path)
    images_dir, where = _images_dir(folder, sequence, frame)
    images = {m.group(1): p for p in sorted(images_dir.iterdir()) if (m := _IMAGE.match(p.name))}
    if not images:
        raise InvalidCapture("no cam_{serial}.png / .jpg images", images_dir)
    w2c, intr = doc["world_2_cam"], doc["intrinsics"]
    views = []
    for serial, image in images.items():
        if serial not in w2c:
            raise InvalidCapture(f"image {image.name} has no camera: '{serial}' is not in world_2_cam", path,
                                 hint=f"calibrated cameras: {', '.join(sorted(w2c)[:6])}{' ...' * (len(w2c) > 6)}")
        if isinstance(intr, dict):
            if serial not in intr:
                raise InvalidCapture(f"image {image.name} has no intrinsics: '{serial}' is not in intrinsics", path)
            K = checked_intrinsics(intr[serial], path, f"intrinsics of {serial}")
        else:
            K = checked_intrinsics(intr, path, "intrinsics")
        w, h = image_size(image)
        K = _fit(K, w, h, calibrated_size, path, serial)
        cam = Camera(K, checked_world_to_camera(w2c[serial], path, f"world_2_cam of {serial}"), w, h)
        views.append(View(id=f"{folder.name}-cam_{serial}", camera=cam, image_path=image))
    return Capture(views=views, subject=folder.name, root=folder, source_file=path,
                   meta={"format": "nersemble", **where, "license": "other:nersemble"})  # NeRSemble's terms of use


def _images_dir(folder: Path, sequence: str | None, frame: int | str | None) -> tuple[Path, dict]:
    """The folder holding this frame's cam_*.png, and which sequence/frame it is."""
    if sequence is None and frame is None:
        for d in (folder, *(folder / n for n in _IMAGE_DIRS)):
            if _has_images(d):
                return d, {}
    seqs = folder / "sequences"
    if not seqs.is_dir():
        _no_images(folder)
    names = sorted(d.name for d in seqs.iterdir() if d.is_dir())
    if sequence is None:
        if not names:
            raise InvalidCapture("no sequence folders", seqs)
        sequence = names[0]
    elif sequence not in names:
        raise InvalidCapture(f"no sequence {sequence!r}", seqs, hint=f"there are: {', '.join(names[:8])}")
    seq = seqs / sequence
    frames = {int(m.group(1)): d for base in (seq, seq / "timesteps") if base.is_dir()
              for d in base.iterdir() if (m := _FRAME.match(d.name)) and d.is_dir()}
    if not frames:
        for d in (seq, *(seq / n for n in _IMAGE_DIRS)):  # one extracted frame per camera, no frame folders
            if frame is None and _has_images(d):
                return d, {"sequence": sequence}
        _no_images(seq)
    try:
        t = min(frames) if frame is None else int(frame)
    except ValueError:
        raise InvalidCapture(f"frame must be a number, got {frame!r}", seq) from None
    if t not in frames:
        raise InvalidCapture(f"no frame_{t:05d}", seq, hint=f"frames {min(frames)}..{max(frames)}")
    for d in (*(frames[t] / n for n in _IMAGE_DIRS), frames[t]):
        if _has_images(d):
            return d, {"sequence": sequence, "frame": t}
    _no_images(frames[t])
    raise AssertionError  # unreachable


def _has_images(d: Path) -> bool:
    return d.is_dir() and any(_IMAGE.match(p.name) for p in d.iterdir())


def _no_images(where: Path) -> None:
    """Raise: no images; and say so differently when there are v2's videos instead."""
    dirs = [where, *(where / n for n in _IMAGE_DIRS), *sorted(where.glob("sequences/*/images"))]
    mp4 = [p for d in dirs if d.is_dir() for p in sorted(d.glob("cam_*.mp4"))]
    if mp4:
        raise InvalidCapture(f"NeRSemble videos ({mp4[0].name}, ...) but no extracted frames", mp4[0].parent,
                             hint="extract one per camera, e.g. ffmpeg -i cam_S.mp4 -vf 'select=eq(n\\,0)' "
                                  "-frames:v 1 cam_S.png")
    raise InvalidCapture("no cam_{serial}.png / .jpg images here, in images/, images-2x/ or "
                         "sequences/*/[timesteps/]frame_*/images-2x/", where)


def _fit(K: np.ndarray, w: int, h: int, calibrated: tuple[int, int] | None, path: Path, serial: str) -> np.ndarray:
    """K for w×h images: scaled from ``calibrated`` (w, h) if given; else as is when its principal point is
    near the image centre, else scaled from NeRSemble's full resolution when that puts it there."""
    def central(k: np.ndarray) -> bool:
        return abs(k[0, 2] - w / 2) <= 0.15 * w and abs(k[1, 2] - h / 2) <= 0.15 * h

    def scaled(cw: int, ch: int) -> np.ndarray:
        k = K.copy()
        k[0] *= w / cw
        k[1] *= h / ch
        return k

    if calibrated is not None:
        return scaled(*calibrated)
    if central(K):
        return K
    if central(scaled(*FULL_SIZE)):
        return scaled(*FULL_SIZE)
    raise InvalidCapture(f"intrinsics of {serial} (principal point {K[0, 2]:.0f}, {K[1, 2]:.0f}) do not fit its "
                         f"{w}×{h} image", path, hint="pass calibrated_size=(w, h), the size they were calibrated at")
