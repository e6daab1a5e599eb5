"""Structural checks of a submitted checkpoint (format b), before the host ever builds a model.

A checkpoint is ``model.safetensors`` + ``config.json`` (a folder, or ``NAME.safetensors`` +
``NAME.json``). We check, without loading tensors: no pickles anywhere, sizes, the config names a
registered architecture and records the weights' sha256, and the safetensors header is
self-consistent. Only data is read; the architecture's code is ours, never the submitter's.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leaderboard.archive import looks_pickled
from leaderboard.errors import InvalidSubmission, PickleRefused, UnsafeArchive
from leaderboard.limits import Limits

CONVERT_HINT = ("convert it first and submit the folder: facebench convert zll:PATH.pth --out DIR "
                "(zllrunning's BiSeNet), or save safetensors weights + a JSON config")

DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
MAX_HEADER = 100 * 1024 * 1024
MIN_INPUT, MAX_INPUT = 16, 1024


@dataclass
class CheckpointFiles:
    """The two files of a checked checkpoint, their bytes, and the weights' sha256 (the submission's identity)."""

    weights: bytes
    config: bytes
    architecture: str
    sha256: str


def _pair(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        for p in sorted(path.iterdir()):
            if p.is_file() and looks_pickled(p.name, p.read_bytes()[:2]):
                raise PickleRefused("is a pickle; pickles can run code when loaded, so they are never opened", p,
                                    hint=CONVERT_HINT)
            if p.is_symlink():
                raise UnsafeArchive("is a symbolic link; links are refused", p)
        return path / "model.safetensors", path / "config.json"
    if path.suffix == ".safetensors":
        return path, path.with_suffix(".json")
    if path.suffix == ".json":
        return path.with_suffix(".safetensors"), path
    raise InvalidSubmission("not a checkpoint (a folder with model.safetensors + config.json)", path)


def check_safetensors_header(data: bytes, where: Path) -> int:
    """Validate the header of a safetensors blob; returns the number of tensors."""
    if len(data) < 8:
        raise InvalidSubmission("weights file is too short to be safetensors", where)
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(MAX_HEADER, len(data) - 8):
        raise InvalidSubmission("safetensors header length is out of range", where)
    try:
        header = json.loads(data[8 : 8 + n])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidSubmission("safetensors header is not JSON", where) from None
    if not isinstance(header, dict):
        raise InvalidSubmission("safetensors header is not a JSON object", where)
    body = len(data) - 8 - n
    count = 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (a, b) = t["dtype"], t["shape"], t["data_offsets"]
            ok = dtype in DTYPE_BYTES and all(isinstance(d, int) and d >= 0 for d in shape)
            ok = ok and isinstance(a, int) and isinstance(b, int) and 0 <= a <= b <= body
            ok = ok and (b - a) == math.prod(shape) * DTYPE_BYTES[dtype]
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidSubmission(f"safetensors entry {name!r} is inconsistent", where)
        count += 1
    return count


def check_checkpoint(path: str | Path, limits: Limits, architectures: Collection[str] | None = None,
                     labels: Collection[str] | None = None) -> CheckpointFiles:
    """Validate a checkpoint's files without loading them.

    ``architectures``: the registered names (None: not checked here). ``labels``: the benchmark's
    class names, which the config must list in order. ``input_size`` is bounded so the host cannot be
    made to run a model at an absurd resolution.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidSubmission("checkpoint does not exist", path)
    if path.is_file() and looks_pickled(path.name, path.read_bytes()[:2]):
        raise PickleRefused("is a pickle; pickles can run code when loaded, so they are never opened", path,
                            hint=CONVERT_HINT)
    weights_path, config_path = _pair(path)
    for p in (weights_path, config_path):
        if not p.is_file() or p.is_symlink():
            raise InvalidSubmission(f"checkpoint needs {p.name} (a regular file)", path)
    if weights_path.stat().st_size > limits.max_upload_bytes:
        raise UnsafeArchive(f"weights are over the {limits.max_upload_bytes}-byte limit", weights_path)
    if config_path.stat().st_size > limits.max_config_bytes:
        raise UnsafeArchive(f"config is over the {limits.max_config_bytes}-byte limit", config_path)
    weights, config_bytes = weights_path.read_bytes(), config_path.read_bytes()
    if weights[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") or weights[:2] == b"PK":
        raise PickleRefused("is a pickle/torch.save file, not safetensors; it is never opened", weights_path,
                            hint=CONVERT_HINT)
    try:
        config: Any = json.loads(config_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidSubmission("config is not valid JSON", config_path) from None
    arch = config.get("architecture") if isinstance(config, dict) else None
    if not isinstance(arch, str):
        raise InvalidSubmission("config lacks 'architecture'", config_path)
    if architectures is not None and arch not in architectures:
        raise InvalidSubmission(f"architecture {arch!r} is not registered", config_path,
                                hint=f"registered: {', '.join(sorted(architectures))}")
    size = config.get("input_size")
    if not isinstance(size, int) or not MIN_INPUT <= size <= MAX_INPUT:
        raise InvalidSubmission(f"config input_size must be an integer in {MIN_INPUT}..{MAX_INPUT}", config_path)
    zooms = config.get("test_time_scales", [1.0])  # the host parses at input_size × each zoom
    if (not isinstance(zooms, list) or not 1 <= len(zooms) <= 4
            or not all(isinstance(z, int | float) and not isinstance(z, bool) and 0.25 <= z and z * size <= MAX_INPUT
                       for z in zooms)):
        raise InvalidSubmission(f"config test_time_scales must list 1..4 zooms ≥ 0.25 with input_size × zoom ≤ "
                                f"{MAX_INPUT}", config_path)
    names = (config.get("labels") or {}).get("names") if isinstance(config.get("labels"), dict) else None
    if labels is not None and names != list(labels):
        raise InvalidSubmission("config labels.names differ from the benchmark's classes (remap by name first)",
                                config_path)
    recorded = (config.get("weights") or {}).get("sha256") if isinstance(config.get("weights"), dict) else None
    digest = hashlib.sha256(weights).hexdigest()
    if recorded != digest:
        raise InvalidSubmission("config's weights.sha256 does not match the weights file", config_path,
                                hint="re-export the checkpoint so config and weights agree")
    if check_safetensors_header(weights, weights_path) == 0:
        raise InvalidSubmission("safetensors file holds no tensors", weights_path)
    # The submission's identity is its weights: the same weights under an edited config are the same model
    # (one row, one rate-limit slot), whatever name or metadata the config carries.
    return CheckpointFiles(weights=weights, config=config_bytes, architecture=arch, sha256=digest)
