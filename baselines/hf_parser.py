"""``hf:ORG/NAME[@REV]``: any Hugging Face ``transformers`` semantic-segmentation model as a facebench Parser.

The model is used as published: its own image processor resizes and normalises, ``AutoModelForSemanticSegmentation``
runs it, and its logits are resized bilinearly to each image's size before the argmax. What facebench adds is the
label order: the model's classes are matched to facebench's **by name** (``config.id2label`` through
``facebench.labels.canonical_name``), never by index, so a model trained in CelebAMask-HQ's order, or with
"left_eyebrow"/"eyeglasses" spellings, scores in facebench's ids.

A class with no facebench equivalent (a human parser's "Left-arm", "Pants") is predicted as ``background`` and
named once on stderr. Background is what facebench's ground truth uses for every pixel outside its 18 face and
head regions (CelebAMask-HQ labels hands, shoulders and scenery as background), so those pixels are scored as
the benchmark would label them; mapping them to 255 instead would silently drop them from the confusion matrix
in a prediction, where "ignore" has no meaning. A model with no face region facebench knows is refused.

Loading is checked once, before any work: every failure (no such repo or revision, no network and no cached
copy, a config that is not a segmentation model, no id2label, weights that lack the segmentation head) is one
line naming the spec. Hub downloads go through ``huggingface_hub`` and so honour ``HF_ENDPOINT``, ``HF_TOKEN``,
``HF_HOME`` and ``HF_HUB_OFFLINE``; a branch or tag is resolved to its commit first and everything is read at
that commit, which ``config["revision"]`` records.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from baselines.precision import resolve_precision
from facebench.errors import CheckpointError, InputNotFound, InvalidConfig
from facebench.hub import REPO_ID, HubError
from facebench.labels import FACEBENCH, FOREGROUND, canonical_name

UNMAPPED = "background"  # what a class without a facebench equivalent is predicted as (see the module docstring)
DEFAULT_LABEL = re.compile(r"^LABEL_\d+$")  # transformers' placeholder names when a config has no id2label
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # in transformers' order of preference


class HFParser:
    """A transformers segmentation model behind the Parser protocol; masks are in facebench's ids."""

    labels = FACEBENCH

    def __init__(self, model, processor, lut: np.ndarray, config: dict[str, Any], name: str, batch_size: int = 8,
                 precision: str = "fp32"):
        self.model = model.eval()
        self.processor = processor
        self.lut = torch.from_numpy(lut)  # model class id -> facebench id
        self.config = config
        self.name = name
        self.batch_size = batch_size
        self.precision = resolve_precision(precision)

    def pixels(self, image: np.ndarray) -> torch.Tensor:
        """H×W×3 uint8 -> 3×h×w float, exactly as the model's image processor prepares it."""
        out = self.processor(images=image, return_tensors="pt", input_data_format="channels_last")
        return out["pixel_values"][0].float()

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        """N×3×h×w -> N×C×h'×w' float logits (most models predict at a fraction of the input size)."""
        bf16 = self.precision == "bf16"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return self.model(pixel_values=pixels).logits.float()

    def predict(self, images: Sequence[np.ndarray], ids: Sequence[str] | None = None) -> list[np.ndarray]:
        """H×W×3 uint8 RGB images (any sizes) -> H×W uint8 facebench label maps of the same sizes."""
        out: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            chunk = list(images[start : start + self.batch_size])
            pix = [self.pixels(im) for im in chunk]
            masks: list[np.ndarray | None] = [None] * len(chunk)
            by_shape: dict[tuple[int, ...], list[int]] = {}  # processors that keep aspect ratios vary in size
            for i, p in enumerate(pix):
                by_shape.setdefault(tuple(p.shape), []).append(i)
            for idx in by_shape.values():
                for i, lg in zip(idx, self.logits(torch.stack([pix[i] for i in idx])), strict=True):
                    h, w = chunk[i].shape[:2]
                    lg = F.interpolate(lg[None], size=(h, w), mode="bilinear", align_corners=False)[0]
                    masks[i] = self.lut[lg.argmax(0)].numpy()
            out += masks
        return out


def class_lut(id2label: dict[int, str]) -> tuple[np.ndarray, list[str]]:
    """The model's class ids -> facebench ids by name, and the names that have no facebench class."""
    lut = np.zeros(len(id2label), dtype=np.uint8)
    unmapped = []
    for i in range(len(id2label)):
        canon = canonical_name(id2label[i])
        if canon in FACEBENCH.names:
            lut[i] = FACEBENCH.index(canon)
        else:
            lut[i] = FACEBENCH.index(UNMAPPED)
            unmapped.append(id2label[i])
    return lut, unmapped


