"""Deterministic, lossless PNG encoding and decoding for images and label maps; writes go through facebench.files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from facebench.errors import InvalidMask, require_exists
from facebench.files import atomic_write

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_png(array: np.ndarray) -> bytes:
    """uint8 H×W (label map) or H×W×3 (RGB) -> PNG bytes; same array, same bytes."""
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8, got {array.dtype}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def decode_png(data: bytes, what: str = "image", path: str | Path | None = None) -> np.ndarray:
    """PNG bytes -> uint8 array (RGB for images, single channel for masks)."""
    img = Image.open(io.BytesIO(data))
    if what == "mask":
        if not data.startswith(PNG_SIGNATURE):
            raise InvalidMask("mask is not a lossless PNG", path)
        if img.mode not in ("L", "P"):
            raise InvalidMask(f"mask must be single-channel, got mode {img.mode}", path)
        return np.array(img, dtype=np.uint8)
    return np.array(img.convert("RGB"))


def read_mask(path: str | Path) -> np.ndarray:
    """Read an H×W uint8 label PNG, with a one-line error if it is anything else."""
    path = require_exists(path, "mask")
    return decode_png(path.read_bytes(), "mask", path)


def read_image(path: str | Path) -> np.ndarray:
    path = require_exists(path, "image")
    return np.asarray(Image.open(path).convert("RGB"))


def write_png(path: str | Path, array: np.ndarray) -> Path:
    return atomic_write(path, encode_png(array))
