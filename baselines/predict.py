"""Checkpoints as ``facebench.parsing.Parser``s, batch prediction to PNG folders, and ONNX export.

Images of any size are letterboxed to a square, resized to the checkpoint's input size, parsed in
batches, and the logits are resized back (bilinear) before the argmax, so label maps match each
input pixel for pixel.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import Progress

from baselines.checkpoint import load_state, load_weights
from baselines.models import MODELS, build_model, model_memory_format
from baselines.precision import resolve_precision
from baselines.transforms import image_to_tensor, logits_to_mask, normalise
from facebench.errors import CheckpointError, InvalidConfig
from facebench.files import atomic_path
from facebench.imageio import write_png
from facebench.labels import FACEBENCH, LabelSet
from facebench.outputs import check_output_folder


def checkpoint_labels(config: dict[str, Any]) -> LabelSet:
    """The label set a checkpoint's config declares (facebench's own when the names are ours)."""
    names = tuple(config["labels"]["names"])
    return FACEBENCH if names == FACEBENCH.names else LabelSet(names, name=config["labels"]["name"])


class TorchParser:
    """A trained baseline behind the Parser protocol: ``predict(images) -> masks``."""

    def __init__(
        self,
        model: torch.nn.Module,
        config: dict[str, Any],
        name: str | None = None,
        batch_size: int = 8,
        precision: str = "fp32",
    ):
        self.precision = resolve_precision(precision)
        self.memory_format = model_memory_format(config["architecture"])
        self.model = model.eval().to(memory_format=self.memory_format)
        self.config = config
        self.labels = checkpoint_labels(config)
        self.name = name or config["architecture"]
        self.size = int(config["input_size"])
        self.mean = tuple(config["normalisation"]["mean"])
        self.std = tuple(config["normalisation"]["std"])
        self.batch_size = batch_size

    def logits(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """N×C×S×S logits of letterboxed, resized images (one forward pass: keep N small)."""
        x = normalise(torch.stack([image_to_tensor(im, self.size) for im in images]), self.mean, self.std)
        bf16 = self.precision == "bf16"
        x = x.contiguous(memory_format=self.memory_format)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return self.model(x).float()

    def predict(self, images: Sequence[np.ndarray], ids: Sequence[str] | None = None) -> list[np.ndarray]:
        """H×W×3 uint8 RGB images (any sizes) -> H×W uint8 label maps of the same sizes."""
        out: list[np.ndarray] = []
        for i in range(0, len(images), self.batch_size):
            chunk = images[i : i + self.batch_size]
            for im, lg in zip(chunk, self.logits(chunk), strict=True):
                out.append(logits_to_mask(lg, im.shape[0], im.shape[1]))
        return out


def _split_spec(spec: str) -> tuple[str | None, str]:
    """'bisenet:path' -> ('bisenet', 'path'); a bare path -> (None, path)."""
    head, sep, tail = spec.partition(":")
    if sep and head in MODELS:
        return head, tail
    return None, spec


def load_model(path: str | Path, architecture: str | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build the architecture a checkpoint names and load its verified weights (eval mode)."""
    state, config = load_state(path)
    if architecture is not None and architecture != config["architecture"]:
        raise CheckpointError(f"is a {config['architecture']} checkpoint, not {architecture}", path)
    if config["architecture"] not in MODELS:
        raise CheckpointError(
            f"unknown architecture '{config['architecture']}'", path, hint=f"known: {', '.join(MODELS)}"
        )
    model = build_model(
        config["architecture"],
        len(config["labels"]["names"]),
        float(config["width"]),
        **config.get("model_kwargs", {}),
    )
    load_weights(model, state, path)
    if config.get("test_time_scales", [1.0]) != [1.0]:
        model = ScaleAveraged(model, config["test_time_scales"])
    if config.get("test_time_flip"):
        model = FlipAveraged(model, checkpoint_labels(config))
    return model.eval(), config