def _transformers():
    try:
        import transformers
    except ImportError:
        raise InvalidConfig("hf: models need transformers", hint="pip install 'facebench[hf]'") from None
    return transformers


@contextmanager
def _hub_errors(label: str, repo_id: str, revision: str | None) -> Iterator[None]:
    """huggingface_hub's exceptions (and transformers' OSErrors around them) -> one facebench line."""
    from huggingface_hub import constants
    from huggingface_hub import errors as hub

    try:
        yield
    except hub.GatedRepoError:
        raise HubError(f"{repo_id} is gated on {constants.ENDPOINT}", label,
                       hint="accept its terms on the Hub and set HF_TOKEN") from None
    except hub.RepositoryNotFoundError:
        raise InputNotFound(f"no model repo {repo_id} on {constants.ENDPOINT} (and no such local folder)", label,
                            hint="check ORG/NAME; a private repo needs HF_TOKEN") from None
    except hub.RevisionNotFoundError:
        raise InputNotFound(f"{repo_id} has no revision {revision!r}", label,
                            hint="use a branch, a tag or a commit sha of the repo") from None
    except hub.LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE:
            raise HubError(f"HF_HUB_OFFLINE is set and {repo_id}@{revision or 'main'} is not in the local cache",
                           label, hint="download it once online") from None
        raise HubError(f"the Hub ({constants.ENDPOINT}) cannot be reached (after retries) and the model is not in "
                       "the local cache", label, hint="check the network and HF_ENDPOINT") from None
    except hub.RemoteEntryNotFoundError as e:
        raise CheckpointError(f"not a transformers model: {_first_line(e)}", label) from None
    except hub.HfHubHTTPError as e:
        raise HubError(f"the Hub refused: {_first_line(e)}", label) from None


def _is_hub_error(e: BaseException) -> bool:
    from huggingface_hub import errors as hub

    return isinstance(e, hub.HfHubHTTPError | hub.EntryNotFoundError)


