"""Optimiser and learning-rate schedule of the BiSeNet face-parsing recipe (AdamW for transformers).

Parameters are split four ways: trunk vs the rest (the rest gets ``head_lr_mult``, 10× in the
recipe) and weights vs biases/norms (which get no weight decay).
"""

from __future__ import annotations

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float, head_lr_mult: float) -> list[dict]:
    trunk = {id(p) for p in model.backbone_parameters()}  # type: ignore[operator]
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in trunk, p.ndim >= 2), []).append(p)
    out = []
    for (is_trunk, decays), params in sorted(groups.items(), key=lambda kv: (not kv[0][0], not kv[0][1])):
        out.append(
            {
                "params": params,
                "weight_decay": weight_decay if decays else 0.0,
                "lr_mult": 1.0 if is_trunk else head_lr_mult,
            }
        )
    return out


def make_optimizer(
    model: nn.Module,
    kind: str,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    head_lr_mult: float = 10.0,
) -> torch.optim.Optimizer:
    groups = param_groups(model, weight_decay, head_lr_mult)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999))
    raise ValueError(f"unknown optimiser {kind}")


def learning_rate(step: int, base: float, total: int, warmup: int, power: float = 0.9) -> float:
    """Linear warm-up from base/100, then poly decay (1 - progress)^power to 0 at ``total``."""
    if step < warmup:
        return base * (0.01 + 0.99 * step / warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return base * max(0.0, 1.0 - progress) ** power


def set_learning_rate(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_mult", 1.0)
