"""Train or fine-tune a baseline face parser on a facebench dataset, on CPU. One loop, top to bottom.

Recipe (BiSeNet face parser, zllrunning/face-parsing.PyTorch): OHEM cross-entropy on every head,
SGD lr 1e-2 / momentum 0.9 / weight decay 5e-4 with 10× lr outside the trunk, warm-up then poly
0.9 decay (AdamW for the transformer); random scale + crop, colour jitter, small rotations and
horizontal flips with left/right label swap.

Reproducible and resumable: every random draw comes from a generator seeded by (seed, step), so
the batch order and augmentation of step k never depend on how the run got there. The output
folder is itself a checkpoint (``model.safetensors`` + ``config.json``) plus ``train_state.*``
(optimizer state and step); rerunning the same command resumes.

Crash-safe: the four files are one unit. Each save writes a whole new folder beside the run
(``.<name>.tmp-*``), fsyncs it and swaps it with the run folder in one step (``replace_dir``), so
``kill -9`` at any instant leaves the previous save or the new one, never a mix of the two; the next
run removes what a killed one left (``recover_dir``). Because the folder is replaced whole, training
refuses an ``--out`` that holds anything else. Same seed and config, same ``model.safetensors`` bytes
(``config.json`` records no clock time either, but it does record the command, ``--out`` included).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from safetensors.torch import load as load_safetensors

from baselines.augment import AugmentConfig, augment
from baselines.checkpoint import (
    MAX_INPUT_SIZE,
    MIN_SIZE,
    checkpoint_bytes,
    load_state,
    load_weights,
    read_config,
    safetensors_bytes,
    sha256,
)
from baselines.data import PoseFilter, SplitTensors, load_split
from baselines.loss import ohem_cross_entropy
from baselines.models import build_model, model_memory_format, model_spec
from baselines.precision import resolve_precision
from baselines.schedule import learning_rate, make_optimizer, set_learning_rate
from baselines.transforms import IMAGENET_MEAN, IMAGENET_STD, normalise
from facebench.dataset import FacebenchDataset
from facebench.errors import CheckpointError, InvalidConfig
from facebench.files import fsync_path, fsync_tree, json_dumps_strict, recover_dir, replace_dir, temp_dir
from facebench.labels import FACEBENCH
from facebench.metrics import Evaluation
from facebench.outputs import check_output_folder
from facebench.pose import pose_bin

# Settings that must not change when a run is resumed (the rest, e.g. steps, may).
FROZEN = ("model", "size", "batch_size", "width", "seed", "train_split", "max_yaw", "max_pitch", "init")
# A run folder holds exactly these; every save replaces all four at once.
RUN_FILES = ("model.safetensors", "config.json", "train_state.safetensors", "train_state.json")


@dataclass
class TrainConfig:
    """Everything that defines a run. ``None`` means: the model's recipe (or the --init checkpoint's)."""

    model: str = "bisenet"
    data: str = ""
    out: str = "runs/bisenet"
    steps: int | None = None  # total optimiser steps; or give epochs
    epochs: float | None = None
    size: int | None = None  # training crop side (default 256, or the --init checkpoint's)
    batch_size: int = 8
    width: float | None = None  # channel multiplier (default 1.0, or the --init checkpoint's)
    seed: int = 0
    init: str | None = None  # checkpoint to fine-tune from
    lr: float | None = None
    head_lr_mult: float = 10.0
    momentum: float = 0.9
    weight_decay: float | None = None
    warmup: int | None = None  # default: min(1000, steps // 10)
    power: float = 0.9
    ohem_thresh: float = 0.7
    train_split: str = "train"
    val_split: str | None = "validation"
    val_every: int | None = None  # default: 5 times per run, and at the end
    val_limit: int | None = 256
    save_every: int = 100
    max_yaw: float | None = None  # restrict training views, e.g. 30 / 20 for near-frontal
    max_pitch: float | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    threads: int | None = 2
    amp: str | None = "auto"  # auto | bf16 | fp32: bf16 autocast where the CPU has bf16 kernels
    stop_after: int | None = None  # stop (resumably) once this step is reached: time-boxing
    test_time_flip: bool | None = None  # infer on image + mirror (baselines.predict.FlipAveraged); None: --init's
    test_time_scales: tuple[float, ...] | None = None  # zooms averaged at inference (ScaleAveraged); None: --init's
    quiet: bool = False
    command: str = ""


@dataclass
class TrainResult:
    out: Path
    step: int
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def _generator(*keys: int) -> torch.Generator:
    """A generator seeded by a tuple of ints, so draws depend only on (seed, step), not on history."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence(list(keys)).generate_state(1)[0]))


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Indices for ``step``: a fresh permutation per epoch, cycled if the split is smaller than a batch."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=_generator(seed, 1, epoch))
    return perm[(k * batch_size + torch.arange(batch_size)) % n]


