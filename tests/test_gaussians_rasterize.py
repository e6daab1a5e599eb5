"""Both CPU rasterizers ("torch" pairs, "cpp" tiles) against gsplat's pure-torch projection plus a
brute-force compositor written here."""

from __future__ import annotations

import pytest
import torch

from generators.gaussians.cameras import intrinsics, look_at
from generators.gaussians.native_build import _compiler
from generators.gaussians.native_composite import native_available
from generators.gaussians.rasterize import rasterize

gsplat_ref = pytest.importorskip("gsplat.cuda._torch_impl")

W, H = 40, 32  # not multiples of the C++ kernel's 16-pixel tiles: partial tiles are exercised


def _cpp_param():
    """The C++ renderer; skipped only where there is no compiler at all (a failed build fails the test)."""
    return pytest.param("cpp", marks=pytest.mark.skipif(_compiler() is None, reason="no C++ compiler"))


BACKENDS = ["torch", _cpp_param()]


@pytest.fixture(params=BACKENDS)
def renderer(request):
    if request.param == "cpp":
        assert native_available(), "a C++ compiler is present but the C++ compositor did not build"
    return request.param


pytestmark = pytest.mark.usefixtures("one_thread")


def reference(means, quats, scales, opacities, colors, viewmat, K, width, height, background=None):
    """gsplat's reference projection, then every pixel composites every Gaussian front to back."""
    covars, _ = gsplat_ref._quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    radii, means2d, depths, conics, _ = gsplat_ref._fully_fused_projection(
        means, covars, viewmat[None], K[None], width, height, eps2d=0.3, near_plane=0.01
    )
    radii, means2d, depths, conics = radii[0], means2d[0], depths[0], conics[0]
    order = [int(i) for i in torch.argsort(depths, stable=True) if (radii[i] > 0).all()]
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    px, py = xs.reshape(-1).to(means.dtype) + 0.5, ys.reshape(-1).to(means.dtype) + 0.5
    T = torch.ones(height * width, dtype=means.dtype)
    done = torch.zeros(height * width, dtype=torch.bool)
    feats = torch.cat([colors, depths[:, None]], 1)
    out = torch.zeros(height * width, feats.shape[1], dtype=means.dtype)
    for g in order:
        dx, dy = px - means2d[g, 0], py - means2d[g, 1]
        a, b, c = conics[g]
        sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
        alpha = torch.clamp_max(opacities[g] * torch.exp(-sigma), 0.999)
        valid = (sigma >= 0) & (alpha >= 1 / 255) & ~done
        next_t = T * (1 - alpha)
        stop = valid & (next_t <= 1e-4)
        done = done | stop
        use = valid & ~stop
        out = out + torch.where(use[:, None], (alpha * T)[:, None] * feats[g], torch.zeros_like(out))
        T = torch.where(use, next_t, T)
    image = out[:, :-1]
    if background is not None:
        image = image + T[:, None] * background
    depth = out[:, -1].reshape(height, width)
    return image.T.reshape(-1, height, width), (1 - T).reshape(height, width), depth


