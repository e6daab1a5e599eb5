"""Command functions for ``facebench train``, ``facebench predict`` and ``facebench export-onnx``.

Plain typer-annotated functions: facebench/app/cli.py registers them. No logic here beyond turning
options into a TrainConfig or a call; errors are FacebenchErrors raised by the library.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from facebench.errors import InvalidConfig


def train_command(
    model: Annotated[str, typer.Argument(help="Architecture: bisenet, unet or segformer.")],
    data: Annotated[Path, typer.Option(help="facebench dataset folder.")],
    out: Annotated[Path, typer.Option(help="Output folder: becomes the checkpoint; rerun to resume.")],
    steps: Annotated[int | None, typer.Option(help="Total optimiser steps.")] = None,
    epochs: Annotated[float | None, typer.Option(help="Or: passes over the (filtered) training split.")] = None,
    init: Annotated[str | None, typer.Option(help="Checkpoint to fine-tune from.")] = None,
    size: Annotated[int | None, typer.Option(help="Training crop side in pixels [default: 256].")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 8,
    width: Annotated[float | None, typer.Option(help="Channel multiplier [default: 1.0].")] = None,
    lr: Annotated[float | None, typer.Option(help="Base learning rate [default: the model's recipe].")] = None,
    seed: Annotated[int, typer.Option(help="Seed for init, batch order and augmentation.")] = 0,
    frontal: Annotated[bool, typer.Option(help="Train on near-frontal views only (|yaw|<30, |pitch|<20).")] = False,
    max_yaw: Annotated[float | None, typer.Option(help="Keep training views with |yaw| below this.")] = None,
    max_pitch: Annotated[float | None, typer.Option(help="Keep training views with |pitch| below this.")] = None,
    split: Annotated[str, typer.Option(help="Training split.")] = "train",
    val_split: Annotated[str, typer.Option(help="Validation split ('' for none).")] = "validation",
    val_every: Annotated[int | None, typer.Option(help="Validate every N steps [default: steps/5].")] = None,
    save_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 100,
    stop_after: Annotated[int | None, typer.Option(help="Stop at this step (resume later).")] = None,
    threads: Annotated[int, typer.Option(help="Torch CPU threads.")] = 2,
    test_time_flip: Annotated[bool | None, typer.Option(
        help="Record that the model infers on image + mirror image, averaged [default: --init's, else no].")] = None,
    test_time_scales: Annotated[str | None, typer.Option(
        help="Record zooms whose predictions are averaged at inference, e.g. 1,1.75 [default: --init's, else 1].",
    )] = None,
    amp: Annotated[
        str,
        typer.Option(help="auto (bf16 autocast where the CPU has AVX512-BF16/AMX, else fp32), bf16 or fp32."),
    ] = "auto",
) -> None:
    """Train or fine-tune a baseline face parser (OHEM CE, SGD/poly or AdamW, flip with left/right swap)."""
    from baselines.train import TrainConfig, train

    if frontal:
        if max_yaw is not None or max_pitch is not None:
            raise InvalidConfig("give either --frontal or --max-yaw/--max-pitch, not both")
        max_yaw, max_pitch = 30.0, 20.0
    cfg = TrainConfig(
        model=model, data=str(data), out=str(out), steps=steps, epochs=epochs, init=init, size=size,
        batch_size=batch_size, width=width, lr=lr, seed=seed, max_yaw=max_yaw, max_pitch=max_pitch,
        train_split=split, val_split=val_split or None, val_every=val_every, save_every=save_every,
        stop_after=stop_after, threads=threads, amp=amp, test_time_flip=test_time_flip,
        test_time_scales=_zooms(test_time_scales),
        command=shlex.join(["facebench", *sys.argv[1:]]),
    )  # fmt: skip
    result = train(cfg)
    typer.echo(f"checkpoint: {result.out} (step {result.step})")
    if result.metrics:
        typer.echo(json.dumps({k: v for k, v in result.metrics.items()}, sort_keys=True))


def _zooms(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(z) for z in text.split(","))
    except ValueError:
        raise InvalidConfig(f"--test-time-scales must be numbers separated by commas, got {text!r}") from None


def predict_command(
    checkpoint: Annotated[str, typer.Argument(help="A model: checkpoint folder, zll:PATH.pth, hf:ORG/NAME[@REV] or "
                                                   "onnx:PATH.")],
    photos: Annotated[Path | None, typer.Argument(help="A folder of JPEG/PNG photos, turned upright by their EXIF "
                                                                   "orientation (or use --data).",
                                                  show_default=False)] = None,
    out: Annotated[Path, typer.Option(help="Folder for {id}.png (or {stem}.png) label maps.")] = Path("masks"),
    data: Annotated[Path | None, typer.Option(help="Or a facebench dataset folder.")] = None,
    split: Annotated[str, typer.Option(help="Split to parse.")] = "test",
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 8,
    threads: Annotated[int, typer.Option(help="Torch CPU threads.")] = 2,
    precision: Annotated[
        str,
        typer.Option(help="fp32 (the same masks on every CPU), bf16 (about 2× faster on AVX512-BF16/AMX), or auto."),
    ] = "fp32",
    labels: Annotated[str | None, typer.Option(help="Label order of an onnx: model without facebench metadata "
                                                     "(bisenet | celebamask-hq | lapa | helen | PATH/id2label.json).")]
    = None,
) -> None:
    """Parse a folder of photos ({stem}.png label maps + overlays/ with a legend) or a dataset split ({id}.png)."""
    import torch

    from baselines.parser_spec import open_parser
    from baselines.predict import predict_dataset, predict_folder
    from facebench.errors import InvalidConfig
    from facebench.outputs import check_output_folder

    if (photos is None) == (data is None):
        raise InvalidConfig("give either a folder of photos or --data DATASET (not both)")
    for option, value in (("--batch-size", batch_size), ("--threads", threads)):
        if value < 1:
            raise InvalidConfig(f"{option} must be ≥ 1, got {value}")
    check_output_folder(out)
    if data is not None:  # the split, its ids and poses: checked before a model is loaded
        from facebench.dataset import load

        load(data).metadata(split)
    torch.set_num_threads(threads)
    parser = open_parser(checkpoint, labels=labels, batch_size=batch_size, precision=precision)
    if photos is not None:
        n = predict_folder(parser, photos, out)
        typer.echo(f"wrote {n} masks to {out} and overlays to {out / 'overlays'}")
        return
    n = predict_dataset(parser, data, split, out)
    typer.echo(f"wrote {n} masks to {out}")


def export_onnx_command(
    checkpoint: Annotated[str, typer.Argument(help="Checkpoint folder / .safetensors, or name:path.")],
    out: Annotated[Path, typer.Option(help="Output .onnx file.")],
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
    check: Annotated[bool, typer.Option(help="Compare with torch using onnxruntime, if installed.")] = True,
) -> None:
    """Export a checkpoint to ONNX (input: N×3×H×W RGB in [0, 1]; normalisation is in the graph)."""
    from baselines.predict import export_onnx

    report = export_onnx(checkpoint, out, opset=opset, check=check)
    typer.echo(json.dumps(report, sort_keys=True))
