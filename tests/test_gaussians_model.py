"""GaussianModel files (safetensors + JSON, PLY), SH against gsplat, and renderer selection."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from facebench.errors import BackendUnavailable, CheckpointError, FacebenchError
from generators.gaussians.cameras import intrinsics, look_at
from generators.gaussians.model import GaussianModel
from generators.gaussians.rasterize import choose_renderer, rasterize
from generators.gaussians.sh import eval_sh

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(sh_degree=2, features=4, n=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = GaussianModel.from_points(
        torch.randn(n, 3, generator=g) * 0.3,
        torch.rand(n, 3, generator=g),
        scales=0.05,
        sh_degree=sh_degree,
        num_features=features,
    )
    if sh_degree:
        m.colors[:, 1:] = (
            torch.randn_like(
                m.colors[:, 1:],
            )
            * 0.1
        )
    if features:
        m.features.copy_(torch.randn(n, features, generator=g))
    return m


def test_save_load_round_trip(tmp_path):
    m = _model()
    m.feature_names = ["a", "b", "c", "d"]
    m.meta["note"] = "hello"
    path = m.save(tmp_path / "m.safetensors")
    back = GaussianModel.load(path)
    for k, v in m.params().items():
        assert torch.equal(v, getattr(back, k)), k
    assert back.sh_degree == 2 and back.feature_names == ["a", "b", "c", "d"] and back.meta["note"] == "hello"
    assert not list(tmp_path.glob("*.tmp*"))  # atomic_path temporaries: .NAME.XXXX.tmp.SUFFIX


def test_rgb_model_round_trip_and_render(tmp_path):
    m = _model(sh_degree=None, features=0)
    back = GaussianModel.load(m.save(tmp_path / "rgb.safetensors"))
    assert back.sh_degree is None and back.features is None
    view, K = look_at(torch.tensor([0.0, 0.0, 2.0]), torch.zeros(3)), intrinsics(24, 20, 60.0)
    a, b = m.render(view, K, 24, 20), back.render(view, K, 24, 20)
    assert torch.equal(a.rgb, b.rgb) and a.rgb.shape == (3, 20, 24)


def test_load_refuses_other_files(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError):
        GaussianModel.load(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        GaussianModel.load(tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError):
        GaussianModel.load(tmp_path / "missing.safetensors")


def test_ply_layout(tmp_path):
    m = _model(sh_degree=3, features=0, n=7)
    path = m.export_ply(tmp_path / "m.ply")
    raw = path.read_bytes()
    head, body = raw.split(b"end_header\n", 1)
    lines = head.decode().splitlines()
    assert lines[:3] == ["ply", "format binary_little_endian 1.0", "element vertex 7"]
    props = [ln.split()[-1] for ln in lines if ln.startswith("property")]
    expected = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    expected += [f"f_rest_{i}" for i in range(45)]
    expected += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert props == expected
    assert all(ln.startswith("property float ") for ln in lines if ln.startswith("property"))
    data = np.frombuffer(body, dtype="<f4").reshape(7, len(expected))
    np.testing.assert_allclose(data[:, :3], m.means.numpy(), rtol=1e-6)
    np.testing.assert_allclose(data[:, 6:9], m.colors[:, 0].numpy(), rtol=1e-6)
    # f_rest is channel-major: all red coefficients, then green, then blue (INRIA layout)
    np.testing.assert_allclose(data[:, 9 : 9 + 15], m.colors[:, 1:, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(data[:, 54], m.opacity_logits.numpy(), rtol=1e-6)
    np.testing.assert_allclose(data[:, 58:62], m.quats.numpy(), rtol=1e-6)


def test_sh_matches_gsplat():
    ref = pytest.importorskip("gsplat.cuda._torch_impl")
    g = torch.Generator().manual_seed(0)
    dirs = torch.randn(100, 3, generator=g).double()
    coeffs = torch.randn(100, 16, 3, generator=g).double()
    for degree in range(4):
        torch.testing.assert_close(
            eval_sh(degree, coeffs, dirs), ref._spherical_harmonics(degree, dirs, coeffs)
        )


def test_with_features_shares_geometry():
    m = _model(features=0)
    lab = m.with_features(19)
    assert lab.features.shape == (len(m), 19) and lab.means is m.means
    r = lab.render(
        look_at(torch.tensor([0.0, 0.0, 2.0]), torch.zeros(3)), intrinsics(16, 16, 60.0), 16, 16, what="both"
    )
    assert r.rgb.shape == (3, 16, 16) and r.features.shape == (19, 16, 16)


def test_forced_gsplat_without_cuda_is_a_user_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BackendUnavailable) as info:
        rasterize(
            torch.zeros(1, 3),
            torch.tensor([[1.0, 0, 0, 0]]),
            torch.ones(1, 3),
            torch.ones(1),
            torch.ones(1, 3),
            torch.eye(4),
            torch.eye(3),
            4,
            4,
            renderer="gsplat",
        )
    assert isinstance(info.value, FacebenchError) and "CUDA" in str(info.value)
    with pytest.raises(FacebenchError):
        choose_renderer(torch.device("cpu"), "vulkan")  # type: ignore[arg-type]


def _tiny_render(**kw):
    return rasterize(
        torch.zeros(1, 3), torch.tensor([[1.0, 0, 0, 0]]), torch.ones(1, 3), torch.ones(1), torch.ones(1, 3),
        torch.eye(4), torch.eye(3), 4, 4, **kw,
    )  # fmt: skip


def test_backend_choice_is_logged(caplog):
    """auto on a CPU: the C++ compositor when it builds (always, where a compiler exists), else torch."""
    from generators.gaussians.native_build import _compiler
    from generators.gaussians.native_composite import native_available

    with caplog.at_level(logging.DEBUG, logger="generators.gaussians.rasterize"):
        _tiny_render()
    expected = "cpp" if _compiler() is not None else "torch"
    assert native_available() == (expected == "cpp")
    assert any(f"renderer {expected} (asked auto)" in r.getMessage() for r in caplog.records)
    assert choose_renderer(torch.device("cpu"), "torch") == "torch"


def test_without_the_cpp_kernel_auto_falls_back_and_forcing_it_is_one_clear_error():
    """FACEBENCH_NATIVE=0 (or no compiler): auto renders with torch; renderer='cpp' names the reason."""
    code = (
        "import logging, torch\n"
        "from facebench.errors import BackendUnavailable\n"
        "from generators.gaussians.rasterize import rasterize, choose_renderer\n"
        "assert choose_renderer(torch.device('cpu')) == 'torch'\n"
        "args = (torch.zeros(1, 3), torch.tensor([[1.0, 0, 0, 0]]), torch.ones(1, 3), torch.ones(1),\n"
        "        torch.ones(1, 3), torch.eye(4), torch.eye(3), 4, 4)\n"
        "rasterize(*args)\n"
        "try:\n"
        "    rasterize(*args, renderer='cpp')\n"
        "except BackendUnavailable as e:\n"
        "    print('refused:', e)\n"
    )
    env = {**os.environ, "FACEBENCH_NATIVE": "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout and "FACEBENCH_NATIVE=0" in out.stdout


def test_cpu_path_never_touches_gsplat():
    """No import of gsplat (so no CUDA-extension build attempt) and no warnings on a CPU render."""
    code = (
        "import sys, warnings, torch\n"
        "warnings.simplefilter('error')\n"
        "from generators.gaussians.rasterize import rasterize\nfrom generators.gaussians.model import GaussianModel\n"
        "from generators.gaussians.cameras import look_at, intrinsics\n"
        "m = GaussianModel.from_points(torch.randn(200, 3) * 0.3, scales=0.05, num_features=3)\n"
        "r = m.render(look_at(torch.tensor([0., 0., 2.]), torch.zeros(3)), intrinsics(32, 32, 60.), 32, 32,\n"
        "             what='both')\n"
        "(r.rgb.sum() + r.features.sum()).backward() if r.rgb.requires_grad else None\n"
        "assert not [k for k in sys.modules if k.startswith('gsplat')], 'gsplat imported'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok" and out.stderr.strip() == ""


def test_ssim_is_one_for_equal_images_and_close_to_torchmetrics():
    from generators.gaussians.ssim import ssim

    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 48, 48, generator=g)
    b = (a + 0.1 * torch.randn(3, 48, 48, generator=g)).clamp(0, 1)
    assert abs(float(ssim(a, a)) - 1.0) < 1e-6
    tm = pytest.importorskip("torchmetrics.functional.image")
    ref = float(tm.structural_similarity_index_measure(b[None], a[None], data_range=1.0))
    assert abs(float(ssim(a, b)) - ref) < 0.01  # same window; only the border handling differs


def test_model_shape_errors_are_user_errors():
    from facebench.errors import InvalidConfig

    with pytest.raises(InvalidConfig):
        GaussianModel(
            torch.zeros(3, 3),
            torch.zeros(3, 3),
            torch.zeros(3, 4),
            torch.zeros(3),
            torch.zeros(2, 3),
            sh_degree=None,
        )
