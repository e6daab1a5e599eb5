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
import math
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
from facebench.files import json_dumps_strict, replace_dir, temp_dir
from facebench.imageio import decode_png, encode_png
from facebench.labels import FACEBENCH, LabelSet, read_id2label
from facebench.names import check_name
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
    check_sample_id(s.id)
    if not all(math.isfinite(float(a)) for a in (s.yaw, s.pitch, s.roll)):
        raise InvalidDataset(f"sample {s.id}: yaw, pitch and roll must be finite, got {s.yaw}, {s.pitch}, {s.roll}")
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
        "provenance": json_dumps_strict(s.provenance, sort_keys=True),
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
    """Read access to a dataset folder; metadata eagerly, pixels on demand.

    Every value is checked as it is read, here and nowhere else, so that ``validate``, ``evaluate``, ``train``
    and ``predict`` cannot disagree about what a dataset holds: a shard that is not parquet or has the wrong
    columns, a sample id that is not a plain file name (checked before any path is built from it), a duplicate
    id, a non-finite pose, provenance that is not a JSON object, an image or mask that does not decode, a mask
    of another size than its image or with class ids the dataset does not have. Each raises one line naming the
    shard (and the sample)."""

    def __init__(self, root: str | Path):
        self.root = require_exists(root, "dataset")
        if not self.root.is_dir():
            raise InvalidDataset("is not a folder", self.root)
        id2label = self.root / "id2label.json"
        if not id2label.exists():
            raise InvalidDataset("no id2label.json: not a facebench dataset folder", self.root)
        self.labels = read_id2label(id2label, InvalidDataset, name="dataset")
        self.shards: dict[str, list[Path]] = {}
        for p in sorted((self.root / "data").glob("*.parquet")):
            if not p.is_file():
                raise InvalidDataset("is not a parquet file", p)
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
        """pandas DataFrame of every column except the pixels, indexed by row order; every row checked."""
        import pandas as pd

        frames = []
        seen: dict[str, str] = {}
        for p in self._split_shards(split):
            table = _read_shard(p, META_COLUMNS)
            for k, r in enumerate(table.to_pylist()):
                _checked_meta(r, p, k, seen)
            frames.append(table.to_pandas())
        return pd.concat(frames, ignore_index=True)

    def iter_samples(self, split: str, columns: tuple[str, ...] = ("image", "mask")) -> Iterator[Sample]:
        """Decode samples shard by shard; ``columns`` picks which pixels to decode (each decoded one is checked)."""
        seen: dict[str, str] = {}
        for p in self._split_shards(split):
            table = _read_shard(p, REQUIRED)
            for k, r in enumerate(table.to_pylist()):
                provenance = _checked_meta(r, p, k, seen)
                where = f"{p} id={r['id']}"
                img = _pixels(r, "image", where) if "image" in columns else np.empty((0, 0, 3), np.uint8)
                mask = np.empty((0, 0), np.uint8)
                if "mask" in columns:
                    mask = self.labels.validate(_pixels(r, "mask", where), where)
                    if "image" in columns and img.shape[:2] != mask.shape:
                        raise InvalidMask(f"image {img.shape[1]}×{img.shape[0]} and mask {mask.shape[1]}×"
                                          f"{mask.shape[0]} differ in size", where)
                yield Sample(
                    id=r["id"], image=img, mask=mask, subject=r["subject"], yaw=r["yaw"], pitch=r["pitch"],
                    roll=r["roll"], label_source=r["label_source"], provenance=provenance,
                )  # fmt: skip

    def __repr__(self) -> str:
        return f"FacebenchDataset({self.root}, splits={self.splits})"


def check_sample_id(value: Any, where: str | Path | None = None) -> str:
    """``value`` if it is a sample id that is safe as a file name (``facebench.names``), else one line."""
    return check_name(value, "sample id", where, InvalidDataset)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read_shard(path: Path, columns: tuple[str, ...]) -> pa.Table:
    """``columns`` of one shard, after checking it is parquet holding every column with its type."""
    try:
        schema = pq.read_schema(path)
        _check_schema(schema, path)
        return pq.read_table(path, columns=list(columns))
    except (pa.ArrowException, OSError) as e:  # ArrowInvalid, ArrowIOError, IsADirectoryError, ...
        raise InvalidDataset(f"is not a readable parquet shard ({' '.join(str(e).split())[:160]})", path) from None


