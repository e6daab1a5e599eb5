"""Multiface (https://github.com/facebookresearch/multiface): one folder per entity (``m--…--GHS``) holding
``KRT`` (the cameras) and ``images/{expression}/{camera}/{frame}.png``.

``KRT`` is text, one block per camera: a line with the camera name (optionally followed by the image width
and height), three lines of K, one line of distortion (k1 k2 p1 p2 k3, OpenCV's model), three lines of the
3×4 world→camera [R | t] (OpenCV convention; millimetres), then a blank line. One capture is one frame of one
expression (the first of each unless named). The entity's tracked head pose
(``tracked_mesh/{expression}/{frame}_transform.txt``) is recorded in ``meta``, not used as a head frame: its
axes are the mesh's, not facebench's head frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facebench.captures.camera import Camera, checked_distortion, checked_intrinsics, checked_world_to_camera
from facebench.captures.capture import Capture, View, image_size
from facebench.errors import InvalidCapture, require_exists

FILE = "KRT"
_EXTS = (".png", ".jpg")


def detect(folder: Path) -> bool:
    return (folder / FILE).is_file() and (folder / "images").is_dir()


def read_krt(path: Path) -> dict[str, tuple[np.ndarray, list[float], np.ndarray, tuple[int, int] | None]]:
    """Camera name → (K 3×3, distortion coefficients, world→camera 4×4, (width, height) or None)."""
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise InvalidCapture("not a text file", path) from None
    cams: dict = {}
    k = 0
    while k < len(lines):
        if not lines[k].strip():
            k += 1
            continue
        start = k + 1
        head = lines[k].split()
        block = lines[k + 1:k + 8]
        k += 8
        if len(block) < 7 or any(not b.strip() for b in block):
            raise InvalidCapture(f"line {start}: camera {head[0]} needs 7 lines after its name (3 of K, 1 of "
                                 "distortion, 3 of [R | t])", path)
        rows = []
        for j, line in enumerate(block):
            try:
                rows.append([float(x) for x in line.split()])
            except ValueError:
                raise InvalidCapture(f"line {start + j + 1}: not numbers: {line.strip()[:50]!r}", path) from None
        if [len(r) for r in rows[:3]] != [3, 3, 3] or [len(r) for r in rows[4:]] != [4, 4, 4]:
            raise InvalidCapture(f"line {start}: camera {head[0]}: K rows need 3 numbers and [R | t] rows 4", path)
        wh = None
        if len(head) >= 3:
            try:
                wh = (int(head[1]), int(head[2]))
            except ValueError:
                raise InvalidCapture(f"line {start}: expected 'NAME [WIDTH HEIGHT]', got {lines[start - 1]!r}",
                                     path) from None
        name = head[0]
        if name in cams:
            raise InvalidCapture(f"line {start}: camera {name} appears twice", path)
        what = f"camera {name}"
        cams[name] = (checked_intrinsics(rows[:3], path, f"K of {what}"), rows[3],
                      checked_world_to_camera(rows[4:], path, f"[R | t] of {what}"), wh)
    if not cams:
        raise InvalidCapture("no cameras", path)
    return cams


def read_multiface(folder: str | Path, expression: str | None = None, frame: int | str | None = None) -> Capture:
    """Read one frame of one expression of a Multiface entity: every camera of ``KRT`` with an image of it."""
    folder = require_exists(folder, "Multiface folder")
    path = require_exists(folder / FILE, FILE)
    krt = read_krt(path)
    images = require_exists(folder / "images", "images folder")
    expressions = sorted(d.name for d in images.iterdir() if d.is_dir())
    if not expressions:
        raise InvalidCapture("no expression folders", images)
    if expression is None:
        expression = expressions[0]
    elif expression not in expressions:
        raise InvalidCapture(f"no expression {expression!r}", images, hint=f"there are: {', '.join(expressions[:6])}"
                             + " ..." * (len(expressions) > 6))
    exp = images / expression
    cam_dirs = {d.name: d for d in sorted(exp.iterdir()) if d.is_dir()}
    for name in cam_dirs:
        if name not in krt:
            raise InvalidCapture(f"images/{expression}/{name}/ has no camera in KRT", path,
                                 hint="add its block to KRT, or remove the folder")
    frames = sorted({p.stem for d in cam_dirs.values() for p in d.iterdir() if p.suffix.lower() in _EXTS})
    if not frames:
        raise InvalidCapture("no frame images (images/{expression}/{camera}/{frame}.png)", exp)
    if frame is None:
        frame = frames[0]
    elif isinstance(frame, int) or str(frame).isdigit():
        frame = f"{int(frame):06d}"
    if frame not in frames:
        raise InvalidCapture(f"no frame {frame}", exp, hint=f"frames {frames[0]}..{frames[-1]}")
    views = []
    for name, (K, dist, w2c, wh) in krt.items():
        image = next((cam_dirs[name] / f"{frame}{e}" for e in _EXTS if name in cam_dirs
                      and (cam_dirs[name] / f"{frame}{e}").is_file()), None)
        if image is None:
            continue
        w, h = wh or image_size(image)
        views.append(View(id=f"{folder.name}-{name}", camera=Camera(K, w2c, w, h), image_path=image,
                          distortion=checked_distortion("OPENCV", dist, path, f"camera {name}")))
    pose = folder / "tracked_mesh" / expression / f"{frame}_transform.txt"
    meta = {"format": "multiface", "expression": expression, "frame": frame,
            "license": "other:multiface"}  # the Multiface dataset's own licence terms
    if pose.is_file():
        meta["tracked_head_pose"] = pose.relative_to(folder).as_posix()
    return Capture(views=views, subject=folder.name, root=folder, source_file=path, meta=meta)
