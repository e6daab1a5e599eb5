"""The facebench dataset: one schema, one layout, locally and on the Hub.

Layout of a dataset folder::

    README.md                 card: YAML metadata (configs per split and per pose bin) + class table
    id2label.json             {"0": "background", ...}
    data/{split}-{pose_bin}-NNNNN-of-NNNNN.parquet

Shards are grouped by pose bin (a refinement of DESIGN.md's ``{split}-NNNNN-of-NNNNN``) so the card
can declare one config per pose bin by file pattern, with no data duplicated. ``data/{split}-*``
still selects a whole split. Images and masks are ``datasets.Image`` columns holding PNG bytes;
masks must be PNG, since JPEG silently corrupts label ids.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from facebench.card import DatasetInfo, render_card
from facebench.errors import InvalidDataset, InvalidMask, require_exists
from facebench.files import replace_dir, temp_dir
from facebench.imageio import PNG_SIGNATURE, decode_png, encode_png
from facebench.labels import FACEBENCH, LabelSet
from facebench.pose import POSE_BIN_NAMES, pose_bin

LABEL_SOURCES = ("gt", "initial", "refined")
SPLITS = ("train", "validation", "test")

# The schema, declared once. (name, arrow type, datasets feature)
_STR = {"dtype": "string", "_type": "Value"}
_F64 = {"dtype": "float64", "_type": "Value"}
_IMG = {"_type": "Image"}
_IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
COLUMNS: tuple[tuple[str, pa.DataType, dict[str, str]], ...] = (
    ("id", pa.string(), _STR),
    ("image", _IMAGE_STRUCT, _IMG),
    ("mask", _IMAGE_STRUCT, _IMG),
    ("subject", pa.string(), _STR),
    ("yaw", pa.float64(), _F64),
    ("pitch", pa.float64(), _F64),
    ("roll", pa.float64(), _F64),
    ("pose_bin", pa.string(), _STR),
    ("label_source", pa.string(), _STR),
    ("provenance", pa.string(), _STR),
)
REQUIRED = tuple(c[0] for c in COLUMNS)
META_COLUMNS = tuple(c for c in REQUIRED if c not in ("image", "mask"))


@dataclass
class Sample:
    """One labelled image. ``image``: H×W×3 uint8 RGB; ``mask``: H×W uint8 class ids (255 = ignore)."""

    id: str
    image: np.ndarray
    mask: np.ndarray
    subject: str
    yaw: float
    pitch: float
    roll: float = 0.0
    label_source: str = "gt"
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def pose_bin(self) -> str:
        return pose_bin(self.yaw)


def _features_metadata() -> bytes:
    feats = {name: feat for name, _, feat in COLUMNS}
    return json.dumps({"info": {"features": feats}}).encode()


SCHEMA = pa.schema([(n, t) for n, t, _ in COLUMNS], metadata={b"huggingface": _features_metadata()})


def _row(s: Sample, labels: LabelSet) -> dict[str, Any]:
    if s.image.dtype != np.uint8 or s.image.ndim != 3 or s.image.shape[2] != 3:
        raise InvalidMask(f"sample {s.id}: image must be H×W×3 uint8, got {s.image.dtype} {s.image.shape}")
    labels.validate(s.mask, f"sample {s.id} mask")
    if s.mask.shape != s.image.shape[:2]:
        raise InvalidMask(f"sample {s.id}: mask {s.mask.shape} and image {s.image.shape[:2]} differ in size")
    if s.label_source not in LABEL_SOURCES:
        raise InvalidDataset(f"sample {s.id}: label_source must be one of {LABEL_SOURCES}")
    return {
        "id": s.id,
        "image": {"bytes": encode_png(s.image), "path": None},
        "mask": {"bytes": encode_png(s.mask), "path": None},
        "subject": s.subject,
        "yaw": float(s.yaw),
        "pitch": float(s.pitch),
        "roll": float(s.roll),
        "pose_bin": s.pose_bin,
        "label_source": s.label_source,
        "provenance": json.dumps(s.provenance, sort_keys=True),
    }


def write_shards(rows: list[dict[str, Any]], data_dir: Path, split: str, rows_per_shard: int) -> list[Path]:
    """Write rows (already sorted) into ``{split}-{bin}-NNNNN-of-NNNNN.parquet`` shards."""
    paths = []
    for b in POSE_BIN_NAMES:
        part = [r for r in rows if r["pose_bin"] == b]
        if not part:
            continue
        n = max(1, -(-len(part) // rows_per_shard))
        for k in range(n):
            chunk = part[k * rows_per_shard : (k + 1) * rows_per_shard]
            table = pa.Table.from_pylist(chunk, schema=SCHEMA)
            path = data_dir / f"{split}-{b}-{k:05d}-of-{n:05d}.parquet"
            pq.write_table(table, path, compression="zstd", row_group_size=64)
            paths.append(path)
    return paths


def samples_table(samples: Iterable[Sample], labels: LabelSet = FACEBENCH) -> pa.Table:
    """Validated, encoded rows as an Arrow table in the dataset schema (for parts written before assembly)."""
    return pa.Table.from_pylist([_row(s, labels) for s in samples], schema=SCHEMA)


def build_dataset(
    splits: dict[str, Iterable[Sample]],
    out: str | Path,
    info: DatasetInfo | None = None,
    labels: LabelSet = FACEBENCH,
    rows_per_shard: int = 500,
    overwrite: bool = False,
) -> Path:
    """Write a dataset folder atomically: everything goes to a temp folder, then one rename."""
    tables = {split: samples_table(samples, labels) for split, samples in splits.items()}
    return build_dataset_from_tables(tables, out, info, labels, rows_per_shard, overwrite)


def build_dataset_from_tables(
    splits: dict[str, list[pa.Table] | pa.Table],
    out: str | Path,
    info: DatasetInfo | None = None,
    labels: LabelSet = FACEBENCH,
    rows_per_shard: int = 500,
    overwrite: bool = False,
) -> Path:
    """Assemble already-encoded parts (``samples_table``) into a dataset folder; rows are sorted by id,
    so the bytes do not depend on the order in which parts were produced."""
    out = Path(out)
    info = info or DatasetInfo()
    if out.exists() and not overwrite:
        raise InvalidDataset("already exists", out, hint="pass overwrite=True / --overwrite, or choose --out")
    tmp = temp_dir(out.parent, f".{out.name}.tmp-")
    try:
        (tmp / "data").mkdir()
        counts: dict[str, dict[str, int]] = {}
        for split, parts in splits.items():
            parts = [parts] if isinstance(parts, pa.Table) else parts
            casted = [p.select(REQUIRED).cast(SCHEMA) for p in parts]
            table = pa.concat_tables(casted) if casted else SCHEMA.empty_table()
            rows = sorted(table.to_pylist(), key=lambda r: r["id"])
            ids = [r["id"] for r in rows]
            if len(set(ids)) != len(ids):
                raise InvalidDataset(f"split {split} has duplicate ids")
            write_shards(rows, tmp / "data", split, rows_per_shard)
            counts[split] = {b: sum(r["pose_bin"] == b for r in rows) for b in POSE_BIN_NAMES}
        (tmp / "id2label.json").write_text(json.dumps({str(i): n for i, n in enumerate(labels.names)}, indent=1))

        (tmp / "README.md").write_text(render_card(info, labels, counts))
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


class FacebenchDataset:
    """Read access to a dataset folder; metadata eagerly, pixels on demand."""

    def __init__(self, root: str | Path):
        self.root = require_exists(root, "dataset")
        if not self.root.is_dir():
            raise InvalidDataset("is not a folder", self.root)
        id2label = self.root / "id2label.json"
        if not id2label.exists():
            raise InvalidDataset("no id2label.json: not a facebench dataset folder", self.root)
        try:
            names = json.loads(id2label.read_text())
            self.labels = LabelSet(tuple(names[str(i)] for i in range(len(names))), name="dataset")
        except (json.JSONDecodeError, KeyError):
            raise InvalidDataset("id2label.json must map '0'..'N-1' to names", id2label) from None
        if self.labels.names == FACEBENCH.names:
            self.labels = FACEBENCH
        self.shards: dict[str, list[Path]] = {}
        for p in sorted((self.root / "data").glob("*.parquet")):
            self.shards.setdefault(p.name.split("-")[0], []).append(p)
        if not self.shards:
            raise InvalidDataset("no data/*.parquet shards", self.root)

    @property
    def splits(self) -> list[str]:
        return sorted(self.shards)

    @property
    def revision(self) -> str:
        """A content id: sha256 over shard names and bytes (or the Hub commit, if downloaded)."""
        marker = self.root / ".facebench_revision"
        if marker.exists():
            return marker.read_text().strip()
        import hashlib

        h = hashlib.sha256()
        for split in self.splits:
            for p in self.shards[split]:
                h.update(p.name.encode())
                h.update(p.read_bytes())
        return "sha256:" + h.hexdigest()[:16]

    def _split_shards(self, split: str) -> list[Path]:
        if split not in self.shards:
            raise InvalidDataset(f"has no split '{split}' (it has: {', '.join(self.splits)})", self.root)
        return self.shards[split]

    def metadata(self, split: str):
        """pandas DataFrame of every column except the pixels, indexed by row order."""
        import pandas as pd

        frames = []
        for p in self._split_shards(split):
            _check_columns(p)
            frames.append(pq.read_table(p, columns=list(META_COLUMNS)).to_pandas())
        return pd.concat(frames, ignore_index=True)

    def iter_samples(self, split: str, columns: tuple[str, ...] = ("image", "mask")) -> Iterator[Sample]:
        """Decode samples shard by shard; ``columns`` picks which pixels to decode."""
        for p in self._split_shards(split):
            _check_columns(p)
            table = pq.read_table(p)
            for r in table.to_pylist():
                img = decode_png(r["image"]["bytes"], "image", p) if "image" in columns else np.empty((0, 0, 3))
                mask = (
                    decode_png(r["mask"]["bytes"], "mask", f"{p} id={r['id']}")
                    if "mask" in columns
                    else np.empty((0, 0), np.uint8)
                )
                yield Sample(
                    id=r["id"], image=img, mask=mask, subject=r["subject"], yaw=r["yaw"], pitch=r["pitch"],
                    roll=r["roll"], label_source=r["label_source"], provenance=json.loads(r["provenance"] or "{}"),
                )  # fmt: skip

    def __repr__(self) -> str:
        return f"FacebenchDataset({self.root}, splits={self.splits})"


def _check_columns(path: Path) -> None:
    names = pq.read_schema(path).names
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise InvalidDataset(f"missing columns {', '.join(missing)}", path)


def load(root: str | Path) -> FacebenchDataset:
    """Open a dataset folder (facebench's own loader; ``datasets.load_dataset(root)`` also works)."""
    return FacebenchDataset(root)


def validate(root: str | Path) -> dict[str, int]:
    """Check every shard: columns, lossless PNG masks with legal ids, image/mask sizes, unique ids.

    Returns the number of samples per split, or raises a FacebenchError naming the shard and id.
    """
    ds = FacebenchDataset(root)
    counts = {}
    for split in ds.splits:
        seen: set[str] = set()
        n = 0
        for p in ds.shards[split]:
            _check_columns(p)
            table = pq.read_table(p, columns=["id", "image", "mask", "pose_bin"])
            for r in table.to_pylist():
                where = f"{p.name} id={r['id']}"
                if r["id"] in seen:
                    raise InvalidDataset(f"duplicate id {r['id']}", p)
                seen.add(r["id"])
                mb = r["mask"]["bytes"] or b""
                if not mb.startswith(PNG_SIGNATURE):
                    raise InvalidMask("mask is not PNG (lossy formats corrupt label ids)", where)
                mask = ds.labels.validate(decode_png(mb, "mask", where), where)
                img = decode_png(r["image"]["bytes"], "image", where)
                if img.shape[:2] != mask.shape:
                    raise InvalidMask(f"image {img.shape[:2]} and mask {mask.shape} sizes differ", where)
                if r["pose_bin"] not in POSE_BIN_NAMES:
                    raise InvalidDataset(f"unknown pose_bin {r['pose_bin']!r}", where)
                n += 1
        counts[split] = n
    return counts
