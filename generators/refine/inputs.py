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


def parser_masks(parser: Parser, images: list[np.ndarray], ids: list[str]) -> list[np.ndarray]:
    """The parser's masks in facebench's label order (a declared order, e.g. CelebAMask-HQ's, matched by name)."""
    masks = parser.predict(images, ids)
    if parser.labels.names != FACEBENCH.names:
        masks = [FACEBENCH.remap_from(m, parser.labels) for m in masks]
    return masks


def load_views(capture: Capture, parser: Parser) -> list[SubjectView]:
    """Images, the parser's masks and (when every view has one) the capture's label maps, checked once.

    Yaws stay 0 until the head frame is known (``in_frame``)."""
    images = [v.load_image() for v in capture.views]
    masks = parser_masks(parser, images, [v.id for v in capture.views])
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


def head_frame(capture: Capture, views: list[SubjectView], mode: str,
               masks: list[np.ndarray] | None = None) -> tuple[np.ndarray, dict]:
    """The capture's head→world frame and a record of where it came from.

    ``auto`` estimates it from the parser's masks, or from ``masks`` when given (``localise.py``), with
    ``facebench.headframe``; when the capture also declares one, the angle between the two is recorded.
    ``capture`` takes the declared one (``facebench.head_to_world`` in transforms.json, or a frame file the
    pipeline has set) and refuses when there is none."""
    if mode == "capture":
        if capture.head_to_world is None:
            raise InvalidCapture("the capture declares no head frame", capture.source,
                                 hint="use --head-frame auto (estimate it) or --head-frame FILE (a 4×4 matrix)")
        return capture.head_to_world, {"mode": "capture", "head_to_world": capture.head_to_world.tolist(),
                                       "scale": split_frame(capture.head_to_world)[1]}
    est = estimate_head_frame([v.camera for v in views], masks or [v.mask for v in views], capture.source)
    record = {"mode": "auto", **est.summary()}
    if capture.head_to_world is not None:
        record["angle_to_declared_deg"] = frame_angle(est.head_to_world, capture.head_to_world)
    return est.head_to_world, record


def in_frame(views: list[SubjectView], head_to_world: np.ndarray) -> list[SubjectView]:
    """The views with their yaw in the head frame (what view weighting and the quality tables use)."""
    return [dataclasses.replace(v, yaw=view_pose(v.camera.world_to_camera, head_to_world).yaw) for v in views]


def frame_box(v: SubjectView, head_to_world: np.ndarray, frame_height: float) -> tuple[float, float, float] | None:
    """Centre (x, y) and side in pixels of the square that frames ``frame_height`` metres at the head origin
    in this view (how the parser's training images and the new views are framed); None when the head origin
    is behind the camera or outside the image."""
    p = v.camera.world_to_camera @ np.append(head_to_world[:3, 3], 1.0)
    if p[2] <= 0:
        return None
    x, y = (v.camera.K @ p[:3])[:2] / p[2]
    h, w = v.mask.shape
    if not (0 <= x < w and 0 <= y < h):
        return None
    return float(x), float(y), float(v.camera.K[1, 1] * frame_height * split_frame(head_to_world)[1] / p[2])


def mask_box(mask: np.ndarray, margin: float) -> tuple[float, float, float] | None:
    """Centre and side of a mask's head classes (their 1st–99th percentiles, so a few stray pixels of a
    first-pass mask don't stretch it) plus ``margin`` of the head's size each side; None if no head."""
    from facebench.headframe import HEAD_CLASSES

    ys, xs = np.nonzero(np.isin(mask, HEAD_CLASSES))
    if len(xs) < 50:
        return None
    (x0, x1), (y0, y1) = np.percentile(xs, [1, 99]), np.percentile(ys, [1, 99])
    return (x0 + x1 + 1) / 2, (y0 + y1 + 1) / 2, max(x1 - x0 + 1, y1 - y0 + 1) * (1 + 2 * margin)


def square_in_image(box: tuple[float, float, float], h: int, w: int, min_side: float) -> tuple[int, int, int]:
    """``box`` (centre and side) as whole pixels (x0, y0, side): the side kept between ``min_side`` and the
    image's shorter edge, the square moved inside the image rather than cut by its border."""
    cx, cy, side = box
    side = int(round(min(max(side, min_side), min(h, w))))
    x0 = int(round(min(max(cx - side / 2, 0), w - side)))
    y0 = int(round(min(max(cy - side / 2, 0), h - side)))
    return x0, y0, side


def crop_to_head(v: SubjectView, size: int, margin: float = 0.2,
                 box: tuple[float, float, float] | None = None) -> tuple[SubjectView, dict | None]:
    """A view larger than ``size`` cropped to a square around the head and resized to ``size``², its
    intrinsics updated to match. The square is ``box`` (centre and side, e.g. ``frame_box``) when given,
    else the parser's head plus ``margin`` each side (``mask_box``), else the image's centre square.

    Real captures come at 1–6 K pixels, non-square; the fits work at a few hundred. Views no larger than
    ``size`` are left as they are (never upsampled). Returns the view and the crop (None if untouched)."""
    from PIL import Image

    h, w = v.mask.shape
    if max(h, w) <= size:
        return v, None
    x0, y0, side = square_in_image(box or mask_box(v.mask, margin) or (w / 2, h / 2, min(h, w)), h, w, size / 4)
    box = (x0, y0, x0 + side, y0 + side)
    f = size / side

    def image(a: np.ndarray) -> np.ndarray:
        return np.array(Image.fromarray(a).crop(box).resize((size, size), Image.Resampling.LANCZOS))  # writable

    def labels(a: np.ndarray | None) -> np.ndarray | None:
        if a is None:
            return None
        return np.array(Image.fromarray(a).crop(box).resize((size, size), Image.Resampling.NEAREST))

    K = v.camera.K.copy()
    K[0, 2] -= x0
    K[1, 2] -= y0
    K[:2] *= f
    conf = None if v.confidence is None else np.array(
        Image.fromarray(v.confidence.astype(np.float32)).crop(box).resize((size, size), Image.Resampling.BILINEAR))
    out = dataclasses.replace(v, camera=Camera(K, v.camera.world_to_camera.copy(), size, size), image=image(v.image),
                              mask=labels(v.mask), truth=labels(v.truth), confidence=conf)
    return out, {"view": v.id, "x0": x0, "y0": y0, "side": side, "size": size}


def relabel_crops(views: list[SubjectView], cropped: list[bool], parser: Parser) -> list[SubjectView]:
    """The parser run again on the head crops, replacing the masks that were cropped and resized.

    On a large frame the first pass sees the head at a fraction of the parser's input (a 4 K frame with
    the head in its middle third: the head is some 80 of 256 pixels), and its mask is then cut down with
    nearest-neighbour sampling. A face parser expects the head to fill the frame, as the crop does. Pixels
    the capture marks invalid stay ignored."""
    idx = [i for i, c in enumerate(cropped) if c]
    if not idx:
        return views
    masks = parser_masks(parser, [views[i].image for i in idx], [views[i].id for i in idx])
    out = list(views)
    for i, mask in zip(idx, masks, strict=True):
        FACEBENCH.validate(mask, f"initial mask of the head crop of {views[i].id}")
        keep_ignored = np.where(views[i].mask == IGNORE, IGNORE, mask).astype(np.uint8)
        out[i] = dataclasses.replace(views[i], mask=keep_ignored, confidence=None)
    return out
