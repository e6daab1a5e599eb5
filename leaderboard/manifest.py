"""The public face of the hidden split: ids, image sizes, the labels' sha256, and the limits.

The manifest is all a submitter (and the local validator) needs; the hidden labels stay on the
host. Its ``labels_sha256`` commits the host to one set of labels: anyone can later check a
released split against it, and the host checks its own copy before scoring.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from facebench.dataset import FacebenchDataset
from facebench.errors import InvalidConfig, require_exists
from facebench.files import atomic_path, atomic_write
from facebench.imageio import encode_png
from leaderboard.limits import Limits

FORMAT = "facebench-leaderboard-manifest/1"


def mask_digest(image_id: str, mask_bytes: bytes, height: int, width: int) -> str:
    """One line of a canonical digest: the id, the size and the sha256 of the raw uint8 ids."""
    return f"{image_id} {height} {width} {hashlib.sha256(mask_bytes).hexdigest()}\n"


def combine_digests(lines: dict[str, str]) -> str:
    """sha256 over per-id lines sorted by id: independent of file format, order and PNG encoder."""
    h = hashlib.sha256()
    for k in sorted(lines):
        h.update(lines[k].encode())
    return h.hexdigest()


def labels_sha256(ds: FacebenchDataset, split: str) -> str:
    """Canonical sha256 of a split's label maps (same definition as predictions' sha256)."""
    lines = {}
    for s in ds.iter_samples(split, columns=("mask",)):
        lines[s.id] = mask_digest(s.id, s.mask.tobytes(), *s.mask.shape)
    return combine_digests(lines)


@dataclass
class Manifest:
    """What is published about the hidden split."""

    split: str
    ids: list[str]
    sizes: dict[str, tuple[int, int]]  # id -> (height, width)
    labels: list[str]
    labels_sha256: str
    dataset_revision: str
    limits: Limits = field(default_factory=Limits)
    public_dataset: str = ""  # where the public split (with labels) for self-checks lives

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "split": self.split, "labels": self.labels, "labels_sha256": self.labels_sha256,
                "dataset_revision": self.dataset_revision, "limits": self.limits.to_json(),
                "public_dataset": self.public_dataset, "n_images": len(self.ids),
                "images": [{"id": i, "height": self.sizes[i][0], "width": self.sizes[i][1]} for i in self.ids]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidConfig(f"not a {FORMAT} file")
        images = data["images"]
        return cls(split=data["split"], ids=[im["id"] for im in images],
                   sizes={im["id"]: (int(im["height"]), int(im["width"])) for im in images},
                   labels=list(data["labels"]), labels_sha256=data["labels_sha256"],
                   dataset_revision=data["dataset_revision"], limits=Limits.from_json(data.get("limits", {})),
                   public_dataset=data.get("public_dataset", ""))

    def save(self, path: str | Path) -> Path:
        return atomic_write(path, (json.dumps(self.to_json(), indent=1) + "\n").encode())

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        path = require_exists(path, "leaderboard manifest")
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            raise InvalidConfig(f"malformed leaderboard manifest ({e})", path) from None
        except InvalidConfig as e:
            raise InvalidConfig(str(e), path) from None


def build_manifest(ds: FacebenchDataset, split: str, limits: Limits | None = None,
                   public_dataset: str = "") -> Manifest:
    """Manifest of ``split`` of a hidden dataset (reads the masks once, for the sha256)."""
    meta_ids, sizes = [], {}
    for s in ds.iter_samples(split, columns=("mask",)):
        meta_ids.append(s.id)
        sizes[s.id] = (int(s.mask.shape[0]), int(s.mask.shape[1]))
    return Manifest(split=split, ids=sorted(meta_ids), sizes=sizes, labels=list(ds.labels.names),
                    labels_sha256=labels_sha256(ds, split), dataset_revision=ds.revision,
                    limits=limits or Limits(), public_dataset=public_dataset)


def write_hidden_images(ds: FacebenchDataset, split: str, out: str | Path) -> Path:
    """The hidden split's images without labels, as a parquet (id, image PNG, height, width)."""
    rows = []
    for s in ds.iter_samples(split, columns=("image",)):
        rows.append({"id": s.id, "image": {"bytes": encode_png(s.image), "path": None},
                     "height": int(s.image.shape[0]), "width": int(s.image.shape[1])})
    rows.sort(key=lambda r: r["id"])
    schema = pa.schema([("id", pa.string()), ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                        ("height", pa.int32()), ("width", pa.int32())])
    out = Path(out)
    with atomic_path(out) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp, compression="zstd")
    return out
