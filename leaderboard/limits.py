"""Limits a submission must respect; published in the manifest so ``submit`` checks the same ones."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Size, count, ratio and rate limits. Defaults suit hidden splits of a few thousand 512² masks."""

    max_upload_bytes: int = 2048 * MiB  # a whole predictions file or checkpoint weights file
    max_extra_entries: int = 0  # archive entries allowed beyond one per hidden id
    max_entry_ratio: float = 50.0  # uncompressed/compressed per zip entry (PNGs barely deflate: ~1)
    max_total_ratio: float = 20.0  # the same over the whole archive or parquet file ...
    ratio_floor_bytes: int = 16 * MiB  # ... once it expands past this (identical tiny masks dedupe well in parquet)
    png_slack_bytes: int = 65536  # a mask PNG may be at most 2·H·W + this many bytes
    max_config_bytes: int = 1 * MiB  # checkpoint JSON config
    rate_limit: int = 5  # submissions per submitter ...
    rate_window_s: int = 86400  # ... per this many seconds

    def max_png_bytes(self, height: int, width: int) -> int:
        """PNG of a label map: at worst a little over raw size (2× leaves room for odd encoders)."""
        return 2 * height * width + self.png_slack_bytes

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Limits:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
