"""Undistortion with OpenCV: a distorted image on disk → the image its view's pinhole camera would have taken.

The new camera matrix is the view's own K (same size, no crop, no resize), so pixel (u, v) of the result is
where ``Camera.project`` puts a point. The map is built once per (K, distortion, size) by OpenCV
(``initUndistortRectifyMap``, or its ``cv2.fisheye`` twin) and applied with ``cv2.remap``: bilinear for RGB,
nearest for label maps and masks. Pixels whose source falls outside the image get ``fill`` (labels: 255,
ignore; validity: 0, invalid). OpenCV is imported here only, and only when a view is actually distorted.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from facebench.captures.camera import Distortion
from facebench.errors import BackendUnavailable


def _cv2():
    try:
        import cv2
    except ImportError:
        raise BackendUnavailable("undistorting a view needs OpenCV, which is not installed",
                                 hint="pip install opencv-python-headless") from None
    return cv2


@lru_cache(maxsize=4)  # a view's image, labels and mask share one map; 1920×1080 maps are 16 MB
def _maps(k: tuple[float, ...], model: str, params: tuple[float, ...], width: int,
          height: int) -> tuple[np.ndarray, np.ndarray]:
    cv2 = _cv2()
    K = np.array(k, dtype=np.float64).reshape(3, 3)
    d = np.array(params, dtype=np.float64)
    if model == "OPENCV_FISHEYE":
        mx, my = cv2.fisheye.initUndistortRectifyMap(K, d, np.eye(3), K, (width, height), cv2.CV_32FC1)
    else:
        mx, my = cv2.initUndistortRectifyMap(K, d, None, K, (width, height), cv2.CV_32FC1)
    mx.setflags(write=False)
    my.setflags(write=False)
    return mx, my


def undistort(array: np.ndarray, K: np.ndarray, distortion: Distortion, nearest: bool = False,
              fill: int = 0) -> np.ndarray:
    """``array`` (H×W or H×W×C uint8, as on disk) resampled to the pinhole camera K of the same size."""
    cv2 = _cv2()

    h, w = array.shape[:2]
    mx, my = _maps(tuple(np.asarray(K, dtype=np.float64).ravel().tolist()), distortion.model, distortion.params,
                   w, h)
    out = cv2.remap(np.ascontiguousarray(array), mx, my, cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return out.reshape(array.shape)
