"""The baseline architectures, by name.

Each model maps N×3×H×W normalised images to N×C×H×W logits (any H, W): in training mode as a
list [main, *auxiliary], in eval mode the main logits alone. ``backbone_parameters()`` names the
trunk, so training can give the rest the recipe's 10× learning rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from baselines.models.bisenet import BiSeNet
from baselines.models.bisenet_zll import ReferenceBiSeNet
from baselines.models.segformer import SegFormer
from baselines.models.unet import UNet
from facebench.errors import InvalidConfig


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model and which optimiser recipe trains it."""

    build: Callable[..., nn.Module]
    optimizer: str  # "sgd" (BiSeNet recipe) or "adamw" (transformers)
    lr: float
    weight_decay: float
    description: str
    channels_last: bool = True  # convnets run faster in NHWC on oneDNN; transformers may not


MODELS: dict[str, ModelSpec] = {
    "bisenet": ModelSpec(BiSeNet, "sgd", 1e-2, 5e-4, "BiSeNet, ResNet-18 context path (face-parsing.PyTorch recipe)"),
    "bisenet-zll": ModelSpec(ReferenceBiSeNet, "sgd", 1e-2, 5e-4,
                             "BiSeNet exactly as zllrunning/face-parsing.PyTorch (its checkpoints load unchanged)"),
    "unet": ModelSpec(UNet, "sgd", 1e-2, 5e-4, "U-Net, base 32·width channels, bilinear upsampling"),
    "segformer": ModelSpec(SegFormer, "adamw", 6e-4, 1e-2, "SegFormer MiT-B0 shape, all-MLP decoder"),
}


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise InvalidConfig(f"unknown model '{name}'", hint=f"choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def model_memory_format(name: str) -> torch.memory_format:
    """The layout ``name`` trains and predicts in (weights and inputs alike)."""
    return torch.channels_last if model_spec(name).channels_last else torch.contiguous_format


def build_model(name: str, num_classes: int = 19, width: float = 1.0, **kwargs) -> nn.Module:
    """Build an untrained model by registry name."""
    if not 0.05 <= width <= 4:
        raise InvalidConfig(f"width {width} out of range (0.05..4)")
    return model_spec(name).build(num_classes=num_classes, width=width, **kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "MODELS",
    "BiSeNet",
    "ModelSpec",
    "ReferenceBiSeNet",
    "SegFormer",
    "UNet",
    "build_model",
    "count_parameters",
    "model_memory_format",
    "model_spec",
]
