"""Read a PNG's declared size from its header, so oversized or bomb images are refused undecoded."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from facebench.imageio import PNG_SIGNATURE


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    color_type: int  # 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA

    @property
    def single_channel_8bit(self) -> bool:
        return self.bit_depth == 8 and self.color_type in (0, 3)


def png_header(data: bytes) -> PngHeader | None:
    """The IHDR fields, or None if ``data`` does not start like a PNG."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height, depth, ctype = struct.unpack(">IIBB", data[16:26])
    return PngHeader(width, height, depth, ctype)
