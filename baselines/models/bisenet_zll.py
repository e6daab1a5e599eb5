"""BiSeNet exactly as zllrunning/face-parsing.PyTorch builds it, so its published ``79999_iter.pth`` loads unchanged.

facebench's own ``bisenet`` is the same design with small changes for CPU training (biased 1×1 convs instead of
batch norm on pooled features, bilinear context upsampling, its own module names). This sibling keeps every
detail of the reference (read from its ``model.py`` and ``resnet.py``), because a published checkpoint only
means what it meant if the arithmetic around it is the same:

- module names give the reference's state-dict keys (``cp.resnet.layer1.0.bn1.weight``, ``cp.arm16.bn_atten``,
  ``ffm.convblk.conv``, ``conv_out.conv_out``, ...), so a strict load needs no renaming;
- the attention refinement modules and the global context branch batch-normalise their globally pooled 1×1
  features (``bn_atten``, ``cp.conv_avg.bn``): training therefore needs batches of two or more images;
- the context path upsamples with ``nearest`` (the legacy floor rule, not ``nearest-exact``); the global
  context is "upsampled" from 1×1, which is a broadcast;
- the feature fusion attention has no batch norm and no biases; the heads' 1×1 classifiers have no bias;
- all three heads are resized to the input with bilinear ``align_corners=True``;
- the 1/8 ResNet feature stands in for the spatial path (the reference deletes its SpatialPath).

The reference's preprocessing (``test.py``): resize to 512×512, ImageNet mean/std; see ``baselines.zll``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.models.layers import init_weights
from facebench.errors import InvalidConfig


def _global_pool(x: torch.Tensor) -> torch.Tensor:
    """N×C×1×1 mean, as the reference computes it (an average pool whose kernel is the whole map).

    That kernel is bit-for-bit the reference's; ``x.mean`` differs by ~1e-6. An ONNX export cannot take a
    kernel computed from the input's shape, so there the same mean is a global average pool.
    """
    if torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool2d(x, 1)
    return F.avg_pool2d(x, tuple(x.shape[-2:]))


class ConvBN(nn.Module):
    """conv (no bias) -> batch norm -> ReLU; attributes named ``conv``/``bn`` as in the reference."""

    def __init__(self, cin: int, cout: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class Block(nn.Module):
    """ResNet basic block; the projection shortcut is ``downsample`` (conv, BN), as in torchvision's ResNet."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


class ResNet18Trunk(nn.Module):
    """ResNet-18 without its classifier; returns the 1/8, 1/16 and 1/32 features (128, 256, 512 channels)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Block(64, 64), Block(64, 64))
        self.layer2 = nn.Sequential(Block(64, 128, 2), Block(128, 128))
        self.layer3 = nn.Sequential(Block(128, 256, 2), Block(256, 256))
        self.layer4 = nn.Sequential(Block(256, 512, 2), Block(512, 512))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
        f8 = self.layer2(x)
        f16 = self.layer3(f8)
        return f8, f16, self.layer4(f16)


class AttentionRefinement(nn.Module):
    """3×3 ConvBN, then channels reweighted by sigmoid(BN(1×1 conv(global mean)))."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBN(cin, cout, 3)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(_global_pool(feat))))


class ContextPath(nn.Module):
    """Returns (1/8 ResNet feature, context at 1/8, context at 1/16), each 128 channels."""

    def __init__(self):
        super().__init__()
        self.resnet = ResNet18Trunk()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBN(128, 128, 3)
        self.conv_head16 = ConvBN(128, 128, 3)
        self.conv_avg = ConvBN(512, 128, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f8, f16, f32 = self.resnet(x)
        context = self.conv_avg(_global_pool(f32))  # N×128×1×1; nearest "upsampling" of it is this broadcast
        up32 = self.conv_head32(F.interpolate(self.arm32(f32) + context, size=f16.shape[-2:], mode="nearest"))
        up16 = self.conv_head16(F.interpolate(self.arm16(f16) + up32, size=f8.shape[-2:], mode="nearest"))
        return f8, up16, up32


class FeatureFusion(nn.Module):
    """Concatenate, 1×1 ConvBN, and add a copy reweighted by sigmoid(conv2(relu(conv1(global mean))))."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convblk = ConvBN(cin, cout, 1)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(_global_pool(feat)))))
        return feat * atten + feat


class Head(nn.Module):
    """3×3 ConvBN then a bias-free 1×1 classifier (the reference's BiSeNetOutput)."""

    def __init__(self, cin: int, mid: int, num_classes: int):
        super().__init__()
        self.conv = ConvBN(cin, mid, 3)
        self.conv_out = nn.Conv2d(mid, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class ReferenceBiSeNet(nn.Module):
    """Training mode returns [main, aux16, aux32] logits at input size; eval mode returns main only.

    Only width 1.0 exists: the point of this class is the reference's exact tensors.
    """

    def __init__(self, num_classes: int = 19, width: float = 1.0, **kwargs):
        super().__init__()
        if width != 1.0:
            raise InvalidConfig(f"bisenet-zll has the reference's channels only (width 1.0), not width {width}",
                                hint="use the 'bisenet' architecture for other widths")
        if kwargs:
            raise InvalidConfig(f"bisenet-zll takes no options ({', '.join(sorted(kwargs))} given)")
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = Head(256, 256, num_classes)
        self.conv_out16 = Head(128, 64, num_classes)
        self.conv_out32 = Head(128, 64, num_classes)
        init_weights(self)  # from scratch only; a published checkpoint overwrites every tensor

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The ResNet trunk; the recipe gives every other parameter a 10× learning rate."""
        return list(self.cp.resnet.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.training:
            return self.heads(x)
        f8, cp8, _ = self.cp(x)
        return _to_input(self.conv_out(self.ffm(f8, cp8)), tuple(x.shape[-2:]))

    def heads(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[main, aux16, aux32] N×C×H×W logits in either mode: the reference's own forward (it returns all three)."""
        if self.training and x.shape[0] < 2:
            raise InvalidConfig("bisenet-zll trains on batches of 2 or more images: its attention batch norms see "
                                "one value per channel per image")
        size = tuple(x.shape[-2:])
        f8, cp8, cp16 = self.cp(x)
        main = self.conv_out(self.ffm(f8, cp8))
        return [_to_input(main, size), _to_input(self.conv_out16(cp8), size), _to_input(self.conv_out32(cp16), size)]


def _to_input(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, align_corners=True (the reference's choice; facebench's own models use False)."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)