def make_scene(n, channels, seed, dtype):
    """Random Gaussians around the origin, with tiny, huge, near-plane-crossing and behind-camera ones."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * 0.6
    log_s = torch.randn(n, 3, generator=g) * 0.5 - 2.5
    log_s[: n // 10] = -9.0  # tiny: sub-pixel, the 0.3 px² low-pass dominates
    log_s[n // 10 : n // 10 + 3] = 0.3  # huge: cover the whole image
    # straddling the camera plane (camera at z=-3): some in front with big extent, some behind
    means[-6:-3, 2] = -3 + torch.tensor([0.05, 0.3, 0.6])
    log_s[-6:-3] = -0.5
    means[-3:, 2] = -3 - torch.tensor([0.2, 0.5, 1.0])
    quats = torch.randn(n, 4, generator=g)
    opac = torch.rand(n, generator=g) * 0.98 + 0.01
    opac[:5] = 1.0  # exercises the 0.999 clamp
    colors = torch.rand(n, channels, generator=g)
    viewmat = look_at(torch.tensor([0.2, -0.1, -3.0]), torch.zeros(3))
    K = intrinsics(W, H, 50.0)
    K[0, 2] += 1.3
    tensors = [means, quats, log_s.exp(), opac, colors, viewmat, K]
    return [t.to(dtype) for t in tensors]


def _grads(fn, params, weights):
    for p in params:
        p.grad = None
    img, alpha, depth = fn()
    loss = (img * weights[0]).sum() + (alpha * weights[1]).sum() + (depth * weights[2]).sum()
    loss.backward()
    return (img.detach(), alpha.detach(), depth.detach()), [p.grad.clone() for p in params]


def _assert_matches_reference(params, viewmat, K, w, h, weights, tol=1e-5, renderer="torch"):
    """Images and every parameter's gradient equal the gsplat-reference path's; returns its outputs."""
    ours, g_ours = _grads(lambda: rasterize(*params, viewmat, K, w, h, renderer=renderer), params, weights)
    ref, g_ref = _grads(lambda: reference(*params, viewmat, K, w, h), params, weights)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    for name, a, b in zip(("means", "quats", "scales", "opacities", "colors"), g_ours, g_ref, strict=True):
        assert (a - b).abs().max() / b.abs().max().clamp_min(1.0) <= tol, name
    return ref


@pytest.mark.parametrize("channels", [1, 3, 19])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_gsplat_reference(channels, dtype, renderer):
    means, quats, scales, opac, colors, viewmat, K = make_scene(120, channels, seed=channels, dtype=dtype)
    params = [t.requires_grad_() for t in (means, quats, scales, opac, colors)]
    g = torch.Generator().manual_seed(1)
    weights = [
        torch.randn(channels, H, W, generator=g).to(dtype),
        torch.randn(H, W, generator=g).to(dtype),
        torch.randn(H, W, generator=g).to(dtype) * 0.1,
    ]
    tol = 1e-5 if dtype == torch.float64 else 1e-4
    ref = _assert_matches_reference(params, viewmat, K, W, H, weights, tol, renderer)
    assert ref[1].max() > 0.5, "scene should be visible"


def test_cpp_opaque_overlapping_scene(renderer):
    """Opaque, overlapping Gaussians: many pixels stop, so the stopping rule decides most pairs."""
    means, quats, scales, opac, colors, viewmat, K = make_scene(300, 19, seed=4, dtype=torch.float64)
    params = [t.requires_grad_() for t in (means, quats, scales * 2.0, opac * 0.1 + 0.9, colors)]
    g = torch.Generator().manual_seed(6)
    weights = [torch.randn(s, generator=g).double() for s in ((19, H, W), (H, W), (H, W))]
    ref = _assert_matches_reference(params, viewmat, K, W, H, weights, renderer=renderer)
    assert (ref[1] > 1 - 1e-3).sum() > 100, "the scene should make many pixels stop"


@pytest.mark.parametrize("renderer_name", [_cpp_param()])
def test_cpp_results_do_not_depend_on_threads(renderer_name):
    """Tiles run on worker threads, but every sum has a fixed order: 1 and 3 threads give the same bits."""
    means, quats, scales, opac, colors, viewmat, K = make_scene(400, 19, seed=12, dtype=torch.float32)
    params = [t.requires_grad_() for t in (means, quats, scales * 1.5, opac, colors)]
    g = torch.Generator().manual_seed(3)
    weights = [torch.randn(s, generator=g) for s in ((19, 70, 90), (70, 90), (70, 90))]
    K = intrinsics(90, 70, 50.0)
    before = torch.get_num_threads()
    try:
        runs = []
        for threads in (1, 3):
            torch.set_num_threads(threads)
            runs.append(_grads(lambda: rasterize(*params, viewmat, K, 90, 70, renderer=renderer_name), params, weights))
    finally:
        torch.set_num_threads(before)
    (out1, g1), (out3, g3) = runs
    assert out1[1].max() > 0.5
    for a, b in zip(list(out1) + g1, list(out3) + g3, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("chunks,cap", [((), 0), ((0.45,), 0), ((0.1, 0.3, 0.5, 0.7, 0.9), 0), ((0.45,), 400)])
def test_depth_chunks_with_opaque_pixels(chunks, cap, monkeypatch):
    """Opaque, overlapping Gaussians: pixels stop early, so farther depth chunks get their rows trimmed."""
    from generators.gaussians import composite

    monkeypatch.setattr(composite, "_CHUNKS", chunks)
    monkeypatch.setattr(composite, "_CHUNK_PAIRS", cap)  # 400: splits this scene into many chunks
    means, quats, scales, opac, colors, viewmat, K = make_scene(300, 3, seed=4, dtype=torch.float64)
    scales = scales * 2.0
    opac = opac * 0.1 + 0.9
    params = [t.requires_grad_() for t in (means, quats, scales, opac, colors)]
    g = torch.Generator().manual_seed(6)
    weights = [torch.randn(s, generator=g).double() for s in ((3, H, W), (H, W), (H, W))]
    ref = _assert_matches_reference(params, viewmat, K, W, H, weights)
    assert (ref[1] > 1 - 1e-3).sum() > 100, "the scene should make many pixels stop"


def test_large_image_uses_wide_sort_keys(renderer):
    """More than 32768 pixels: pixel ids no longer fit the 16-bit sort key (torch); many tiles (cpp)."""
    means, quats, scales, opac, colors, viewmat, _ = make_scene(60, 2, seed=9, dtype=torch.float64)
    w, h = 220, 160
    K = intrinsics(w, h, 50.0).double()
    params = [t.requires_grad_() for t in (means, quats, scales, opac, colors)]
    weights = [torch.randn(s, generator=torch.Generator().manual_seed(8)).double() for s in ((2, h, w), (h, w), (h, w))]
    _assert_matches_reference(params, viewmat, K, w, h, weights, renderer=renderer)


def test_background_and_sh_against_reference(renderer):
    means, quats, scales, opac, _, viewmat, K = make_scene(80, 3, seed=7, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    sh = (torch.randn(80, 16, 3, generator=g) * 0.3).double()
    bg = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    params = [t.requires_grad_() for t in (means, quats, scales, opac, sh)]
    img, alpha, _ = rasterize(*params, viewmat, K, W, H, sh_degree=3, background=bg, renderer=renderer)
    campos = torch.linalg.inv(viewmat)[:3, 3]
    rgb = torch.clamp_min(gsplat_ref._spherical_harmonics(3, means - campos, sh) + 0.5, 0.0)
    ref_img, ref_alpha, _ = reference(means, quats, scales, opac, rgb, viewmat, K, W, H, background=bg)
    torch.testing.assert_close(img, ref_img, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(alpha, ref_alpha, rtol=1e-5, atol=1e-5)
    (ga,) = torch.autograd.grad(img.sum(), sh)
    (gb,) = torch.autograd.grad(ref_img.sum(), sh)
    torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-5)


def test_gradcheck_tiny_scene(renderer):
    g = torch.Generator().manual_seed(5)
    n = 6
    means = (torch.randn(n, 3, generator=g) * 0.3).double()
    quats = torch.randn(n, 4, generator=g).double()
    scales = (torch.rand(n, 3, generator=g) * 0.15 + 0.1).double()
    opac = (torch.rand(n, generator=g) * 0.5 + 0.3).double()
    colors = torch.rand(n, 2, generator=g).double()
    viewmat = look_at(torch.tensor([0.0, 0.0, -2.5]), torch.zeros(3)).double()
    K = intrinsics(12, 10, 50.0).double()

    proj = [torch.randn(s, generator=g).double() for s in ((2, 10, 12), (10, 12), (10, 12))]

    def fn(*p):  # random projections of every output: J^T v checks cost one backward each
        img, alpha, depth = rasterize(*p, viewmat, K, 12, 10, renderer=renderer)
        return torch.stack([(img * proj[0]).sum(), (alpha * proj[1]).sum(), (depth * proj[2]).sum()])

    inputs = tuple(t.requires_grad_() for t in (means, quats, scales, opac, colors))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_empty_and_offscreen(renderer):
    means = torch.tensor([[0.0, 0.0, -5.0], [100.0, 0.0, 3.0]], requires_grad=True)
    quats = torch.tensor([[1.0, 0, 0, 0]] * 2)
    scales = torch.full((2, 3), 0.1)
    img, alpha, depth = rasterize(
        means, quats, scales, torch.ones(2), torch.ones(2, 3), torch.eye(4), intrinsics(8, 8, 60.0), 8, 8,
        renderer=renderer,
    )
    assert img.abs().sum() == 0 and alpha.abs().sum() == 0
    img.sum().backward()
    assert torch.all(means.grad == 0)


@pytest.mark.slow
def test_compiled_kernels_match_eager():
    """torch.compile of the per-pair kernels (slow: compiles for tens of seconds)."""
    means, quats, scales, opac, colors, viewmat, K = make_scene(200, 19, seed=11, dtype=torch.float32)
    params = [t.requires_grad_() for t in (means, quats, scales, opac, colors)]
    g = torch.Generator().manual_seed(2)
    weights = [torch.randn(19, H, W, generator=g), torch.randn(H, W, generator=g), torch.zeros(H, W)]
    eager, g_eager = _grads(lambda: rasterize(*params, viewmat, K, W, H), params, weights)
    comp, g_comp = _grads(lambda: rasterize(*params, viewmat, K, W, H, use_compile=True), params, weights)
    for a, b in zip(eager + tuple(g_eager), comp + tuple(g_comp), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cpp_projection_matches_torch_projection(dtype):
    """The C++ projection's outputs (radii and culling included) and hand-written gradients equal autograd's."""
    if _compiler() is None:
        pytest.skip("no C++ compiler")
    from generators.gaussians.native_project import native_project
    from generators.gaussians.project import project

    means, quats, scales, _, _, viewmat, K = make_scene(500, 3, seed=21, dtype=dtype)
    outs, grads = [], []
    for fn in (project, native_project):
        params = [t.clone().requires_grad_() for t in (means, quats, scales)]
        p = fn(*params, viewmat, K, W, H)
        vis = (p.radii > 0).all(-1)  # culled ones may be inf/NaN in both; they never reach the compositor
        g = torch.Generator().manual_seed(2)
        loss = sum((x[vis] * torch.randn(x[vis].shape, generator=g, dtype=dtype)).sum()
                   for x in (p.means2d, p.conics, p.depths))  # fmt: skip
        loss.backward()
        outs.append((p.radii, p.means2d[vis], p.conics[vis], p.depths[vis]))
        grads.append([t.grad for t in params])
    assert torch.equal(outs[0][0], outs[1][0]) and 50 < int((outs[0][0] > 0).all(-1).sum()) < 500
    tol = 1e-9 if dtype == torch.float64 else 2e-5
    for a, b in zip(outs[0][1:] + tuple(grads[0]), outs[1][1:] + tuple(grads[1]), strict=True):
        assert (a - b).abs().max() / b.abs().max().clamp_min(1.0) <= tol
