"""The one predictions validator, run by ``facebench submit`` locally and by the host before scoring.

A predictions file is a zip of ``{id}.png`` or a parquet with columns ``id`` and ``mask`` (PNG
bytes, plain binary or a ``datasets.Image`` struct). Every mask must be a single-channel 8-bit PNG
of exactly the hidden image's size, holding only class ids 0..C-1; there must be one per hidden id.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from facebench.labels import FACEBENCH, LabelSet
from leaderboard.archive import looks_pickled, read_zip
from leaderboard.errors import InvalidPredictions, InvalidSubmission, MissingIds, PickleRefused, UnsafeArchive
from leaderboard.manifest import Manifest, combine_digests, mask_digest
from leaderboard.pngcheck import png_header

FORMATS = (".zip", ".parquet")


@dataclass
class Predictions:
    """Validated masks keyed by id, and their canonical sha256 (format-independent)."""

    masks: dict[str, np.ndarray]
    sha256: str
    format: str


def refuse_pickles(path: Path) -> None:
    """Raise PickleRefused for a file that is (or claims to be) a pickle; its content is never loaded."""
    head = path.read_bytes()[:2] if path.is_file() else b""
    if looks_pickled(path.name, head):
        raise PickleRefused("is a pickle; pickles can run code when loaded, so they are never opened", path,
                            hint="submit a zip of {id}.png masks or a parquet (id, mask)")


def check_mask(image_id: str, data: bytes, manifest: Manifest, where: str | Path) -> np.ndarray:
    """Decode one mask after checking its PNG header against the hidden image's size."""
    h, w = manifest.sizes[image_id]
    what = f"{where} id={image_id}"
    if data[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        raise PickleRefused("is a pickle, not a PNG; pickles are never opened", what)
    hdr = png_header(data)
    if hdr is None:
        raise InvalidPredictions("mask is not a PNG (masks must be lossless PNG label maps)", what)
    if (hdr.height, hdr.width) != (h, w):
        raise InvalidPredictions(f"mask is {hdr.width}×{hdr.height}, the hidden image is {w}×{h}", what,
                                 hint="predict at the image's own resolution")
    if not hdr.single_channel_8bit:
        raise InvalidPredictions(f"mask must be a single-channel 8-bit PNG (got bit depth {hdr.bit_depth}, "
                                 f"colour type {hdr.color_type})", what, hint="save uint8 class ids, mode 'L'")
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:  # PIL raises many types on corrupt data; all mean "unreadable"
        raise InvalidPredictions(f"mask PNG is corrupt ({type(e).__name__})", what) from None
    mask = np.asarray(img, dtype=np.uint8)  # palette PNGs give their indices, i.e. the class ids
    if mask.shape != (h, w):
        raise InvalidPredictions(f"mask decodes to shape {mask.shape}, expected {(h, w)}", what)
    bad = np.unique(mask[mask >= manifest.num_classes])
    if bad.size:
        raise InvalidPredictions(f"mask holds illegal class ids {bad[:5].tolist()} "
                                 f"(0..{manifest.num_classes - 1} allowed; 255/ignore is not a prediction)", what)
    return mask


def _missing(manifest: Manifest, got: set[str], where: Path) -> None:
    missing = [i for i in manifest.ids if i not in got]
    if missing:
        raise MissingIds(f"{len(missing)} of {len(manifest.ids)} hidden ids have no mask "
                         f"(first: {', '.join(missing[:5])})", where, hint="submit one mask per hidden image")


def _keep_row(out: dict[str, bytes], image_id: object, mask: object, manifest: Manifest, path: Path) -> None:
    """Check one parquet row (id known, not repeated, PNG bytes within the cap) and keep it."""
    data = mask.get("bytes") if isinstance(mask, dict) else mask
    if not isinstance(image_id, str) or image_id not in manifest.sizes:
        raise MissingIds(f"row id {image_id!r} is not in the hidden split", path)
    if image_id in out:
        raise InvalidSubmission(f"id {image_id!r} appears twice", path)
    if not isinstance(data, bytes | bytearray):
        raise InvalidPredictions("mask is empty", f"{path} id={image_id}")
    if len(data) > manifest.limits.max_png_bytes(*manifest.sizes[image_id]):
        raise InvalidPredictions(f"mask is {len(data)} bytes, over the limit for its size", f"{path} id={image_id}")
    out[image_id] = bytes(data)


def _read_parquet(path: Path, manifest: Manifest) -> dict[str, bytes]:
    limits = manifest.limits
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise InvalidSubmission(f"not a readable parquet file ({e})", path) from None
    schema = pf.schema_arrow
    if "id" not in schema.names or "mask" not in schema.names:
        raise InvalidSubmission(f"parquet needs columns 'id' and 'mask' (has: {', '.join(schema.names)})", path)
    mask_t = schema.field("mask").type
    mask_ok = pa.types.is_binary(mask_t) or pa.types.is_large_binary(mask_t) or (
        pa.types.is_struct(mask_t) and mask_t.get_field_index("bytes") >= 0)
    if not (pa.types.is_string(schema.field("id").type) or pa.types.is_large_string(schema.field("id").type)):
        raise InvalidSubmission("parquet column 'id' must be strings", path)
    if not mask_ok:
        raise InvalidSubmission("parquet column 'mask' must hold PNG bytes (binary or an Image struct)", path)
    meta = pf.metadata
    allowed = len(manifest.ids) + limits.max_extra_entries
    if meta.num_rows > allowed:
        raise UnsafeArchive(f"parquet has {meta.num_rows} rows, at most {allowed} allowed", path)
    declared = sum(rg.column(c).total_uncompressed_size
                   for rg in (meta.row_group(g) for g in range(meta.num_row_groups))
                   for c in range(rg.num_columns) if rg.column(c).path_in_schema.split(".")[0] in ("id", "mask"))
    cap = sum(limits.max_png_bytes(*manifest.sizes[i]) for i in manifest.ids) + 64 * 1024
    if declared > cap:
        raise UnsafeArchive(f"parquet declares {declared} uncompressed bytes, over the {cap}-byte limit", path)
    size = path.stat().st_size
    if declared > limits.ratio_floor_bytes and declared / max(size, 1) > limits.max_total_ratio:
        raise UnsafeArchive(f"parquet expands {declared / max(size, 1):.0f}× (limit "
                            f"{limits.max_total_ratio:.0f}×): looks like a decompression bomb", path)
    # Dictionary pages are counted once but decode once per row, so rows are materialised one at a time
    # and each is size-checked before the next: memory stays within the per-mask caps.
    out: dict[str, bytes] = {}
    try:
        for batch in pf.iter_batches(batch_size=1, columns=["id", "mask"]):
            for image_id, mask in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
                _keep_row(out, image_id, mask, manifest, path)
    except (pa.ArrowException, OSError) as e:
        raise InvalidSubmission(f"parquet data is corrupt ({e})", path) from None
    return out


def load_predictions(path: str | Path, manifest: Manifest) -> Predictions:
    """Validate a predictions file against the manifest; every rejection is a one-line SubmissionRejected."""
    path = Path(path)
    if not path.is_file():
        raise InvalidSubmission("predictions file does not exist (or is not a file)", path)
    refuse_pickles(path)
    size = path.stat().st_size
    if size > manifest.limits.max_upload_bytes:
        raise UnsafeArchive(f"file is {size} bytes, over the {manifest.limits.max_upload_bytes}-byte limit", path)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        raw = read_zip(path, set(manifest.ids), lambda i: manifest.limits.max_png_bytes(*manifest.sizes[i]),
                       manifest.limits)
    elif suffix == ".parquet":
        raw = _read_parquet(path, manifest)
    else:
        raise InvalidSubmission(f"unknown predictions format {suffix or '(none)'!r}", path,
                                hint="submit a .zip of {id}.png masks or a .parquet with columns id, mask")
    _missing(manifest, set(raw), path)
    masks = {i: check_mask(i, raw[i], manifest, path) for i in manifest.ids}
    digest = combine_digests({i: mask_digest(i, m.tobytes(), *m.shape) for i, m in masks.items()})
    return Predictions(masks=masks, sha256=digest, format=suffix[1:])


class PredictionsParser:
    """Validated masks behind the Parser protocol, so scoring goes through ``evaluate_parser``."""

    def __init__(self, predictions: Predictions, labels: LabelSet = FACEBENCH, name: str = "submission"):
        self.masks = predictions.masks
        self.labels = labels
        self.name = name

    def predict(self, images: Sequence[np.ndarray], ids: Sequence[str] | None = None) -> list[np.ndarray]:
        if ids is None:
            raise ValueError("PredictionsParser needs sample ids")
        return [self.masks[i] for i in ids]


def pack_folder(folder: Path, manifest: Manifest) -> bytes:
    """A folder of ``{id}.png`` (what ``facebench evaluate`` reads) as a deterministic stored zip.

    Checked like an archive first: regular files only (no links), at most one per id, sizes capped.
    """
    import zipfile

    files = sorted(folder.iterdir())
    allowed = len(manifest.ids) + manifest.limits.max_extra_entries
    if len(files) > allowed:
        raise UnsafeArchive(f"folder has {len(files)} entries, at most {allowed} allowed (one {{id}}.png each)",
                            folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for p in files:
            if p.is_symlink():
                raise UnsafeArchive("is a symbolic link; links are refused", p)
            if not p.is_file():
                raise UnsafeArchive("is not a regular file; put only {id}.png files in the folder", p)
            if looks_pickled(p.name, p.read_bytes()[:2]):
                raise PickleRefused("is a pickle; pickles are never opened", p)
            if p.suffix.lower() != ".png" or p.stem not in manifest.sizes:
                raise InvalidSubmission("is not a {id}.png mask of a hidden-split image", p)
            if p.stat().st_size > manifest.limits.max_png_bytes(*manifest.sizes[p.stem]):
                raise InvalidPredictions("mask file is over the size limit for its image", p)
            data = p.read_bytes()
            check_mask(p.stem, data, manifest, p)  # here, so that a bad mask is named by its file, not the zip
            info = zipfile.ZipInfo(p.name, date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
    return buf.getvalue()
