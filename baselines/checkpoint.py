"""Checkpoints: safetensors weights plus a JSON config, and nothing that unpickles.

A checkpoint is either a folder holding ``model.safetensors`` + ``config.json``, or a pair
``NAME.safetensors`` + ``NAME.json`` side by side (how shipped weights live in ``baselines/weights/``).
The JSON records the architecture, width, label names, input size, normalisation, training data
and metrics, and the sha256 of the weights file; loading hashes the exact bytes it parses, so a
tampered or truncated file is refused. Pickle-based files (.pt/.pth/.ckpt/...) are refused without
being opened by torch.

Same tensors and config, same bytes: the safetensors library writes its metadata map in hash order, which
differed between two identical runs, so ``safetensors_bytes`` rewrites the header with sorted metadata keys.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from facebench.errors import CheckpointError
from facebench.files import atomic_write, json_dumps_strict

FORMAT = "facebench-checkpoint/1"
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar", ".joblib"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _looks_pickled(path: Path) -> bool:
    head = path.read_bytes()[:4] if path.is_file() else b""
    return path.suffix.lower() in PICKLE_SUFFIXES or head[:1] == b"\x80" or head[:2] == b"PK"


def _refuse_pickle(path: Path) -> None:
    raise CheckpointError(
        "looks like a pickle/torch.save checkpoint; facebench never unpickles files (they can run code)",
        path,
        hint="convert it to safetensors + JSON in a trusted environment",
    )


def resolve(path: str | Path) -> tuple[Path, Path]:
    """(weights file, config file) of a checkpoint folder, .safetensors file or .json file."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(
            "checkpoint does not exist", p, hint="pass a folder with config.json + model.safetensors"
        )
    if p.is_dir():
        weights, config = p / "model.safetensors", p / "config.json"
        if not weights.exists():
            pickles = [q for q in sorted(p.iterdir()) if q.suffix.lower() in PICKLE_SUFFIXES]
            if pickles:
                _refuse_pickle(pickles[0])
            raise CheckpointError("no model.safetensors in this folder", p)
    elif p.suffix == ".safetensors":
        weights, config = p, p.with_suffix(".json")
    elif p.suffix == ".json":
        weights, config = p.with_suffix(".safetensors"), p
    elif _looks_pickled(p):
        _refuse_pickle(p)
    else:
        raise CheckpointError("not a checkpoint (expected a folder, .safetensors or .json)", p)
    if not config.exists():
        raise CheckpointError(
            f"no config {config.name} beside the weights",
            weights,
            hint="a checkpoint is weights plus the JSON config that records their sha256",
        )
    if not weights.exists():
        raise CheckpointError(f"no weights {weights.name} beside the config", config)
    return weights, config


def read_config(path: str | Path) -> dict[str, Any]:
    """The JSON config of a checkpoint (weights not read), with every field a loader uses checked: the config
    is not covered by the weights' sha256, and an edited ``input_size`` of 100000 once tried to allocate
    120 GB."""
    _, config_path = resolve(path)
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (OSError, ValueError, RecursionError) as e:  # a folder, not UTF-8, not JSON, nested too deep
        raise CheckpointError(
            f"config is not valid JSON ({e.msg if hasattr(e, 'msg') else e})", config_path
        ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"config is not a {FORMAT} file", config_path)
    for key in ("architecture", "width", "labels", "input_size", "normalisation", "weights"):
        if key not in config:
            raise CheckpointError(f"config lacks '{key}'", config_path)
    _check_fields(config, config_path)
    return config


MIN_SIZE, MAX_INPUT_SIZE = 32, 2048  # pixels: a network input side (memory grows with its square)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_fields(config: dict[str, Any], where: Path) -> None:
    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    size, width, labels, norm = config["input_size"], config["width"], config["labels"], config["normalisation"]
    if not isinstance(config["architecture"], str):
        raise CheckpointError("config 'architecture' must be a name", where)
    if not isinstance(size, int) or isinstance(size, bool) or not MIN_SIZE <= size <= MAX_INPUT_SIZE:
        raise CheckpointError(f"config 'input_size' must be a whole number {MIN_SIZE}..{MAX_INPUT_SIZE}, got "
                              f"{size!r}", where)
    if not number(width) or not 0 < width <= 8:
        raise CheckpointError(f"config 'width' must be a number in (0, 8], got {width!r}", where)
    names = labels.get("names") if isinstance(labels, dict) else None
    if (not isinstance(names, list) or not 1 < len(names) <= 255
            or not all(isinstance(n, str) and n for n in names) or not isinstance(labels.get("name", ""), str)):
        raise CheckpointError("config 'labels' must be {name, names: 2..255 class names}", where)
    mean, std = (norm.get("mean"), norm.get("std")) if isinstance(norm, dict) else (None, None)
    if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == 3
            and all(map(number, mean + std)) and all(v > 0 for v in std)):
        raise CheckpointError("config 'normalisation' must hold 3 finite 'mean' and 3 positive 'std' values", where)
    scales = config.get("test_time_scales", [1.0])
    if (not isinstance(scales, list) or not 1 <= len(scales) <= 4 or not all(map(number, scales))
            or not all(0.25 <= s and s * size <= MAX_INPUT_SIZE for s in scales)):
        raise CheckpointError(f"config 'test_time_scales' must list 1..4 zoom factors ≥ 0.25 that keep the input "
                              f"side ≤ {MAX_INPUT_SIZE}, got {scales!r}", where)
    if not isinstance(config["weights"], dict) or not isinstance(config["weights"].get("sha256"), str):
        raise CheckpointError("config 'weights' must record the weights' sha256", where)


