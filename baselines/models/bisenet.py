"""BiSeNet as in the widely used face parser (zllrunning/face-parsing.PyTorch recipe).

Context path: ResNet-18 with attention refinement modules (ARMs) on the 1/16 (256→128) and
1/32 (512→128) features plus a global-average-pool context; the 1/8 ResNet feature stands in for
the spatial path; a feature fusion module (concat→256, SE-style attention); one main head and two
auxiliary heads on the context path, all upsampled bilinearly to the input size. ``width`` scales
every channel count, for CPU budgets (1.0 = the original).

One deliberate change: the 1×1 convs that act on globally pooled (1×1) features use a bias instead
of batch norm, since BN over one value per channel breaks at batch size 1 and is noisy at the small
batches CPU training affords.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.models.layers import ConvBNReLU, init_weights, resize_to, scaled, upsample_logits
from baselines.models.resnet import ResNet18


class AttentionRefinement(nn.Module):
    """3×3 conv, then reweight channels by a sigmoid of their global average."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout, 3)
        self.attention = nn.Sequential(nn.Conv2d(cout, cout, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        return feat * self.attention(feat.mean((2, 3), keepdim=True))


class FeatureFusion(nn.Module):
    """Concatenate spatial and context features, project, and add an SE-style reweighted copy."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.project = ConvBNReLU(cin, cout, 1)
        self.attention = nn.Sequential(
            nn.Conv2d(cout, cout // 4, 1), nn.ReLU(inplace=True), nn.Conv2d(cout // 4, cout, 1), nn.Sigmoid()
        )

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.project(torch.cat([spatial, context], dim=1))
        return feat + feat * self.attention(feat.mean((2, 3), keepdim=True))


class Head(nn.Sequential):
    """3×3 ConvBNReLU then a 1×1 classifier."""

    def __init__(self, cin: int, mid: int, num_classes: int):
        super().__init__(ConvBNReLU(cin, mid, 3), nn.Conv2d(mid, num_classes, 1))


class ContextPath(nn.Module):
    """ResNet-18 plus ARMs and global context; returns (1/8 feature, context at 1/8, context at 1/16)."""

    def __init__(self, width: float):
        super().__init__()
        self.backbone = ResNet18(width)
        _, c16, c32 = self.backbone.channels[1:]
        c = scaled(128, width)
        self.channels = c
        self.arm16 = AttentionRefinement(c16, c)
        self.arm32 = AttentionRefinement(c32, c)
        self.global_context = nn.Sequential(nn.Conv2d(c32, c, 1), nn.ReLU(inplace=True))
        self.refine32 = ConvBNReLU(c, c, 3)
        self.refine16 = ConvBNReLU(c, c, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f8, f16, f32 = self.backbone(x)
        context = self.global_context(f32.mean((2, 3), keepdim=True))
        up32 = self.refine32(resize_to(self.arm32(f32) + context, f16.shape[-2:]))
        up16 = self.refine16(resize_to(self.arm16(f16) + up32, f8.shape[-2:]))
        return f8, up16, up32


class BiSeNet(nn.Module):
    """Training mode returns [main, aux16, aux32] logits at input size; eval mode returns main only."""

    def __init__(self, num_classes: int = 19, width: float = 1.0):
        super().__init__()
        self.context_path = ContextPath(width)
        c8 = self.context_path.backbone.channels[1]
        c = self.context_path.channels
        fused = scaled(256, width)
        self.fusion = FeatureFusion(c8 + c, fused)
        self.head = Head(fused, fused, num_classes)
        self.aux16 = Head(c, scaled(64, width), num_classes)
        self.aux32 = Head(c, scaled(64, width), num_classes)
        init_weights(self)

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The ResNet trunk; the recipe gives every other parameter a 10× learning rate."""
        return list(self.context_path.backbone.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        size = x.shape[-2:]
        f8, cp8, cp16 = self.context_path(x)
        main = upsample_logits(self.head(self.fusion(f8, cp8)), size)
        if not self.training:
            return main
        return [main, upsample_logits(self.aux16(cp8), size), upsample_logits(self.aux32(cp16), size)]
