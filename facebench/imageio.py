"""Deterministic, lossless PNG encoding and decoding for images and label maps; writes go through facebench.files.

Decoding is where untrusted bytes (a dataset shard, a prediction folder, a photo) become arrays, so it is the one
place that turns every way those bytes can be broken into one ``InvalidImage``/``InvalidMask`` line: empty,
truncated, not an image, a bad checksum, a header declaring more pixels than ``MAX_PIXELS`` (a decompression bomb
is a few dozen bytes on disk), a mask that is not a single-channel 8-bit PNG. Pillow raises a different exception
type for almost each of these (OSError, UnidentifiedImageError, SyntaxError, ValueError, struct.error,
DecompressionBombError, or a DecompressionBombWarning printed on stderr), so the decoder catches them all.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facebench.errors import FacebenchError, InvalidImage, InvalidMask, require_exists
from facebench.files import atomic_write

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 1 << 26  # 67 M pixels (8192²): far above any face crop, far below what would exhaust memory
MASK_MODES = ("L", "P")  # 8-bit greyscale or palette: one uint8 class id per pixel


def encode_png(array: np.ndarray) -> bytes:
    """uint8 H×W (label map) or H×W×3 (RGB) -> PNG bytes; same array, same bytes."""
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8, got {array.dtype}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def decode_png(data: bytes | None, what: str = "image", path: str | Path | None = None) -> np.ndarray:
    """PNG bytes -> uint8 array: H×W×3 RGB for ``what="image"`` (any format Pillow reads), H×W class ids for
    ``what="mask"`` (lossless PNG only). Any damage raises one line naming ``path``; nothing else escapes."""
    error = InvalidMask if what == "mask" else InvalidImage
    if data is not None and not isinstance(data, bytes | bytearray | memoryview):
        raise error(f"{what} must be bytes, got {type(data).__name__}", path)
    if what == "mask" and data and not bytes(data).startswith(PNG_SIGNATURE):
        raise InvalidMask("mask is not PNG (lossy formats corrupt label ids)", path)
    img = open_image(data, what, path, error)
    w, h = img.size
    if what == "mask":
        if img.mode not in MASK_MODES:
            raise InvalidMask(f"mask must be a single-channel 8-bit PNG, got mode {img.mode}", path)
        array, expected = np.array(img, dtype=np.uint8), (h, w)
    else:
        array, expected = np.array(img.convert("RGB")), (h, w, 3)
    if array.shape != expected or array.dtype != np.uint8:  # a decoder that returned less than it declared
        raise error(f"{what} decoded to {array.dtype} {array.shape}, expected {expected}", path)
    return array


def open_image(data: bytes | None, what: str = "image", path: str | Path | None = None,
               error: type[FacebenchError] = InvalidImage) -> Image.Image:
    """Image bytes -> a fully decoded Pillow image in its own mode (a capture's valid-pixel mask may be 16-bit),
    or ``error`` in one line naming ``path``: missing, empty, over ``MAX_PIXELS``, or undecodable."""
    if data is None:
        raise error(f"{what} is missing (null)", path)
    data = bytes(data)
    if not data:
        raise error(f"{what} is empty (0 bytes)", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # a warning would be a second line
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise error(f"{what} declares {w}×{h} pixels, more than {MAX_PIXELS} (a decompression bomb?)", path)
            if w < 1 or h < 1:
                raise error(f"{what} declares an empty {w}×{h} image", path)
            img.load()
    except FacebenchError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own, lower-bound check
        raise error(f"{what} declares more than {MAX_PIXELS} pixels (a decompression bomb?)", path) from None
    except Exception as e:  # noqa: BLE001 - Pillow's answer to damaged bytes has no common exception type
        raise error(f"not a readable {'PNG mask' if what == 'mask' else what} ({_reason(e)})", path) from None
    return img


def _reason(e: BaseException) -> str:
    if isinstance(e, UnidentifiedImageError):  # its text names a BytesIO object, not the file
        return "unknown format or damaged header"
    text = " ".join(str(e).split()) or "no details"
    return f"{type(e).__name__}: {text[:160]}"


def _read_bytes(path: str | Path, what: str, error: type[FacebenchError]) -> bytes:
    path = require_exists(path, what)
    try:
        return Path(path).read_bytes()
    except OSError as e:  # a folder, no permission
        raise error(f"cannot read the {what} ({e.strerror or e})", path) from None


def read_file(path: str | Path, what: str = "image", error: type[FacebenchError] = InvalidImage) -> Image.Image:
    """An image file as a decoded Pillow image (``open_image``); a missing or unreadable file is one line too."""
    return open_image(_read_bytes(path, what, error), what, path, error)


def read_mask(path: str | Path) -> np.ndarray:
    """Read an H×W uint8 label PNG, with a one-line error if it is anything else."""
    return decode_png(_read_bytes(path, "mask", InvalidMask), "mask", path)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file (PNG, JPEG, ...) as H×W×3 uint8 RGB, with a one-line error if it cannot be."""
    return decode_png(_read_bytes(path, "image", InvalidImage), "image", path)


def read_photo(path: str | Path) -> np.ndarray:
    """A photo as H×W×3 uint8 RGB the way viewers show it: turned upright by its EXIF orientation.

    Phones store a portrait photo as landscape pixels plus an orientation tag; parsed as stored, the face is
    on its side, where a parser trained on upright faces fails without a word. Captures are not read this way:
    their cameras were calibrated on the stored pixels."""
    try:
        upright = ImageOps.exif_transpose(read_file(path))
    except Exception as e:  # noqa: BLE001 - a damaged EXIF block: Pillow raises many types
        raise InvalidImage(f"its EXIF orientation cannot be read ({_reason(e)})", path) from None
    return np.array(upright.convert("RGB"))


def write_png(path: str | Path, array: np.ndarray) -> Path:
    return atomic_write(path, encode_png(array))