def train_step(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    images: torch.Tensor,
    masks: torch.Tensor,
    cfg: TrainConfig,
    gen: torch.Generator,
    flip_lut: np.ndarray = FACEBENCH.flip_lut,
) -> float:
    """Augment one batch (N×3×H×W uint8, N×H×W uint8), OHEM loss on every head, one optimiser step."""
    x, y = augment(images, masks, cfg.size, cfg.augment, flip_lut, gen)
    x = normalise(x, IMAGENET_MEAN, IMAGENET_STD).contiguous(memory_format=model_memory_format(cfg.model))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.amp == "bf16"):
        outputs = model(x)
    loss = sum(ohem_cross_entropy(o.float(), y, cfg.ohem_thresh) for o in outputs)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def validate(model: torch.nn.Module, data: SplitTensors, mean, std, batch_size: int = 16) -> dict[str, Any]:
    """Mean foreground F1 and mIoU on ``data`` at training size, overall and by pose bin."""
    was_training = model.training
    model.eval()
    ev = Evaluation(FACEBENCH)
    with torch.inference_mode():
        for i in range(0, len(data), batch_size):
            x = normalise(data.images[i : i + batch_size].float() / 255, mean, std)
            pred = model(x).argmax(1).to(torch.uint8).numpy()
            for j, p in enumerate(pred):
                k = i + j
                ev.add(p, data.masks[k].numpy(), data.ids[k], pose_bin(data.yaws[k]), data.yaws[k])
    model.train(was_training)
    all_scores = ev.scores(n_boot=0)
    out = {"mean_f1_fg": all_scores["mean_f1_fg"], "miou": all_scores["miou"], "n_images": len(data)}
    out["by_pose_bin"] = {g: round(ev.scores(g, n_boot=0)["mean_f1_fg"], 4) for g in ev.group_names()}
    return out


def _optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    return {
        f"{i}.{k}": v.contiguous()
        for i, st in opt.state_dict()["state"].items()
        for k, v in st.items()
        if torch.is_tensor(v)
    }


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})


