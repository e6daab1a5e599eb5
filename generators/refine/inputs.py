"""The one view type of the refinement: a capture's view with its image, the parser's mask and truth if known.

A view keeps this shape from the capture to the fits (``lift.py`` turns it into the engine's ``FitView``
at the last moment), so nothing downstream zips parallel lists of images, cameras and masks back together.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from facebench.captures import Camera, Capture
from facebench.errors import InvalidCapture
from facebench.headframe import estimate_head_frame, frame_angle
from facebench.labels import FACEBENCH, IGNORE
from facebench.parsing import Parser
from facebench.pose import split_frame, view_pose


@dataclass
class SubjectView:
    """One input view on its way to the fits."""

    id: str
    camera: Camera
    image: np.ndarray  # H×W×3 uint8 RGB
    mask: np.ndarray  # H×W uint8: the initial parser's labels
    yaw: float = 0.0  # head yaw seen from this camera, degrees (for view weighting)
    confidence: np.ndarray | None = None  # H×W float in [0, 1], when the parser gives one
    truth: np.ndarray | None = None  # H×W uint8 exact labels (synthetic captures); only ever used to measure


def load_views(capture: Capture, parser: Parser) -> list[SubjectView]:
    """Images, the parser's masks and (when every view has one) the capture's label maps, checked once.

    Yaws stay 0 until the head frame is known (``in_frame``)."""
    images = [v.load_image() for v in capture.views]
    masks = parser.predict(images, [v.id for v in capture.views])
    if parser.labels.names != FACEBENCH.names:  # a declared order (e.g. CelebAMask-HQ's), matched by name
        masks = [FACEBENCH.remap_from(m, parser.labels) for m in masks]
    with_truth = all(v.label_path for v in capture.views)
    out = []
    for v, image, mask in zip(capture.views, images, masks, strict=True):
        FACEBENCH.validate(mask, f"initial mask of {v.id}")
        valid = v.load_valid()  # a capture's valid-pixel mask (nerfstudio mask_path): elsewhere nothing is known
        if valid is not None:
            mask = np.where(valid, mask, IGNORE).astype(np.uint8)
        truth = v.load_labels() if with_truth else None
        if truth is not None:
            FACEBENCH.validate(truth, v.label_path)
        out.append(SubjectView(id=v.id, camera=v.camera, image=image, mask=mask, truth=truth))
    return out


def head_frame(capture: Capture, views: list[SubjectView], mode: str) -> tuple[np.ndarray, dict]:
    """The capture's head→world frame and a record of where it came from.

    ``auto`` estimates it from the parser's masks (``facebench.headframe``; when the capture also declares
    one, the angle between the two is recorded); ``capture`` takes the declared one (``facebench.head_to_world``
    in transforms.json, or a frame file the pipeline has set) and refuses when there is none."""
    if mode == "capture":
        if capture.head_to_world is None:
            raise InvalidCapture("the capture declares no head frame", capture.source,
                                 hint="use --head-frame auto (estimate it) or --head-frame FILE (a 4×4 matrix)")
        return capture.head_to_world, {"mode": "capture", "head_to_world": capture.head_to_world.tolist(),
                                       "scale": split_frame(capture.head_to_world)[1]}
    est = estimate_head_frame([v.camera for v in views], [v.mask for v in views], capture.source)
    record = {"mode": "auto", **est.summary()}
    if capture.head_to_world is not None:
        record["angle_to_declared_deg"] = frame_angle(est.head_to_world, capture.head_to_world)
    return est.head_to_world, record


def in_frame(views: list[SubjectView], head_to_world: np.ndarray) -> list[SubjectView]:
    """The views with their yaw in the head frame (what view weighting and the quality tables use)."""
    return [dataclasses.replace(v, yaw=view_pose(v.camera.world_to_camera, head_to_world).yaw) for v in views]


def crop_to_head(v: SubjectView, size: int, margin: float = 0.2) -> tuple[SubjectView, dict | None]:
    """A view larger than ``size`` cropped to a square around the head (the parser's head classes, plus
    ``margin`` of its size each side) and resized to ``size``², its intrinsics updated to match.

    Real captures come at 1–6 K pixels, non-square; the fits work at a few hundred. Views no larger than
    ``size`` are left as they are (never upsampled). Returns the view and the crop (None if untouched)."""
    from PIL import Image

    from facebench.headframe import HEAD_CLASSES

    h, w = v.mask.shape
    if max(h, w) <= size:
        return v, None
    ys, xs = np.nonzero(np.isin(v.mask, HEAD_CLASSES))
    if len(xs):
        cx, cy = (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2
        side = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) * (1 + 2 * margin)
    else:  # no head found in this view: its centre square
        cx, cy, side = w / 2, h / 2, min(h, w)
    side = int(round(min(max(side, size / 4), min(h, w))))
    x0 = int(round(min(max(cx - side / 2, 0), w - side)))
    y0 = int(round(min(max(cy - side / 2, 0), h - side)))
    box = (x0, y0, x0 + side, y0 + side)
    f = size / side

    def image(a: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(a).crop(box).resize((size, size), Image.Resampling.LANCZOS))

    def labels(a: np.ndarray | None) -> np.ndarray | None:
        if a is None:
            return None
        return np.asarray(Image.fromarray(a).crop(box).resize((size, size), Image.Resampling.NEAREST))

    K = v.camera.K.copy()
    K[0, 2] -= x0
    K[1, 2] -= y0
    K[:2] *= f
    conf = None if v.confidence is None else np.asarray(
        Image.fromarray(v.confidence.astype(np.float32)).crop(box).resize((size, size), Image.Resampling.BILINEAR))
    out = dataclasses.replace(v, camera=Camera(K, v.camera.world_to_camera.copy(), size, size), image=image(v.image),
                              mask=labels(v.mask), truth=labels(v.truth), confidence=conf)
    return out, {"view": v.id, "x0": x0, "y0": y0, "side": side, "size": size}

