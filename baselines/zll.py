"""``zll:PATH.pth``: zllrunning/face-parsing.PyTorch's BiSeNet checkpoint (``79999_iter.pth``) as a facebench Parser.

That project publishes a bare ``torch.save``d state dict. It is read with ``torch.load(weights_only=True)`` only
(tensors and plain containers; a file that pickles anything else is refused, never run), checked key by key and
shape by shape against ``ReferenceBiSeNet`` (the reference architecture, ``baselines.models.bisenet_zll``), and
loaded strictly, so what facebench evaluates is the published network and nothing approximately like it.

Preprocessing is the reference's (``test.py``): 512 input, ImageNet mean/std; its 19 classes are facebench's
order (both come from CelebAMask-HQ's list, background first). One difference is deliberate: facebench letterboxes
a non-square image to a square before resizing (every facebench parser does), where ``test.py`` stretches it.

``convert_zll`` writes the same network as a normal facebench checkpoint (safetensors + JSON) once, so later runs
never touch the pickle; its predictions are identical to the ``zll:`` route's.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from baselines.checkpoint import save_state, sha256
from baselines.models.bisenet_zll import ReferenceBiSeNet
from baselines.predict import TorchParser
from baselines.transforms import IMAGENET_MEAN, IMAGENET_STD
from facebench.errors import CheckpointError, InputNotFound
from facebench.labels import FACEBENCH_CLASSES

ARCHITECTURE = "bisenet-zll"
INPUT_SIZE = 512  # test.py: img.resize((512, 512), Image.BILINEAR)
CLASSIFIER = "conv_out.conv_out.weight"  # num_classes × 256 × 1 × 1: how many classes the checkpoint has
PREFIX = "module."  # what DataParallel / DistributedDataParallel put in front of every key


def read_zll_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The checked state dict of a zll ``.pth`` (float tensors as float32); one-line CheckpointError otherwise."""
    return _read(Path(path))[0]


def _read(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict that fits ReferenceBiSeNet, sha256 of the exact bytes parsed)."""
    if not path.exists():
        raise InputNotFound("zll checkpoint not found", path)
    if not path.is_file():
        raise CheckpointError("is not a file (zll: expects a .pth state dict such as 79999_iter.pth)", path)
    data = path.read_bytes()
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": about the file, not for the user
            warnings.simplefilter("ignore")
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  torch raises UnpicklingError, RuntimeError, KeyError, EOFError, ...
        raise CheckpointError(f"cannot be read as a weights-only torch state dict ({_why(e)})", path,
                              hint="facebench never unpickles arbitrary objects") from None
    state = _as_state(obj, path)
    _check_fits(state, path)
    return state, sha256(data)


def _why(error: Exception) -> str:
    """The useful part of torch.load's (multi-paragraph) message, on one line."""
    text = str(error)
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return f"it pickles {found.group(1)}, which is not a tensor"
    line = " ".join(text.split())[:160]
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def _as_state(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """A plain name -> tensor dict, with a DataParallel ``module.`` prefix removed."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"holds a {type(obj).__name__}, not a state dict (name -> tensor)", path)
    if not obj:
        raise CheckpointError("holds an empty dict, not a state dict", path)
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"is not a state dict: entry {key!r} holds a {type(value).__name__}, "
                                  "not a tensor", path)
    if all(k.startswith(PREFIX) for k in obj):
        obj = {k[len(PREFIX):]: v for k, v in obj.items()}
    return {k: v.float() if v.is_floating_point() else v for k, v in obj.items()}


def _check_fits(state: dict[str, torch.Tensor], path: Path) -> None:
    """Every key and shape of ReferenceBiSeNet, and nothing else (first misfit named).

    ``num_batches_tracked`` may be absent (checkpoints saved before PyTorch 0.4.1 lack it, and it does not
    change a prediction); it is filled with 0, as ``BatchNorm2d`` itself does for old state dicts.
    """
    if CLASSIFIER not in state:
        raise CheckpointError(f"is not zllrunning's BiSeNet: no key '{CLASSIFIER}' (first keys: "
                              f"{', '.join(list(state)[:3])})", path)
    classifier = state[CLASSIFIER]
    if classifier.dim() != 4 or classifier.shape[0] < 1:
        raise CheckpointError(f"'{CLASSIFIER}' has shape {list(classifier.shape)}, not [classes, 256, 1, 1]", path)
    with torch.device("meta"):  # shapes only: no memory, no init work
        own = ReferenceBiSeNet(num_classes=int(classifier.shape[0])).state_dict()
    for key in own:
        if key not in state and key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.long)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        first = f"missing key '{missing[0]}'" if missing else f"unexpected key '{unexpected[0]}'"
        raise CheckpointError(f"does not fit zllrunning's BiSeNet: {first} ({len(missing)} missing, "
                              f"{len(unexpected)} unexpected of {len(own)} keys)", path)
    for key, ref in own.items():
        if state[key].shape != ref.shape:
            raise CheckpointError(f"does not fit zllrunning's BiSeNet: '{key}' has shape {list(state[key].shape)}, "
                                  f"the reference's is {list(ref.shape)}", path)


def _config(path: Path, digest: str, num_classes: int) -> dict[str, Any]:
    """The facebench config of a zll checkpoint (the reference's preprocessing and label order)."""
    if num_classes != len(FACEBENCH_CLASSES):
        raise CheckpointError(f"has {num_classes} classes; zll: reads the reference's 19 CelebAMask-HQ classes",
                              path, hint="a BiSeNet trained on other labels needs its label order declared")
    return {
        "architecture": ARCHITECTURE,
        "width": 1.0,
        "input_size": INPUT_SIZE,
        "normalisation": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "labels": {"name": "bisenet", "names": list(FACEBENCH_CLASSES)},
        "weights": {"sha256": digest, "file": path.name},
        "source": f"zll:{path}",
    }


def _model(path: Path) -> tuple[ReferenceBiSeNet, dict[str, Any]]:
    state, digest = _read(path)
    config = _config(path, digest, int(state[CLASSIFIER].shape[0]))
    model = ReferenceBiSeNet(num_classes=len(config["labels"]["names"]))
    model.load_state_dict(state, strict=True)
    return model.eval(), config


def load_zll_parser(path: str | Path, batch_size: int = 8, precision: str = "fp32") -> TorchParser:
    """A Parser running the reference BiSeNet on the checkpoint's exact weights, named after the file."""
    path = Path(path)
    model, config = _model(path)
    return TorchParser(model, config, name=path.stem, batch_size=batch_size, precision=precision)


def convert_zll(path: str | Path, out: str | Path) -> Path:
    """Write ``out`` (a checkpoint folder, or NAME.safetensors + NAME.json) in float32; returns ``out``."""
    path = Path(path)
    model, config = _model(path)
    weights = config.pop("weights")
    config["converted_from"] = {"file": weights["file"], "sha256": weights["sha256"]}
    return save_state(out, model.state_dict(), config, dtype=torch.float32)