def _resolve_defaults(cfg: TrainConfig, n_train: int) -> tuple[TrainConfig, dict[str, Any] | None]:
    """Fill recipe defaults; settings come from the --init checkpoint when fine-tuning."""
    spec = model_spec(cfg.model)
    init_cfg = read_config(cfg.init) if cfg.init else None
    if init_cfg is not None:
        if init_cfg["architecture"] != cfg.model:
            raise InvalidConfig(f"--init is a {init_cfg['architecture']} checkpoint, not {cfg.model}", cfg.init)
        if cfg.width is not None and cfg.width != init_cfg["width"]:
            raise InvalidConfig(f"--width {cfg.width} differs from the --init checkpoint's {init_cfg['width']}")
        cfg.width = init_cfg["width"]
        cfg.size = cfg.size if cfg.size is not None else init_cfg["input_size"]
        if cfg.test_time_flip is None:  # a fine-tune infers as the model it started from
            cfg.test_time_flip = bool(init_cfg.get("test_time_flip", False))
        if cfg.test_time_scales is None:
            cfg.test_time_scales = tuple(init_cfg.get("test_time_scales", [1.0]))
    cfg.test_time_flip = bool(cfg.test_time_flip)
    cfg.width = cfg.width or 1.0
    cfg.size = cfg.size if cfg.size is not None else 256  # not `or`: --size 0 is an error, not the default
    cfg.amp = resolve_precision(cfg.amp)
    cfg.lr = cfg.lr if cfg.lr is not None else spec.lr
    cfg.weight_decay = cfg.weight_decay if cfg.weight_decay is not None else spec.weight_decay
    if cfg.steps is None:
        if cfg.epochs is None:
            raise InvalidConfig("give --steps or --epochs")
        cfg.steps = max(1, math.ceil(cfg.epochs * max(1, n_train // cfg.batch_size)))
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.size < 32:
        raise InvalidConfig("--steps and --batch-size must be ≥ 1 and --size ≥ 32")
    cfg.warmup = cfg.warmup if cfg.warmup is not None else min(1000, cfg.steps // 10)
    cfg.val_every = cfg.val_every if cfg.val_every is not None else max(1, cfg.steps // 5)
    return cfg, init_cfg


def check_options(cfg: TrainConfig) -> None:
    """Every option in range, before any data is read: --size 0 once silently meant 256, --size 100000 tried to
    allocate 120 GB, --save-every 0 divided by zero after the first step."""
    def bad(option: str, rule: str, value: Any) -> InvalidConfig:
        return InvalidConfig(f"{option} must be {rule}, got {value}")

    if cfg.amp not in (None, "auto", "bf16", "fp32"):
        raise bad("--amp", "auto, bf16 or fp32", repr(cfg.amp))
    if cfg.size is not None and not MIN_SIZE <= cfg.size <= MAX_INPUT_SIZE:
        raise bad("--size", f"{MIN_SIZE}..{MAX_INPUT_SIZE} pixels", cfg.size)
    for option, value in (("--steps", cfg.steps), ("--val-every", cfg.val_every), ("--stop-after", cfg.stop_after),
                          ("--threads", cfg.threads)):
        if value is not None and value < 1:
            raise bad(option, "≥ 1", value)
    scales = cfg.test_time_scales or (1.0,)
    if not 1 <= len(scales) <= 4 or not all(math.isfinite(z) and 0.25 <= z <= 4 for z in scales):
        raise bad("--test-time-scales", "1..4 zoom factors in 0.25..4", ",".join(map(str, scales)))
    for option, value in (("--batch-size", cfg.batch_size), ("--save-every", cfg.save_every)):
        if value < 1:
            raise bad(option, "≥ 1", value)
    for option, value in (("--epochs", cfg.epochs), ("--lr", cfg.lr), ("--width", cfg.width),
                          ("--max-yaw", cfg.max_yaw), ("--max-pitch", cfg.max_pitch)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise bad(option, "a positive number", value)


def _checkpoint_config(
    cfg: TrainConfig, ds: FacebenchDataset, revision: str, step: int, metrics: dict[str, Any]
) -> dict[str, Any]:
    return {
        "architecture": cfg.model,
        "width": cfg.width,
        "num_classes": FACEBENCH.num_classes,
        "labels": {"name": FACEBENCH.name, "names": list(FACEBENCH.names)},
        "input_size": cfg.size,
        "normalisation": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "scale": "rgb/255"},
        "training": {
            "data_id": ds.root.name,
            "data_revision": revision,
            "split": cfg.train_split,
            "pose_filter": {"max_yaw": cfg.max_yaw, "max_pitch": cfg.max_pitch},
            "steps": step,
            "total_steps": cfg.steps,
            "batch_size": cfg.batch_size,
            "seed": cfg.seed,
            "init": cfg.init,
            "optimizer": model_spec(cfg.model).optimizer,
            "precision": cfg.amp,
            "lr": cfg.lr,
            "command": cfg.command,
            "torch": torch.__version__,
        },
        "metrics": metrics,
        **({"test_time_flip": True} if cfg.test_time_flip else {}),
        **({"test_time_scales": list(cfg.test_time_scales)} if cfg.test_time_scales not in (None, (1.0,)) else {}),
    }


def _save(out: Path, model, opt, cfg: TrainConfig, ds, revision, step: int, metrics, history) -> None:
    """Weights, config, optimizer state and record, written whole into a new folder and swapped in.

    The record (train_state.json) holds the sha256 of the weights and of the optimizer state, so a resume
    can still tell a hand-edited folder from the one this wrote."""
    weights, config_text = checkpoint_bytes(model.state_dict(), _checkpoint_config(cfg, ds, revision, step, metrics))
    state_bytes = safetensors_bytes(_optimizer_tensors(opt))
    record = {
        "step": step,
        "weights_sha256": sha256(weights),
        "state_sha256": sha256(state_bytes),
        "config": {**asdict(cfg), "augment": asdict(cfg.augment)},
        "history": history,
    }
    files = dict(zip(RUN_FILES, (weights, config_text.encode(), state_bytes,
                                 (json_dumps_strict(record, indent=1) + "\n").encode()), strict=True))
    _check_run_folder(out)  # files added during the run would go with the old folder
    tmp = temp_dir(out.parent, f".{out.name}.tmp-")
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        fsync_tree(tmp)  # whole on disk before it is swapped in (a power cut, not only a kill)
        replace_dir(tmp, out)
        fsync_path(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_run_folder(out: Path) -> None:
    """``out`` is absent, empty, or a run folder: anything else would be thrown away by the next save."""
    if out.exists() and not out.is_dir():
        raise InvalidConfig("--out is a file, not a folder", out, hint="choose a new --out")
    other = sorted(set(os.listdir(out)) - set(RUN_FILES)) if out.is_dir() else []
    if other:
        raise InvalidConfig(
            f"--out holds files that are not a training run's ({', '.join(other[:3])}); each save replaces the "
            "folder whole", out, hint="choose a new --out, or move those files elsewhere")
    if out.is_dir() and os.listdir(out) and not (out / "train_state.json").exists():
        raise InvalidConfig("--out holds a checkpoint without train_state.json (not a resumable run)", out,
                            hint="choose a new --out; fine-tune from a checkpoint with --init")


def _resume(out: Path, cfg: TrainConfig, model, opt) -> tuple[int, list[dict[str, Any]]]:
    try:
        record = json.loads((out / "train_state.json").read_text(encoding="utf-8"))
        old = record["config"]
        changed = [k for k in FROZEN if old.get(k) != getattr(cfg, k)]
        step, history = int(record["step"]), list(record["history"])
        weights_sha, state_sha = record["weights_sha256"], record["state_sha256"]
    except (OSError, ValueError, RecursionError, KeyError, TypeError, AttributeError):
        raise CheckpointError("train_state.json is not a training record", out / "train_state.json",
                              hint="choose a new --out (the weights there can still seed one with --init)") from None
    if changed:
        raise InvalidConfig(
            f"{out} holds a run with other settings ({', '.join(changed)})",
            hint="use the same options to resume, or a new --out",
        )
    state, config = load_state(out)
    if config["weights"]["sha256"] != weights_sha:
        raise CheckpointError("weights and train_state.json disagree (was the folder edited?)", out,
                              hint="use a new --out")
    state_bytes = (out / "train_state.safetensors").read_bytes()
    if sha256(state_bytes) != state_sha:
        raise CheckpointError("train_state.safetensors does not match train_state.json (was the folder edited?)", out,
                              hint="use a new --out")
    load_weights(model, state, out)
    _load_optimizer(opt, load_safetensors(state_bytes))
    return step, history


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) training as ``cfg`` says; returns where the checkpoint is and its last metrics."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    console = Console(quiet=cfg.quiet, stderr=True)
    model_spec(cfg.model)  # an unknown name is reported before any data is read
    check_options(cfg)
    out = check_output_folder(Path(cfg.out))
    recover_dir(out)  # what a killed save left: its temporary folder (or, without an atomic swap, the old run)
    _check_run_folder(out)
    ds = FacebenchDataset(cfg.data)
    if cfg.val_split and cfg.val_split not in ds.splits:  # once skipped in silence: a run without validation
        raise InvalidConfig(f"--val-split: the dataset has no split '{cfg.val_split}' (it has: "
                            f"{', '.join(ds.splits)})", ds.root, hint="pass --val-split '' to train without one")
    revision = ds.revision
    pose = PoseFilter(cfg.max_yaw, cfg.max_pitch)
    with Progress(console=console, transient=True) as p:
        train_data = load_split(ds, cfg.train_split, cfg.size or 256, pose, progress=p)
        if len(train_data) == 0:
            raise InvalidConfig(f"no '{cfg.train_split}' samples pass the pose filter {pose.as_dict()}", ds.root)
        cfg, init_cfg = _resolve_defaults(cfg, len(train_data))
        if train_data.images.shape[-1] != cfg.size:
            train_data = load_split(ds, cfg.train_split, cfg.size, pose, progress=p)
        val_data = None
        if cfg.val_split and cfg.val_split in ds.splits and cfg.val_every:
            val_data = load_split(ds, cfg.val_split, cfg.size, limit=cfg.val_limit, progress=p)

    spec = model_spec(cfg.model)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model, FACEBENCH.num_classes, cfg.width)
    model = model.to(memory_format=model_memory_format(cfg.model))
    if init_cfg is not None:
        state, _ = load_state(cfg.init)
        load_weights(model, state, cfg.init)
    opt = make_optimizer(model, spec.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum, cfg.head_lr_mult)

    step, history = 0, []
    if (out / "train_state.json").exists():
        step, history = _resume(out, cfg, model, opt)
        console.print(f"resuming {out} at step {step}/{cfg.steps}")
    metrics = history[-1]["val"] if history and "val" in history[-1] else {}
    end = min(cfg.steps, cfg.stop_after) if cfg.stop_after else cfg.steps
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    flip_lut = FACEBENCH.flip_lut
    model.train()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}  {task.fields[ips]:.1f} img/s  lr {task.fields[lr]:.2e}"),
        TimeRemainingColumn(),
    )
    t0, seen, loss_ema = time.perf_counter(), 0, float("nan")
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(
                f"train {cfg.model}", total=cfg.steps, completed=step, loss=float("nan"), ips=0.0, lr=0.0
            )
            while step < end:
                lr = learning_rate(step, cfg.lr, cfg.steps, cfg.warmup, cfg.power)
                set_learning_rate(opt, lr)
                idx = batch_indices(len(train_data), cfg.batch_size, step, cfg.seed)
                value = train_step(
                    model, opt, train_data.images[idx], train_data.masks[idx], cfg,
                    _generator(cfg.seed, 2, step), flip_lut,
                )  # fmt: skip
                step += 1
                seen += cfg.batch_size
                loss_ema = value if math.isnan(loss_ema) else 0.9 * loss_ema + 0.1 * value
                entry: dict[str, Any] = {"step": step, "loss": round(value, 5), "lr": lr}
                if val_data is not None and (step % cfg.val_every == 0 or step == cfg.steps):
                    metrics = {"split": cfg.val_split, "step": step, **validate(model, val_data, mean, std)}
                    entry["val"] = metrics
                    progress.console.print(
                        f"step {step}: val mean F1 (fg) {metrics['mean_f1_fg']:.4f}, "
                        f"by pose bin {metrics['by_pose_bin']}"
                    )
                history.append(entry)
                progress.update(
                    task, completed=step, loss=loss_ema, lr=lr, ips=seen / max(1e-9, time.perf_counter() - t0)
                )
                if not console.is_terminal and (step % max(1, cfg.steps // 50) == 0 or step == end):
                    # no live bar in logs: a plain line every 2% instead
                    console.print(f"step {step}/{cfg.steps}  loss {loss_ema:.3f}  lr {lr:.2e}  "
                                  f"{seen / max(1e-9, time.perf_counter() - t0):.1f} img/s")  # fmt: skip
                if step % cfg.save_every == 0 or step == end:
                    _save(out, model, opt, cfg, ds, revision, step, metrics, history)
    except KeyboardInterrupt:
        _save(out, model, opt, cfg, ds, revision, step, metrics, history)
        console.print(f"interrupted: saved step {step} to {out}; rerun the same command to resume")
        raise
    if not (out / "train_state.json").exists():
        _save(out, model, opt, cfg, ds, revision, step, metrics, history)
    return TrainResult(out, step, metrics, history)