def save_checkpoint(
    path: str | Path, model: nn.Module, config: dict[str, Any], dtype: torch.dtype = torch.float32
) -> Path:
    """Write ``model`` and ``config`` as a checkpoint folder (or NAME.safetensors + NAME.json).

    ``dtype=torch.float16`` halves the file (for shipping); loading casts back to float32.
    """
    return save_state(path, model.state_dict(), config, dtype)


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """``safetensors.torch.save`` with a canonical header: metadata keys sorted, compact JSON, space-padded
    to 8 bytes as the format asks. Tensor entries and data are left as the library laid them out (sorted by
    dtype and name, so already deterministic)."""
    data = save_safetensors(tensors, metadata=metadata)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + n :]


def checkpoint_bytes(
    state: dict[str, torch.Tensor],
    config: dict[str, Any],
    weights_name: str = "model.safetensors",
    dtype: torch.dtype = torch.float32,
) -> tuple[bytes, str]:
    """(weights file bytes, config.json text) of a checkpoint, for a writer that places them itself (training
    writes them together with its own state into one folder that is swapped in whole)."""
    tensors = {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().clone()
        for k, v in state.items()
    }
    data = safetensors_bytes(tensors, {"format": FORMAT, "architecture": str(config.get("architecture"))})
    cfg = dict(config)
    cfg["format"] = FORMAT
    cfg["weights"] = {
        "file": weights_name,
        "sha256": sha256(data),
        "dtype": str(dtype).removeprefix("torch."),
        "bytes": len(data),
    }
    return data, json_dumps_strict(cfg, indent=1, sort_keys=False) + "\n"  # NaN metrics -> null


def save_state(
    path: str | Path,
    state: dict[str, torch.Tensor],
    config: dict[str, Any],
    dtype: torch.dtype = torch.float32,
) -> Path:
    """``save_checkpoint`` for a bare state dict."""
    p = Path(path)
    weights, config_path = (
        (p, p.with_suffix(".json"))
        if p.suffix == ".safetensors"
        else (p / "model.safetensors", p / "config.json")
    )
    data, text = checkpoint_bytes(state, config, weights.name, dtype)
    atomic_write(weights, data)
    atomic_write(config_path, text)
    return p


def load_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verified float32 state dict and config; raises CheckpointError on any mismatch."""
    weights, _ = resolve(path)
    config = read_config(path)
    data = weights.read_bytes()
    expected = config["weights"].get("sha256")
    if sha256(data) != expected:
        if data[:2] == b"PK" or (data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
            _refuse_pickle(weights)
        raise CheckpointError(
            "weights sha256 does not match the config: the file was modified or truncated",
            weights,
            hint="re-download or re-export the checkpoint",
        )
    try:
        tensors = load_safetensors(data)
    except (SafetensorError, ValueError) as e:
        raise CheckpointError(f"not a readable safetensors file ({e})", weights) from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    return state, config


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], where: str | Path) -> None:
    """Load a state dict strictly, turning shape/key mismatches into one-line CheckpointErrors."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        detail = (
            f"{len(missing)} missing (e.g. {missing[:1]}), {len(unexpected)} unexpected, "
            f"{len(wrong)} with other shapes (e.g. {wrong[:1]})"
        )
        raise CheckpointError(
            f"weights do not fit the architecture: {detail}",
            where,
            hint="check the architecture, width and number of classes",
        )
    model.load_state_dict(state, strict=True)


def convert(src: str | Path, dst: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Re-save a verified checkpoint (e.g. in fp16, for shipping): same config, new weights sha256."""
    state, config = load_state(src)
    return save_state(dst, state, {k: v for k, v in config.items() if k not in ("format", "weights")}, dtype)
