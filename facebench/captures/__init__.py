"""Multiview captures: cameras, views, and the public formats they come in, read into one ``Capture``.

    from facebench.captures import read_capture, find_captures, detect_format, READERS
    cap = read_capture("path/to/subject")          # format detected from the files, then Capture.check()
    cap = read_capture(folder, "multiface", frame=102)
    img = cap.views[0].load_image()                # H×W×3 RGB, undistorted to cap.views[0].camera

Modules, one idea each: ``camera`` (Camera, Distortion, the shared value checks), ``undistort`` (OpenCV
remaps), ``capture`` (View, Capture), ``formats`` (the registry), and one reader per format: ``nerfstudio``
(transforms.json, also written), ``colmap`` (text and binary models), ``facescape`` (params.json),
``nersemble`` (camera_params.json), ``multiface`` (KRT). A new format is a reader module plus one line in
``formats.READERS``.

Inside facebench cameras are OpenCV (x right, y down, z forward) with a 4×4 world→camera matrix and 3×3
intrinsics K of the undistorted image; each reader converts its format's convention and lens model. A
capture's world frame is arbitrary: ``head_to_world`` is None unless the capture declares it (only
facebench's own transforms.json does).
"""

from facebench.captures.camera import DISTORTION_MODELS, Camera, Distortion
from facebench.captures.capture import Capture, View, checked_frame, common_focus
from facebench.captures.colmap import read_colmap
from facebench.captures.facescape import read_facescape
from facebench.captures.formats import READERS, CaptureReader, detect_format, find_captures, read_capture
from facebench.captures.multiface import read_multiface
from facebench.captures.nerfstudio import read_transforms, write_transforms
from facebench.captures.nersemble import read_nersemble

__all__ = [
    "DISTORTION_MODELS", "READERS", "Camera", "Capture", "CaptureReader", "Distortion", "View", "checked_frame",
    "common_focus", "detect_format", "find_captures", "read_capture", "read_colmap", "read_facescape",
    "read_multiface", "read_nersemble", "read_transforms", "write_transforms",
]  # fmt: skip
