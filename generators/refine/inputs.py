"""The one view type of the refinement: a capture's view with its image, the parser's mask and truth if known.

A view keeps this shape from the capture to the fits (``lift.py`` turns it into the engine's ``FitView``
at the last moment), so nothing downstream zips parallel lists of images, cameras and masks back together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facebench.captures import Camera, Capture
from facebench.labels import FACEBENCH
from facebench.parsing import Parser


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
    """Images, the parser's masks and (when every view has one) the capture's label maps, checked once."""
    images = [v.load_image() for v in capture.views]
    masks = parser.predict(images, [v.id for v in capture.views])
    with_truth = all(v.label_path for v in capture.views)
    out = []
    for v, image, mask in zip(capture.views, images, masks, strict=True):
        FACEBENCH.validate(mask, f"initial mask of {v.id}")
        truth = v.load_labels() if with_truth else None
        if truth is not None:
            FACEBENCH.validate(truth, v.label_path)
        out.append(SubjectView(id=v.id, camera=v.camera, image=image, mask=mask, yaw=capture.pose_of(v).yaw,
                               truth=truth))
    return out