class ScaleAveraged(torch.nn.Module):
    """Multi-scale inference: the class probabilities of the input zoomed by each factor (bilinear), resized back
    and averaged; log-probabilities out, so the argmax and softmax of callers are unchanged.

    Why: the reference recipe trains on crops zoomed 0.75–2×, and at the crop side an eye is a few pixels for a
    network of output stride 8. Zoomed 1.75× the shipped parser finds eyes, brows and lips far better but loses
    the large regions (hair, cloth, background: less context); averaged with 1× it keeps both (BENCHMARKS.md).
    A checkpoint asks for it with ``"test_time_scales": [1.0, 1.75]``; ONNX exports carry it in the graph."""

    def __init__(self, model: torch.nn.Module, scales: Sequence[float]):
        super().__init__()
        self.model = model
        self.scales = tuple(float(s) for s in scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = x.shape[-2:]
        total = 0
        for s in self.scales:
            xs = x if s == 1.0 else F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
            y = self.model(xs)
            if y.shape[-2:] != side:
                y = F.interpolate(y, size=side, mode="bilinear", align_corners=False)
            total = total + y.softmax(1)
        return (total / len(self.scales)).clamp_min(1e-8).log()


class FlipAveraged(torch.nn.Module):
    """Test-time flip: the logits of an image and of its mirror image (mirrored back, with the l_/r_ classes
    swapped) averaged, as face-parsing papers report. Twice the inference cost; a checkpoint asks for it with
    ``"test_time_flip": true`` in its config, and ONNX exports of it carry the flip in the graph."""

    def __init__(self, model: torch.nn.Module, labels: LabelSet):
        super().__init__()
        self.model = model
        swap = torch.from_numpy(labels.flip_lut[: len(labels.names)].astype(np.int64))
        self.register_buffer("swap", swap, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mirrored = self.model(x.flip(-1)).flip(-1).index_select(1, self.swap)
        return 0.5 * (self.model(x) + mirrored)


def load_parser(spec: str, batch_size: int = 8, precision: str = "fp32") -> TorchParser:
    """A Parser from a checkpoint path (folder, .safetensors or .json) or ``name:path``.

    ``precision="bf16"`` is about 2× faster on CPUs with AVX512-BF16 or AMX, and slower elsewhere.
    """
    architecture, path = _split_spec(str(spec))
    model, config = load_model(path, architecture)
    name = Path(path).stem if Path(path).is_file() else Path(path).name
    return TorchParser(model, config, name=name, batch_size=batch_size, precision=precision)


def predict_dataset(parser: TorchParser, data: str | Path, split: str, out: str | Path, quiet: bool = False) -> int:
    """Write ``{id}.png`` label maps for every sample of ``split``; returns how many.

    Every id is checked (``FacebenchDataset.metadata``) before one becomes a file name, and the masks are
    written to a staging folder moved into ``out`` at the end: a damaged sample met halfway leaves ``out``
    as it was."""
    from facebench.dataset import FacebenchDataset
    from facebench.outputs import staged_folder

    ds = FacebenchDataset(data)
    n = len(ds.metadata(split))
    batch_images: list[np.ndarray] = []
    batch_ids: list[str] = []

    with staged_folder(out) as tmp, Progress(disable=quiet, transient=True) as progress:
        task = progress.add_task(f"predict {split}", total=n)

        def flush() -> None:
            for i, mask in zip(batch_ids, parser.predict(batch_images, batch_ids), strict=True):
                write_png(tmp / f"{i}.png", mask)
            progress.advance(task, len(batch_ids))
            batch_images.clear()
            batch_ids.clear()

        for sample in ds.iter_samples(split, columns=("image",)):
            batch_images.append(sample.image)
            batch_ids.append(sample.id)
            if len(batch_images) == getattr(parser, "batch_size", 8):
                flush()
        flush()
    return n


PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def predict_folder(parser: TorchParser, photos: str | Path, out: str | Path, overlays: bool = True,
                   quiet: bool = False) -> int:
    """Parse every JPEG/PNG in ``photos``, turned upright by its EXIF orientation (the label maps match the photo
    as viewers show it): ``{stem}.png`` label maps in ``out`` and, with ``overlays``,
    ``out/overlays/{stem}.png`` (photo | labels over it, with a legend). Returns how many. Written to a staging
    folder moved into ``out`` at the end, so an unreadable photo met halfway leaves ``out`` as it was."""
    from facebench.errors import InvalidConfig, require_exists
    from facebench.imageio import read_photo
    from facebench.outputs import staged_folder

    photos = require_exists(Path(photos), "photo folder")
    if not photos.is_dir():
        raise InvalidConfig("is not a folder of photos", photos)
    files = sorted(p for p in photos.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not files:
        raise InvalidConfig("no .jpg, .jpeg or .png images here", photos)
    with staged_folder(out) as tmp, Progress(disable=quiet, transient=True) as progress:
        task = progress.add_task("predict photos", total=len(files))
        for path in files:
            image = read_photo(path)  # upright, as a viewer shows it (EXIF orientation)
            mask = parser.predict([image], [path.stem])[0]
            write_png(tmp / f"{path.stem}.png", mask)
            if overlays:
                from facebench.figures import overlay_with_legend

                (tmp / "overlays").mkdir(parents=True, exist_ok=True)
                overlay_with_legend(image, mask, parser.labels, tmp / "overlays" / f"{path.stem}.png", path.name)
            progress.advance(task)
    return len(files)


def export_onnx(spec: str, out: str | Path, opset: int = 17, check: bool = True) -> dict[str, Any]:
    """Export a checkpoint to ONNX (input 'image': N×3×S×S float RGB in [0, 1]; output 'logits').

    S is the checkpoint's input size (fixed in the graph); the batch dimension is dynamic.
    Normalisation is inside the graph, so callers only scale by 1/255. With ``check``, the export
    is run with onnxruntime and compared with torch on random images; returns the max |difference|.
    """
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise InvalidConfig("ONNX export needs the 'onnx' extra", hint="pip install 'facebench[onnx]'") from None
    architecture, path = _split_spec(str(spec))
    model, config = load_model(path, architecture)
    wrapped = _Normalised(model, config["normalisation"]["mean"], config["normalisation"]["std"]).eval()
    size = int(config["input_size"])
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    out = Path(out)
    if out.is_dir():
        raise InvalidConfig("--out is a folder, not an .onnx file", out, hint="choose a file name")
    check_output_folder(out.parent, "--out")
    report: dict[str, Any] = {"path": str(out), "opset": opset}
    with atomic_path(out) as tmp:  # a failed export or check leaves no half-written (or unchecked) model
        with warnings.catch_warnings():  # tracer warnings about shape-dependent branches: sizes are fixed
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped,
                (example,),
                str(tmp),
                input_names=["image"],
                output_names=["logits"],
                opset_version=opset,
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                dynamo=False,
            )
        _add_metadata(tmp, config)
        report["bytes"] = tmp.stat().st_size
        if check:
            batch = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(1))  # other batch size
            report.update(check_onnx(tmp, wrapped, batch))
    return report


class _Normalised(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def _add_metadata(path: Path, config: dict[str, Any]) -> None:
    import json

    import onnx

    m = onnx.load(str(path))
    for key, value in (
        ("facebench_labels", json.dumps(config["labels"]["names"])),
        ("facebench_input_size", str(config["input_size"])),
        ("facebench_architecture", config["architecture"]),
    ):
        m.metadata_props.add(key=key, value=value)
    onnx.save(m, str(path))


def check_onnx(path: Path, model: torch.nn.Module, example: torch.Tensor) -> dict[str, Any]:
    """Compare onnxruntime with torch on ``example``; {'onnxruntime': False} if it isn't installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {"onnxruntime": False}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"image": example.numpy()})[0]
    with torch.inference_mode():
        want = model(example).numpy()
    return {
        "onnxruntime": ort.__version__,
        "max_abs_diff": float(np.abs(got - want).max()),
        "argmax_agreement": float((got.argmax(1) == want.argmax(1)).mean()),
    }