def _first_line(e: BaseException, limit: int = 200) -> str:
    """The first sentence of an exception's message, on one line and at most ``limit`` characters."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.strip().endswith("Client Error.")]
    text = lines[0] if lines else type(e).__name__
    if len(text) > limit:
        head = text[:limit].rsplit(". ", 1)[0]
        text = head if len(head) < limit else head.rsplit(" ", 1)[0] + " ..."
    return text.rstrip(".")


def _locate(spec: str, label: str) -> tuple[str, Path, str | None]:
    """(what to pass to from_pretrained, the local folder holding config.json, the resolved commit or None)."""
    path = Path(spec)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CheckpointError("has no config.json: not a transformers model folder", label)
        return str(path), path, None
    repo_id, _, revision = spec.partition("@")
    if not REPO_ID.match(repo_id):
        raise InputNotFound("neither a folder nor a Hub model id", label, hint="expected ORG/NAME[@REV] or a "
                            "folder holding a transformers config.json")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import logging as hub_logging

    level = hub_logging.get_verbosity()
    hub_logging.set_verbosity_error()  # its "Retrying in 4s" lines: the failure, if any, is our one line
    try:
        with _hub_errors(label, repo_id, revision or None):
            config_path = Path(hf_hub_download(repo_id, "config.json", revision=revision or None))
    finally:
        hub_logging.set_verbosity(level)
    commit = config_path.parent.name if config_path.parent.parent.name == "snapshots" else revision or None
    return repo_id, config_path.parent, commit


def _weights_sha256(folder: Path, commit: str | None) -> tuple[str, str]:
    """(file, sha256) of the weights transformers loaded (shards: their bytes in index order)."""
    for name in WEIGHT_FILES:
        index = folder / f"{name}.index.json"
        files = ([folder / name] if (folder / name).is_file() else
                 [folder / f for f in dict.fromkeys(json.loads(index.read_text())["weight_map"].values())]
                 if index.is_file() else [])
        if files:
            h = hashlib.sha256()
            for f in files:
                with open(f, "rb") as fh:
                    while block := fh.read(1 << 22):
                        h.update(block)
            return (name if len(files) == 1 else f"{name}.index.json"), h.hexdigest()
    return "commit", commit or ""


@contextmanager
def _quiet(transformers) -> Iterator[None]:
    """transformers' warnings and its "Loading weights" bar off while loading (download bars stay): facebench
    checks what the warnings would say (missing weights) and says it in one line."""
    log = transformers.utils.logging
    level = log.get_verbosity()
    log.set_verbosity_error()
    hook = getattr(log, "set_tqdm_hook", None)  # transformers >= 5
    previous = hook(lambda factory, args, kwargs: log.EmptyTqdm(*args, **kwargs)) if hook else None
    try:
        yield
    finally:
        log.set_verbosity(level)
        if hook:
            hook(previous)


def load_hf_parser(spec: str, batch_size: int = 8, precision: str = "fp32",
                   echo: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> HFParser:
    """A Parser for ``ORG/NAME[@REV]`` on the Hub or a local folder holding a transformers ``config.json``."""
    tf = _transformers()
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES as SEGMENTERS

    local = Path(spec).is_dir()
    label = spec if local else f"hf:{spec}"
    where, folder, commit = _locate(spec, label)
    repo_id = where if not local else None
    v5 = int(tf.__version__.split(".")[0]) >= 5
    with _quiet(tf), _hub_errors(label, repo_id or spec, commit):
        try:
            config = tf.AutoConfig.from_pretrained(where, revision=commit)
        except (ValueError, KeyError, OSError) as e:  # unknown model_type, custom code, unreadable json
            if _is_hub_error(e):
                raise
            raise CheckpointError(f"transformers cannot read its config.json ({_first_line(e)})", label) from None
        if config.model_type not in SEGMENTERS:
            raise CheckpointError(f"is a {config.model_type!r} model, not a semantic-segmentation one", label,
                                  hint=f"transformers segments with: {', '.join(SEGMENTERS)}")
        id2label = {int(k): str(v) for k, v in config.id2label.items()}
        if sorted(id2label) != list(range(len(id2label))) or all(DEFAULT_LABEL.match(n) for n in id2label.values()):
            raise CheckpointError("its config.json has no id2label naming its classes; facebench maps classes by "
                                  "name", label)
        lut, unmapped = class_lut(id2label)
        if not set(lut.tolist()) & set(FOREGROUND):
            shown = ", ".join(list(id2label.values())[:6]) + (", ..." if len(id2label) > 6 else "")
            raise CheckpointError(f"none of its {len(id2label)} classes ({shown}) is a face region facebench knows",
                                  label, hint="class names and aliases: facebench/labels.py")
        dtype = {"dtype" if v5 else "torch_dtype": torch.float32}  # v5 would keep a checkpoint's fp16
        try:
            model, info = tf.AutoModelForSemanticSegmentation.from_pretrained(
                where, revision=commit, output_loading_info=True, **dtype)
        except (ValueError, OSError) as e:
            if _is_hub_error(e):
                raise
            raise CheckpointError(f"transformers cannot load its weights ({_first_line(e)})", label) from None
        try:  # the PIL backend, so that masks do not change with whether torchvision is installed
            processor = tf.AutoImageProcessor.from_pretrained(where, revision=commit,
                                                              **({"backend": "pil"} if v5 else {"use_fast": False}))
        except (ValueError, OSError) as e:
            if _is_hub_error(e):
                raise
            raise CheckpointError("has no image processor (preprocessor_config.json) saying how to resize and "
                                  "normalise its input", label) from None
    missing = list(info.get("missing_keys") or []) + [str(k[0]) if isinstance(k, tuple) else str(k)
                                                      for k in info.get("mismatched_keys") or []]
    if missing:
        raise CheckpointError(f"its weights lack {len(missing)} parameters of {type(model).__name__} (first: "
                              f"{sorted(missing)[0]}): not a trained segmentation model", label)
    if getattr(processor, "do_center_crop", False):
        processor.do_center_crop = False  # a crop would drop pixels that must be labelled and shift the rest
    if unmapped:
        echo(f"warning: {label}: {len(unmapped)} of {len(id2label)} classes have no facebench equivalent and are "
             f"predicted as {UNMAPPED}: {', '.join(unmapped)}")
    file, sha = _weights_sha256(folder, commit)
    cfg = {
        "architecture": f"hf:{config.model_type}",
        "labels": {"name": FACEBENCH.name, "names": list(FACEBENCH.names),
                   "model_id2label": {str(i): n for i, n in id2label.items()},
                   "mapping": {n: FACEBENCH.names[lut[i]] for i, n in id2label.items()}},
        "weights": {"file": file, "sha256": sha},
        "source": label,
        "revision": commit,
    }
    name = Path(spec).resolve().name if local else repo_id.split("/")[-1]
    return HFParser(model, processor, lut, cfg, name=name, batch_size=batch_size, precision=precision)
