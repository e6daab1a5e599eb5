"""One model spec, read the same way wherever a parser is accepted (evaluate, predict, generate, reproduce).

A researcher brings the parser in the format it was published in, so the spec names the route:

- a facebench checkpoint (folder, ``.safetensors``, ``.json``, or ``architecture:path``);
- ``zll:PATH.pth``: zllrunning/face-parsing.PyTorch's BiSeNet state dict, read with ``weights_only=True``;
- ``hf:ORG/NAME[@REV]``, or a local folder holding a transformers ``config.json``;
- ``onnx:PATH`` (facebench's own exports carry their label order; others need ``labels``).

A bare ``.pth``/``.pt``/``.bin`` is refused in one line that names the route that would read it, because
facebench never unpickles a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from facebench.errors import CheckpointError, InputNotFound, InvalidConfig
from facebench.parsing import Parser

ROUTES = ("zll", "hf", "onnx")
PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pkl", ".tar")


@dataclass(frozen=True)
class ModelRef:
    """A parsed spec: which route, and what it points at (a path, or a Hub id with an optional revision)."""

    route: str  # "facebench" | "zll" | "hf" | "onnx"
    target: str


def parse_spec(spec: str | Path) -> ModelRef:
    """Which route a spec takes; raises one line for a pickle given without a route."""
    text = str(spec)
    head, sep, tail = text.partition(":")
    if sep and head in ROUTES and not Path(text).exists():
        return ModelRef(head, tail)
    path = Path(text)
    if path.is_dir() and (path / "config.json").is_file() and _is_transformers_config(path / "config.json"):
        return ModelRef("hf", text)
    if path.suffix.lower() == ".onnx" and path.is_file():
        return ModelRef("onnx", text)
    if path.suffix.lower() in PICKLE_SUFFIXES and path.is_file():
        raise CheckpointError(
            "is a PyTorch pickle; facebench never unpickles a file",
            path,
            hint=f"for zllrunning's BiSeNet pass zll:{text}, or convert it once: "
            f"facebench convert zll:{text} --out DIR",
        )
    return ModelRef("facebench", text)


def _is_transformers_config(path: Path) -> bool:
    """A transformers config names a model_type; a facebench checkpoint config names an architecture."""
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and "model_type" in cfg and "architecture" not in cfg


def open_parser(spec: str | Path, labels: str | None = None, batch_size: int = 8, precision: str = "fp32") -> Parser:
    """A Parser for ``spec``, checked: every unusable spec fails here, in one line, before any work."""
    ref = parse_spec(spec)
    if labels is not None and ref.route != "onnx":
        raise InvalidConfig(f"--labels declares the order of an ONNX model or a mask folder; a {ref.route} model "
                            "declares its own", str(spec))
    if ref.route != "hf" and not Path(ref.target).exists():
        raise InputNotFound("model does not exist", ref.target)
    if ref.route == "zll":
        from baselines.zll import load_zll_parser

        return load_zll_parser(ref.target, batch_size=batch_size, precision=precision)
    if ref.route == "hf":
        from baselines.hf_parser import load_hf_parser

        return load_hf_parser(ref.target, batch_size=batch_size, precision=precision)
    if ref.route == "onnx":
        from baselines.onnx_parser import load_onnx_parser

        return load_onnx_parser(ref.target, labels=labels, batch_size=batch_size)
    from baselines.predict import load_parser

    return load_parser(ref.target, batch_size=batch_size, precision=precision)


def convert_to_checkpoint(spec: str, out: str | Path) -> Path:
    """Write a facebench checkpoint from a foreign format once, so later runs never read the original."""
    ref = parse_spec(spec)
    if ref.route != "zll":
        raise InvalidConfig(f"convert reads zll:PATH.pth (zllrunning's BiSeNet), not a {ref.route} model", spec,
                            hint="hf: and onnx: models are used as they are")
    if not Path(ref.target).exists():
        raise InputNotFound("model does not exist", ref.target)
    from baselines.zll import convert_zll

    return convert_zll(ref.target, out)
