"""fit(): it learns a synthetic scene, is deterministic for a seed, resumes exactly, and fits labels alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facebench.errors import InvalidConfig
from generators.gaussians.cameras import intrinsics, orbit_viewmats
from generators.gaussians.densify_config import DensifyConfig
from generators.gaussians.fit import FitConfig, FitView, fit
from generators.gaussians.model import GaussianModel
from generators.gaussians.scenes import random_scene, render_scene

RES = 32


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def scene_views():
    """A ground-truth Gaussian 'head' seen by 10 cameras (every 5th is held out by the default config)."""
    scene = random_scene(800, "fitted", seed=3)
    K = intrinsics(RES, RES, 40.0)
    vms = orbit_viewmats(10, 3.2, seed=0)
    views = [
        FitView(img, vm, K, alpha=a)
        for vm, (img, a) in zip(vms, render_scene(scene, vms, K, RES, RES), strict=True)
    ]
    return scene, views


def _cfg(**kw):
    base = dict(
        steps=30,
        num_init=300,
        progress=False,
        holdout_every=5,
        densify=DensifyConfig(start=10, every=10, stop=25, reset_every=20, grad_threshold=1e-4),
    )
    base.update(kw)
    return FitConfig(**base)


def test_fit_learns_the_scene(scene_views):
    _, views = scene_views
    model = fit(views, _cfg(steps=150, eval_every=50, densify=None))
    hist = [h["heldout_psnr"] for h in model.meta["fit"]["history"]]
    assert model.meta["fit"]["num_eval_views"] == 2
    assert hist[-1] > hist[0] + 2.0, hist
    assert model.meta["fit"]["heldout_psnr"] > 18.0, hist


def test_fit_is_deterministic_and_seeded(scene_views):
    _, views = scene_views
    a, b = fit(views, _cfg()), fit(views, _cfg())
    assert len(a) == len(b)
    for k, v in a.params().items():
        assert torch.equal(v, getattr(b, k)), k
    c = fit(views, _cfg(seed=1))
    assert len(c) != len(a) or not torch.equal(c.means, a.means)


def test_fit_resumes_exactly_after_interrupt(scene_views, tmp_path):
    _, views = scene_views
    ref = fit(views, _cfg())

    def stop_at_17(step, stats):
        if step == 17:
            raise KeyboardInterrupt

    cfg = _cfg(checkpoint_dir=str(tmp_path), checkpoint_every=5)
    with pytest.raises(KeyboardInterrupt):
        fit(views, cfg, callback=stop_at_17)
    assert (tmp_path / "fit.safetensors").exists() and not list(tmp_path.glob("*.tmp*"))
    resumed = fit(views, cfg)
    assert resumed.meta["fit"]["steps"] == 30
    for k, v in ref.params().items():
        assert torch.equal(v, getattr(resumed, k)), k


def test_label_fit_on_frozen_geometry(scene_views):
    """Stage 2 of dual 3DGS: geometry fixed, per-Gaussian logits fitted with cross-entropy."""
    scene, views = scene_views
    geo = GaussianModel(
        scene["means"],
        scene["scales"].log(),
        scene["quats"],
        torch.logit(scene["opacities"]),
        scene["colors"],
        sh_degree=None,
    )
    truth_cls = (scene["means"][:, 0] > 0).long() + 2 * (scene["means"][:, 1] > 0).long()  # 4 classes
    truth = geo.with_features(4)
    truth.features.copy_(torch.nn.functional.one_hot(truth_cls, 4).float() * 10)
    label_views = []
    for v in views:
        r = truth.render(v.viewmat, v.K, RES, RES, what="features")
        labels = torch.where(
            r.alpha > 0.5, r.features.argmax(0), torch.full_like(r.alpha, 255, dtype=torch.long)
        )
        label_views.append(FitView(None, v.viewmat, v.K, labels=labels))
    seen = []
    model = fit(
        label_views,
        _cfg(steps=100, trainable=("features",), target="features", lr_features=0.1),
        init=geo.with_features(4),
        callback=lambda step, stats: seen.append(stats["loss"]),
    )
    assert torch.equal(model.means, geo.means) and torch.equal(model.opacity_logits, geo.opacity_logits)
    assert model.meta["fit"]["heldout_label_accuracy"] > 0.85
    assert seen[-1] < seen[0]


def test_custom_loss_and_view_layouts(scene_views):
    _, views = scene_views
    v = views[1]
    hwc = (v.image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    calls = []

    def loss_fn(render, view, step):
        calls.append(step)
        return (render.rgb - torch.as_tensor(view.image).permute(2, 0, 1).float() / 255).abs().mean()

    fit([FitView(hwc, v.viewmat, v.K)], _cfg(steps=3, densify=None, holdout_every=0), loss_fn=loss_fn)
    assert calls == [0, 1, 2]
    with pytest.raises(InvalidConfig):
        fit([FitView(torch.rand(8, 8, 8), v.viewmat, v.K)], _cfg(steps=1))
    with pytest.raises(InvalidConfig):
        fit(views, _cfg(trainable=("colour",)))
