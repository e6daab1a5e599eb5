"""FaceScape multi-view: one folder per subject and expression (``IMGS_ROOT/{id}/{exp}/``) holding ``{i}.jpg``
and ``params.json`` (https://github.com/zhuhao-nju/facescape/blob/master/doc/doc_mview_model.md).

``params.json`` keys, per view index i: ``{i}_K`` (intrinsics; 3×3, or padded 4×4), ``{i}_Rt`` (3×4
world→camera, OpenCV convention), ``{i}_distortion`` (k1 k2 p1 p2 k3, OpenCV's order), ``{i}_width``,
``{i}_height``, ``{i}_valid`` (false: the calibration of that view is unreliable, so it is skipped), and
``{i}_matches``, ``{i}_sn``, ``{i}_ori`` (not needed). FaceScape's images must be undistorted before
projecting: ``View.load_image`` does that.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from facebench.captures.camera import Camera, checked_distortion, checked_intrinsics, checked_world_to_camera, size
from facebench.captures.capture import Capture, View
from facebench.errors import InvalidCapture, require_exists

FILE = "params.json"
_VIEW = re.compile(r"^(\d+)_K$")


def detect(folder: Path) -> bool:
    return (folder / FILE).is_file()


def read_facescape(folder: str | Path) -> Capture:
    """Read one FaceScape tuple (a subject's expression): the valid views of ``params.json``."""
    folder = require_exists(folder, "FaceScape folder")
    path = require_exists(folder / FILE, FILE)
    try:
        params = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InvalidCapture(f"not valid JSON ({e.msg} at line {e.lineno})", path) from None
    if not isinstance(params, dict):
        raise InvalidCapture("expected an object of '{i}_K', '{i}_Rt', ... keys", path)
    indices = sorted(int(m.group(1)) for k in params if (m := _VIEW.match(str(k))))
    if not indices:
        raise InvalidCapture("no '{i}_K' keys: not a FaceScape params.json", path)
    subject = f"{folder.parent.name}-{folder.name}" if folder.parent.name else folder.name
    views, skipped = [], []
    for i in indices:
        def get(key: str, i: int = i) -> Any:
            if f"{i}_{key}" not in params:
                raise InvalidCapture(f"view {i} has '{i}_K' but no '{i}_{key}'", path)
            return params[f"{i}_{key}"]

        valid = params.get(f"{i}_valid", True)
        if not isinstance(valid, (bool, int)):
            raise InvalidCapture(f"'{i}_valid' must be true or false, got {valid!r}", path)
        if not valid:
            skipped.append(i)
            continue
        what = f"view {i}"
        cam = Camera(checked_intrinsics(get("K"), path, f"'{i}_K'"),
                     checked_world_to_camera(get("Rt"), path, f"'{i}_Rt'"),
                     size(get("width"), path, f"'{i}_width'"), size(get("height"), path, f"'{i}_height'"))
        dist = get("distortion")
        views.append(View(id=f"{subject}-{i}", camera=cam, image_path=_image(folder, i),
                          distortion=checked_distortion("OPENCV", dist, path, what)))
    if not views:
        raise InvalidCapture(f"every view is marked invalid ({len(skipped)} '_valid': false)", path)
    return Capture(views=views, subject=subject, root=folder, source_file=path,
                   meta={"format": "facescape", "expression": folder.name, "invalid_views": skipped,
                         "license": "other:facescape"})  # FaceScape's licence agreement: research use


def _image(folder: Path, i: int) -> Path:
    for ext in (".jpg", ".png", ".jpeg"):
        if (folder / f"{i}{ext}").is_file():
            return folder / f"{i}{ext}"
    return folder / f"{i}.jpg"
