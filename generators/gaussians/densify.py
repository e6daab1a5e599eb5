"""Adaptive density control (clone, split, prune, opacity reset), after 3DGS (Kerbl et al. 2023, §5.2).

Kept apart from the renderer and the loop, like gsplat's strategies. We write our own rather than use
gsplat's ``DefaultStrategy`` because in gsplat 1.5.3 its opacity reset never fires (an operator-precedence
slip in the reset condition), and because the parameter surgery here also edits Adam's moments.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .densify_config import DensifyConfig
from .project import quat_to_rotmat


class Densifier:
    """Accumulates screen-space gradients and edits the parameters (and Adam state) in place."""

    def __init__(self, config: DensifyConfig, scene_scale: float, num: int, seed: int = 0):
        self.cfg = config
        self.seed = seed
        self.scene_scale = scene_scale
        self.grad_accum = torch.zeros(num)
        self.count = torch.zeros(num)

    def state(self) -> dict[str, Tensor]:
        return {"grad_accum": self.grad_accum, "count": self.count}

    def load_state(self, state: dict[str, Tensor]) -> None:
        self.grad_accum, self.count = state["grad_accum"].clone(), state["count"].clone()

    @torch.no_grad()
    def accumulate(self, means2d: Tensor, radii: Tensor, width: int, height: int) -> None:
        """Call after backward: adds each visible Gaussian's 2D mean gradient norm (in NDC units)."""
        if means2d.grad is None:
            return
        g = means2d.grad.detach().cpu() * torch.tensor([width / 2.0, height / 2.0])
        vis = (radii.cpu() > 0).all(-1)
        self.grad_accum[vis] += g[vis].norm(dim=-1)
        self.count[vis] += 1

    @torch.no_grad()
    def step(self, step: int, params: dict[str, Tensor], optimizer: torch.optim.Optimizer) -> dict[str, int]:
        """Call after ``optimizer.step()`` with the step just done; returns what changed."""
        cfg, out = self.cfg, {}
        if cfg.start <= step < cfg.stop and step > 0 and step % cfg.every == 0:
            out = self._grow_and_prune(step, params, optimizer)
        if cfg.reset_every and step > 0 and step % cfg.reset_every == 0 and step < cfg.stop:
            cap = torch.logit(torch.tensor(2.0 * cfg.prune_opacity)).item()
            ol = params["opacity_logits"]
            ol.clamp_(max=cap)
            st = optimizer.state.get(ol, {})
            for k in ("exp_avg", "exp_avg_sq"):
                if k in st:
                    st[k].zero_()
            out["reset"] = 1
        return out

    def _grow_and_prune(self, step, params, optimizer) -> dict[str, int]:
        cfg = self.cfg
        avg = self.grad_accum / self.count.clamp_min(1)
        big_grad = avg > cfg.grad_threshold
        max_scale = params["log_scales"].exp().max(-1).values.cpu()
        small = max_scale <= cfg.grow_scale3d * self.scene_scale
        room = max(0, cfg.max_gaussians - len(avg))
        clone = big_grad & small
        split = big_grad & ~small
        if int(clone.sum()) + int(split.sum()) > room:  # keep the strongest gradients within the cap
            order = torch.argsort(avg * big_grad, descending=True)
            allowed = torch.zeros_like(big_grad)
            allowed[order[: room // 2]] = True
            clone, split = clone & allowed, split & allowed
        n_clone, n_split = int(clone.sum()), int(split.sum())
        dev = params["means"].device
        if n_clone:
            idx = torch.nonzero(clone).squeeze(1).to(dev)
            _edit(
                params, optimizer, torch.arange(len(avg), device=dev), {k: v[idx] for k, v in params.items()}
            )
        if n_split:
            n_now = params["means"].shape[0]
            sel = torch.cat([split, torch.zeros(n_now - len(split), dtype=torch.bool)]).to(dev)
            idx = torch.nonzero(sel).squeeze(1)
            scales = params["log_scales"][idx].exp()
            rot = quat_to_rotmat(params["quats"][idx])
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
            noise = torch.randn(2, len(idx), 3, generator=gen).to(dev) * scales
            children = {k: v[idx].repeat(2, *([1] * (v.dim() - 1))) for k, v in params.items()}
            children["means"] = (params["means"][idx] + (rot @ noise[..., None]).squeeze(-1)).reshape(-1, 3)
            children["log_scales"] = torch.log(scales / cfg.split_factor).repeat(2, 1)
            _edit(params, optimizer, torch.nonzero(~sel).squeeze(1), children)
        # prune
        opac = torch.sigmoid(params["opacity_logits"])
        prune = opac < cfg.prune_opacity
        if cfg.reset_every and step > cfg.reset_every:
            prune |= params["log_scales"].exp().max(-1).values > cfg.prune_scale3d * self.scene_scale
        n_prune = int(prune.sum())
        if n_prune and n_prune < len(prune):
            _edit(params, optimizer, torch.nonzero(~prune).squeeze(1), {})
        n = params["means"].shape[0]
        self.grad_accum, self.count = torch.zeros(n), torch.zeros(n)
        return {"clone": n_clone, "split": n_split, "prune": n_prune, "total": n}


def _edit(
    params: dict[str, Tensor], optimizer: torch.optim.Optimizer, keep: Tensor, extra: dict[str, Tensor]
):
    """Replace each parameter p by ``cat(p[keep], extra[name])``; Adam moments follow (zeros for new rows)."""
    for group in optimizer.param_groups:
        old = group["params"][0]
        name = group["name"]
        new_rows = extra.get(name)
        data = old.data[keep] if new_rows is None else torch.cat([old.data[keep], new_rows.to(old)])
        new = torch.nn.Parameter(data, requires_grad=old.requires_grad)
        state = optimizer.state.pop(old, None)
        if state:
            for k in ("exp_avg", "exp_avg_sq"):
                v = state[k][keep]
                if new_rows is not None:
                    v = torch.cat([v, torch.zeros_like(new_rows, dtype=v.dtype)])
                state[k] = v
            optimizer.state[new] = state
        group["params"][0] = new
        params[name] = new
    for name, p in list(params.items()):  # frozen tensors (not in the optimizer) follow too
        if not any(g["name"] == name for g in optimizer.param_groups):
            rows = extra.get(name)
            params[name] = p[keep] if rows is None else torch.cat([p[keep], rows.to(p)])


def scene_scale_from_cameras(centers: Tensor) -> float:
    """Radius of the camera rig about its centroid (×1.1), the yardstick for 3D size thresholds."""
    c = centers.mean(0)
    return float((centers - c).norm(dim=-1).max()) * 1.1 if len(centers) > 1 else 1.0
