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
from facebench.labels import FACEBENCH
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
    with_truth = all(v.label_path for v in capture.views)
    out = []
    for v, image, mask in zip(capture.views, images, masks, strict=True):
        FACEBENCH.validate(mask, f"initial mask of {v.id}")
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