def _check_schema(schema: pa.Schema, path: Path) -> None:
    missing = [c for c in REQUIRED if c not in schema.names]
    if missing:
        raise InvalidDataset(f"missing columns {', '.join(missing)}", path)
    for name, want, _ in COLUMNS:
        got = schema.field(name).type
        if not _compatible(got, want):
            raise InvalidDataset(f"column {name} is {got}, expected {want}", path)


def _compatible(got: pa.DataType, want: pa.DataType) -> bool:
    """Types a reader may meet for a column (large variants, float32 or integer poses), not only ours."""
    t = pa.types
    if t.is_struct(want):
        return (t.is_struct(got) and got.get_field_index("bytes") >= 0
                and (t.is_binary(got.field("bytes").type) or t.is_large_binary(got.field("bytes").type)))
    if t.is_string(want):
        return t.is_string(got) or t.is_large_string(got)
    return t.is_floating(got) or t.is_integer(got)


def _checked_meta(r: dict[str, Any], shard: Path, k: int, seen: dict[str, str]) -> dict[str, Any]:
    """Check row ``k``'s id (first: it becomes file names), pose, bin, source and provenance; returns the
    provenance as a dict. ``seen`` maps the split's ids so far to where they were."""
    i = check_sample_id(r["id"], f"{shard} row {k}")
    where = f"{shard} id={i}"
    if i in seen:
        raise InvalidDataset(f"duplicate id {i} (also in {seen[i]})", shard)
    seen[i] = f"{shard.name} row {k}"
    for angle in ("yaw", "pitch", "roll"):
        v = r[angle]
        if not isinstance(v, int | float) or not math.isfinite(v):
            raise InvalidDataset(f"{angle} must be a finite number of degrees, got {v}", where)
    if not isinstance(r["subject"], str):
        raise InvalidDataset(f"subject must be a string, got {r['subject']!r}", where)
    if r["pose_bin"] != pose_bin(r["yaw"]):
        raise InvalidDataset(f"pose_bin {r['pose_bin']!r} disagrees with yaw {r['yaw']:g} "
                             f"({pose_bin(r['yaw'])})", where)
    if r["label_source"] not in LABEL_SOURCES:
        raise InvalidDataset(f"label_source {r['label_source']!r} is not one of {', '.join(LABEL_SOURCES)}", where)
    return read_provenance(r["provenance"], where)


def read_provenance(text: Any, where: str | Path | None = None) -> dict[str, Any]:
    """A row's provenance: strict JSON text of an object (no NaN), or empty/null for none."""
    if text is not None and not isinstance(text, str):
        raise InvalidDataset(f"provenance must be JSON text, got {type(text).__name__}", where)
    try:
        provenance = json.loads(text or "{}", parse_constant=_no_constant)
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise InvalidDataset("provenance is not JSON", where) from None
    if not isinstance(provenance, dict):
        raise InvalidDataset(f"provenance must be a JSON object, got {type(provenance).__name__}", where)
    return provenance


def _pixels(r: dict[str, Any], column: str, where: str) -> np.ndarray:
    cell = r[column]
    if not isinstance(cell, dict) or cell.get("bytes") is None:
        raise (InvalidMask if column == "mask" else InvalidDataset)(f"{column} is missing (null)", where)
    return decode_png(cell["bytes"], column, where)


def load(root: str | Path) -> FacebenchDataset:
    """Open a dataset folder (facebench's own loader; ``datasets.load_dataset(root)`` also works)."""
    return FacebenchDataset(root)


def validate(root: str | Path) -> dict[str, int]:
    """Read every split as ``evaluate`` and ``train`` do, with every check of the reader (see
    ``FacebenchDataset``): what passes here, they can read. Returns the number of samples per split, or raises
    one line naming the shard and the sample."""
    ds = FacebenchDataset(root)
    counts = {}
    for split in ds.splits:
        ds.metadata(split)
        counts[split] = sum(1 for _ in ds.iter_samples(split))
    return counts
