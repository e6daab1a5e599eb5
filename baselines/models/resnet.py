"""ResNet-18, written here because torchvision is not a dependency (and no pretrained weights exist)."""

from __future__ import annotations

import torch
from torch import nn

from baselines.models.layers import ConvBNReLU, scaled


class BasicBlock(nn.Module):
    """Two 3×3 convs with an identity (or 1×1 projected) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = ConvBNReLU(cin, cout, 3, stride)
        self.conv2 = ConvBNReLU(cout, cout, 3, relu=False)
        self.shortcut = (
            ConvBNReLU(cin, cout, 1, stride, relu=False) if stride != 1 or cin != cout else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 trunk returning the 1/8, 1/16 and 1/32 features (64·w·{2, 4, 8} channels)."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        c = [scaled(n, width) for n in (64, 128, 256, 512)]
        self.channels = tuple(c)
        self.stem = nn.Sequential(ConvBNReLU(3, c[0], 7, 2), nn.MaxPool2d(3, 2, 1))
        self.layer1 = nn.Sequential(BasicBlock(c[0], c[0]), BasicBlock(c[0], c[0]))
        self.layer2 = nn.Sequential(BasicBlock(c[0], c[1], 2), BasicBlock(c[1], c[1]))
        self.layer3 = nn.Sequential(BasicBlock(c[1], c[2], 2), BasicBlock(c[2], c[2]))
        self.layer4 = nn.Sequential(BasicBlock(c[2], c[3], 2), BasicBlock(c[3], c[3]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.layer1(self.stem(x))
        f8 = self.layer2(x)
        f16 = self.layer3(f8)
        f32 = self.layer4(f16)
        return f8, f16, f32
