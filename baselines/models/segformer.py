"""A small SegFormer (Xie et al. 2021, MiT-B0 shape): a hierarchical transformer with an all-MLP decoder.

The transformer family among the baselines. Four stages with overlapping patch embeddings
(strided convs, 7×7/4 then 3×3/2), efficient self-attention (keys and values spatially reduced by
8, 4, 2, 1), Mix-FFN (an MLP with a 3×3 depthwise conv instead of position embeddings, so any
input size works), and a decoder that projects every stage to one width, upsamples to 1/4, fuses
with a linear layer and classifies. ``width`` scales the embedding sizes (1.0 = B0: 32-64-160-256).
Attention is written out (not fused SDPA) so that ONNX export stays plain.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.models.layers import ConvBNReLU, init_weights, resize_to, scaled, upsample_logits


class OverlapPatchEmbed(nn.Module):
    """Strided conv whose kernel overlaps its neighbours, then LayerNorm over channels."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, kernel, stride, kernel // 2)
        self.norm = nn.LayerNorm(cout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class EfficientAttention(nn.Module):
    """Multi-head attention whose keys/values come from a ``reduction``× downsampled token map."""

    def __init__(self, dim: int, heads: int, reduction: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.reduction = reduction
        if reduction > 1:
            self.sr = nn.Conv2d(dim, dim, reduction, reduction)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        d = c // self.heads
        q = self.q(x).reshape(b, n, self.heads, d).transpose(1, 2)
        src = x
        if self.reduction > 1:
            src = self.sr(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
            src = self.norm(src)
        k, v = self.kv(src).reshape(b, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        attn = torch.softmax((q * d**-0.5) @ k.transpose(-2, -1), dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class MixFFN(nn.Module):
    """Linear -> 3×3 depthwise conv -> GELU -> linear: the conv leaks position, replacing embeddings."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dw = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, _ = x.shape
        x = self.fc1(x)
        x = self.dw(x.transpose(1, 2).reshape(b, -1, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, reduction: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientAttention(dim, heads, reduction)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.ffn(self.norm2(x), h, w)


class Stage(nn.Module):
    def __init__(self, cin: int, dim: int, depth: int, heads: int, reduction: int, kernel: int, stride: int):
        super().__init__()
        self.embed = OverlapPatchEmbed(cin, dim, kernel, stride)
        self.blocks = nn.ModuleList(Block(dim, heads, reduction) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, h, w = self.embed(x)
        for blk in self.blocks:
            x = blk(x, h, w)
        return self.norm(x).transpose(1, 2).reshape(x.shape[0], -1, h, w)


class SegFormer(nn.Module):
    """Training mode returns [logits], eval mode the logits tensor, both at input size."""

    def __init__(self, num_classes: int = 19, width: float = 1.0, depths: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        heads = (1, 2, 5, 8)
        dims = [max(h * 8, scaled(c, width)) // h * h for c, h in zip((32, 64, 160, 256), heads, strict=True)]
        reductions, kernels, strides = (8, 4, 2, 1), (7, 3, 3, 3), (4, 2, 2, 2)
        cins = [3, *dims[:-1]]
        self.stages = nn.ModuleList(
            Stage(cins[i], dims[i], depths[i], heads[i], reductions[i], kernels[i], strides[i]) for i in range(4)
        )
        dec = scaled(256, width)
        self.linear = nn.ModuleList(nn.Conv2d(d, dec, 1) for d in dims)
        self.fuse = ConvBNReLU(4 * dec, dec, 1)
        self.classifier = nn.Conv2d(dec, num_classes, 1)
        init_weights(self)

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.stages.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        size = x.shape[-2:]
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        quarter = feats[0].shape[-2:]
        fused = self.fuse(
            torch.cat([resize_to(proj(f), quarter) for proj, f in zip(self.linear, feats, strict=True)], 1)
        )
        logits = upsample_logits(self.classifier(fused), size)
        return [logits] if self.training else logits
