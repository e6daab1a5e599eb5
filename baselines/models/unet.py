"""U-Net (Ronneberger et al. 2015): a symmetric encoder-decoder with skip connections.

A different family from BiSeNet: no pretrained-style trunk and full-resolution skips, which suits
thin structures (brows, lips). ``width`` 1.0 means a base of 32 channels (half the paper's 64) so
it trains on two CPU cores; upsampling is bilinear + conv instead of transposed convolutions.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.models.layers import ConvBNReLU, init_weights, resize_to, scaled, upsample_logits


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(ConvBNReLU(cin, cout, 3), ConvBNReLU(cout, cout, 3))


class UNet(nn.Module):
    """Four 2× downsamplings; training mode returns [logits], eval mode the logits tensor."""

    def __init__(self, num_classes: int = 19, width: float = 1.0, depth: int = 4):
        super().__init__()
        chans = [scaled(32 * 2**i, width) for i in range(depth + 1)]
        self.down = nn.ModuleList([DoubleConv(3, chans[0])])
        self.down.extend(DoubleConv(chans[i], chans[i + 1]) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(DoubleConv(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(depth)))
        self.classifier = nn.Conv2d(chans[0], num_classes, 1)
        init_weights(self)

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.down.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        size = x.shape[-2:]
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = block(torch.cat([resize_to(x, skip.shape[-2:]), skip], dim=1))
        logits = upsample_logits(self.classifier(x), size)
        return [logits] if self.training else logits
