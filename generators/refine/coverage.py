"""What the input views saw: a per-Gaussian "seen" record, and per pixel of a new view whether its surface
was seen by any input camera. A new view must not show (as labelled data) what no input camera saw: the
inside of a scan's shell, the back of a head captured from the front.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from facebench.pose import split_frame
from generators.gaussians.model import GaussianModel
from generators.refine.inputs import SubjectView

# A Gaussian is seen when its centre is in front of an input camera, inside its image, on a covered pixel,
# and no deeper than the rendered surface there plus this much (metres of head: about a Gaussian's size).
SURFACE_TOLERANCE_M = 0.015


def seen_gaussians(model: GaussianModel, views: list[SubjectView], head_to_world: np.ndarray) -> torch.Tensor:
    """[N] bool: Gaussians whose centre some input view saw on the rendered surface (a depth test)."""
    means = model.means.detach()
    tol = SURFACE_TOLERANCE_M * split_frame(head_to_world)[1]
    seen = torch.zeros(len(means), dtype=torch.bool)
    with torch.no_grad():
        for v in views:
            cam = v.camera
            vm = torch.from_numpy(cam.world_to_camera).to(means)
            K = torch.from_numpy(cam.K).to(means)
            r = model.render(vm.float(), K.float(), cam.width, cam.height, what="rgb")
            p = means @ vm[:3, :3].T + vm[:3, 3]
            z = p[:, 2]
            uv = (p @ K.T)[:, :2] / z.clamp_min(1e-9)[:, None]
            u, w = uv[:, 0].floor().long(), uv[:, 1].floor().long()
            inside = (z > 0) & (u >= 0) & (u < cam.width) & (w >= 0) & (w < cam.height)
            uu, ww = u.clamp(0, cam.width - 1), w.clamp(0, cam.height - 1)
            alpha = r.alpha[ww, uu]
            surface = r.depth[ww, uu] / alpha.clamp_min(1e-6)
            seen |= inside & (alpha > 0.5) & (z <= surface + tol)
    return seen


def unseen_pixels(model: GaussianModel, seen: torch.Tensor, world_to_camera: np.ndarray, K: np.ndarray,
                  width: int, height: int) -> np.ndarray:
    """H×W bool: pixels whose rendered surface is mostly (by blending weight) made of unseen Gaussians."""
    probe = dataclasses.replace(model.detach(), features=seen.to(model.means.dtype)[:, None])
    with torch.no_grad():
        r = probe.render(torch.from_numpy(world_to_camera).float(), torch.from_numpy(K).float(), width, height,
                         what="features")
    frac = (r.features[0] / r.alpha.clamp_min(1e-6)).numpy()
    return (frac < 0.5) & (r.alpha.numpy() > 0.05)
