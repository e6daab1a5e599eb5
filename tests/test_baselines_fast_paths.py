"""The speed paths of the baselines change no answers: matmul upsampling, channels_last, bf16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.models import build_model, model_memory_format
from baselines.models.layers import upsample_logits
from baselines.precision import bf16_supported, resolve_precision
from baselines.predict import load_parser
from facebench.errors import InvalidConfig
from facebench.pose import Pose
from generators.heads import camera_for_pose, render_view, sample_head

FRONTAL = Path(__file__).resolve().parents[1] / "baselines" / "weights" / "bisenet-frontal"


@pytest.mark.parametrize(("src", "dst"), [((32, 32), (256, 256)), ((16, 24), (192, 317)), ((5, 7), (3, 9))])
def test_matmul_upsampling_equals_interpolate_and_its_gradient(src, dst):
    x = torch.randn(2, 19, *src, dtype=torch.float64, requires_grad=True)
    ours = upsample_logits(x.float(), dst)
    theirs = F.interpolate(x.float(), size=dst, mode="bilinear", align_corners=False)
    assert ours.dtype == torch.float32 and ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, atol=5e-5, rtol=1e-5)
    g = torch.randn_like(ours)
    (ga,) = torch.autograd.grad(ours, x, g)
    (gb,) = torch.autograd.grad(theirs, x, g)
    torch.testing.assert_close(ga, gb, atol=5e-4, rtol=1e-4)


def test_upsampling_casts_bf16_logits_to_float32():
    x = torch.randn(1, 19, 8, 8).bfloat16()
    assert upsample_logits(x, (64, 64)).dtype == torch.float32
    assert upsample_logits(x, (8, 8)).dtype == torch.float32


def test_upsampling_first_used_in_inference_mode_still_trains():
    x = torch.randn(1, 19, 6, 6)
    with torch.inference_mode():
        upsample_logits(x, (23, 29))  # fills the matrix cache inside inference mode
    w = torch.randn(1, 19, 6, 6, requires_grad=True)
    upsample_logits(w, (23, 29)).sum().backward()
    assert w.grad is not None


def test_precision_resolution():
    assert resolve_precision("auto") == ("bf16" if bf16_supported() else "fp32")
    assert resolve_precision(None) == "fp32"
    assert resolve_precision("bf16") == "bf16"
    with pytest.raises(InvalidConfig, match="precision must be one of"):
        resolve_precision("fp16")


def test_channels_last_gives_the_same_logits():
    torch.manual_seed(0)
    model = build_model("bisenet", width=0.25).eval()
    x = torch.randn(2, 3, 96, 96)
    assert model_memory_format("bisenet") == torch.channels_last
    with torch.no_grad():
        a = model(x)
        b = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no bf16 kernels")
def test_bf16_prediction_agrees_with_fp32_on_the_shipped_frontal_parser():
    images = []
    for i, yaw in enumerate((0.0, 45.0, 90.0)):
        head = sample_head(1000 + i)
        images.append(render_view(head, camera_for_pose(Pose(yaw=yaw, pitch=0.0), size=192)).rgb)
    fp32 = load_parser(str(FRONTAL), precision="fp32").predict(images)
    bf16 = load_parser(str(FRONTAL), precision="bf16").predict(images)
    agree = np.mean([np.mean(a == b) for a, b in zip(fp32, bf16, strict=True)])
    assert agree >= 0.98, f"bf16 and fp32 masks agree on only {agree:.3%} of pixels"
