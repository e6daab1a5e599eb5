"""How close a new view's rendered RGB is to the true image of the same camera (synthetic subjects only).

Measured over the true head (its label map's foreground), since the dataset composes the render over a
fresh backdrop: PSNR from the mean squared error there, SSIM (3DGS's window) averaged there.
"""

from __future__ import annotations

import numpy as np
import torch

from generators.gaussians.ssim import ssim_map


def head_psnr_ssim(rendered: np.ndarray, truth: np.ndarray, head: np.ndarray) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``rendered`` against ``truth`` (H×W×3 uint8) over the boolean ``head`` mask;
    both are compared over black outside it, so the backdrop plays no part. NaN when ``head`` is empty."""
    if not head.any():
        return float("nan"), float("nan")
    m = head[..., None].astype(np.float32)
    a = rendered.astype(np.float32) / 255 * m
    b = truth.astype(np.float32) / 255 * m
    mse = float(((a - b) ** 2).sum() / (3 * head.sum()))
    psnr = 100.0 if mse <= 1e-10 else float(10 * np.log10(1.0 / mse))  # capped: an exact copy, in strict JSON
    ta, tb = (torch.from_numpy(x).permute(2, 0, 1) for x in (a, b))
    s = ssim_map(ta, tb)[0].mean(0).numpy()
    return psnr, float(s[head].mean())
