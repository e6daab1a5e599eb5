"""The ``zll:`` route: zllrunning/face-parsing.PyTorch's BiSeNet checkpoint (``79999_iter.pth``), used exactly.

Fixtures (tests/fixtures/):

- ``zll_state_dict_keys.json``: the reference checkpoint's key names and shapes, in order, as data. Listed from
  the reference code itself: ``BiSeNet(19).state_dict()`` of its ``model.py``/``resnet.py``.
- ``zll_reference_logits.npz``: what the PUBLIC REFERENCE CODE computes for pseudo-random weights. Made once,
  outside this repository, by ``/work/ref/zll-ref/make_fixture.py`` from github.com/zllrunning/face-parsing.PyTorch
  at commit d2e684cf1588b46145635e8fe7bcc29544e5537e (its HEAD, 2019-05-18):
  1. ``model.py`` and ``resnet.py`` copied verbatim (``git show HEAD:model.py``) into /work/ref/zll-ref/;
  2. ``torchvision`` (imported, unused) stubbed by an empty module in ``sys.modules``, and
     ``resnet.Resnet18.init_weight`` (an ImageNet download) replaced by a no-op before building the model;
  3. ``model.BiSeNet(n_classes=19)``; its state-dict names and shapes asserted equal to the JSON above;
  4. ``load_state_dict(pseudo_random_state(keys), strict=True)`` (the recipe below, same code), ``eval()``;
  5. input ``torch.randn(1, 3, 50, 38, generator=torch.Generator().manual_seed(1))`` (non-square and odd, so
     both nearest upsamplings in the context path have non-integer ratios); under ``no_grad``, the reference
     forward's three outputs;
  6. saved (float32, ``np.savez_compressed``): ``input``, ``main`` (1×19×50×38), ``aux16_every3`` and
     ``aux32_every3`` (the auxiliary heads at every third pixel, to keep the file small), ``weights_sha256``
     (fingerprint() of the weights, so a drifted recipe is caught), ``reference_commit``, ``torch_version``.
  Measured with torch 2.13 CPU: facebench's ReferenceBiSeNet equals the reference bit for bit (max |diff| 0.0)
  in contiguous memory format; the tolerance is 1e-4. Swapping any one of the reference's upsampling modes
  (bilinear align_corners=True at the heads, legacy nearest in the context path) moves the logits by 0.3-1.5.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.models import MODELS, build_model
from baselines.models.bisenet_zll import ReferenceBiSeNet
from baselines.predict import load_parser
from baselines.zll import convert_zll, load_zll_parser, read_zll_state
from facebench.errors import CheckpointError, InputNotFound, InvalidConfig
from facebench.imageio import read_mask
from facebench.labels import FACEBENCH_CLASSES

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KEYS: list[tuple[str, tuple[int, ...]]] = [(k, tuple(s)) for k, s in
                                           json.loads((FIXTURES / "zll_state_dict_keys.json").read_text())]


def pseudo_random_state(spec: list[tuple[str, tuple[int, ...]]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic weights over the SORTED key list that keep activations of order one (logit std ~1.6)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in sorted((n, tuple(s)) for n, s in spec):
        if name.endswith("num_batches_tracked"):
            state[name] = torch.zeros((), dtype=torch.long)
        elif name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(shape, generator=g)
        elif name.endswith("running_mean"):
            state[name] = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1 and name.endswith(".weight"):  # batch-norm scale
            state[name] = 0.75 + 0.5 * torch.rand(shape, generator=g)
        elif name.endswith(".bias"):
            state[name] = 0.1 * torch.randn(shape, generator=g)
        else:  # conv weights, scaled by 1/sqrt(fan_in) so activations stay of order one
            state[name] = torch.randn(shape, generator=g) * (1.0 / math.sqrt(math.prod(shape[1:])))
    return state


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def pth(tmp_path_factory) -> Path:
    """A reference-shaped checkpoint, saved the way the reference saves one (torch.save of a state dict)."""
    path = tmp_path_factory.mktemp("zll") / "79999_iter.pth"
    torch.save(pseudo_random_state(KEYS), path)
    return path


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (64, 48, 3), dtype=np.uint8), rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)]


def _one_line_error(path: Path, exc: type[Exception] = CheckpointError) -> str:
    with pytest.raises(exc) as info:
        read_zll_state(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    return message


def test_state_dict_is_the_reference_checkpoints():
    model = ReferenceBiSeNet()
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == KEYS
    assert len(KEYS) == 191 and MODELS["bisenet-zll"].build is ReferenceBiSeNet
    trunk = {id(p) for p in model.cp.resnet.parameters()}
    assert {id(p) for p in model.backbone_parameters()} == trunk and len(trunk) == 60


def test_reference_checkpoint_loads_strictly_through_the_zll_route(pth):
    expected = pseudo_random_state(KEYS)
    state = read_zll_state(pth)
    assert list(state) == sorted(expected) and all(torch.equal(state[k], expected[k]) for k in expected)
    parser = load_zll_parser(pth, batch_size=3)
    assert parser.name == "79999_iter" and parser.batch_size == 3 and parser.size == 512
    assert parser.labels.names == FACEBENCH_CLASSES
    cfg = parser.config
    assert cfg["architecture"] == "bisenet-zll" and cfg["width"] == 1.0 and cfg["source"] == f"zll:{pth}"
    assert cfg["normalisation"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert cfg["weights"] == {"sha256": hashlib.sha256(pth.read_bytes()).hexdigest(), "file": "79999_iter.pth"}
    own = parser.model.state_dict()
    assert all(torch.equal(own[k], expected[k]) for k in expected)


def test_legacy_format_dataparallel_prefix_and_missing_batch_counters_are_accepted(tmp_path):
    """79999_iter.pth dates from 2019 (PyTorch 1.0/1.1): torch.save's legacy, pre-zip format."""
    expected = pseudo_random_state(KEYS)
    torch.save(expected, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    legacy = read_zll_state(tmp_path / "legacy.pth")
    assert all(torch.equal(legacy[k], expected[k]) for k in expected)
    torch.save({f"module.{k}": v for k, v in expected.items()}, tmp_path / "dp.pth")
    assert set(read_zll_state(tmp_path / "dp.pth")) == set(expected)
    torch.save({k: v for k, v in expected.items() if not k.endswith("num_batches_tracked")}, tmp_path / "old.pth")
    assert set(read_zll_state(tmp_path / "old.pth")) == set(expected)


def test_files_that_do_not_fit_are_one_line_checkpoint_errors(tmp_path):
    state = pseudo_random_state(KEYS)
    renamed = dict(state)
    renamed["cp.arm16.bn_attention.weight"] = renamed.pop("cp.arm16.bn_atten.weight")
    torch.save(renamed, tmp_path / "renamed.pth")
    assert "missing key 'cp.arm16.bn_atten.weight'" in _one_line_error(tmp_path / "renamed.pth")

    extra = dict(state, **{"sp.conv1.conv.weight": torch.zeros(64, 3, 7, 7)})
    torch.save(extra, tmp_path / "extra.pth")
    assert "unexpected key 'sp.conv1.conv.weight'" in _one_line_error(tmp_path / "extra.pth")

    reshaped = dict(state, **{"ffm.conv1.weight": torch.zeros(32, 256, 1, 1)})
    torch.save(reshaped, tmp_path / "reshaped.pth")
    assert "'ffm.conv1.weight' has shape [32, 256, 1, 1]" in _one_line_error(tmp_path / "reshaped.pth")

    torch.save(list(state.values()), tmp_path / "list.pth")
    assert "holds a list, not a state dict" in _one_line_error(tmp_path / "list.pth")
    torch.save({"model": state}, tmp_path / "nested.pth")
    assert "entry 'model' holds a dict" in _one_line_error(tmp_path / "nested.pth")

    sentinel = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (sentinel.write_text, ("code ran",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"conv_out.conv_out.weight": Evil()}))
    buffer = io.BytesIO()
    torch.save({"conv_out.conv_out.weight": Evil()}, buffer)  # a full-pickle-only object in torch's zip format
    (tmp_path / "evil_zip.pth").write_bytes(buffer.getvalue())
    for name in ("evil.pth", "evil_zip.pth"):
        assert "cannot be read as a weights-only torch state dict" in _one_line_error(tmp_path / name)
    (tmp_path / "text.pth").write_text("not a checkpoint")
    _one_line_error(tmp_path / "text.pth")
    assert not sentinel.exists()

    _one_line_error(tmp_path / "absent.pth", InputNotFound)
    _one_line_error(tmp_path, CheckpointError)
    with pytest.raises(CheckpointError, match="renamed.pth: does not fit"):
        load_zll_parser(tmp_path / "renamed.pth")
    with pytest.raises(CheckpointError, match="renamed.pth: does not fit"):
        convert_zll(tmp_path / "renamed.pth", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_width_and_training_batch_limits():
    with pytest.raises(InvalidConfig, match="width 1.0"):
        build_model("bisenet-zll", width=0.5)
    model = build_model("bisenet-zll", num_classes=5).train()
    outs = model(torch.randn(2, 3, 64, 48))
    assert isinstance(outs, list) and [tuple(o.shape) for o in outs] == [(2, 5, 64, 48)] * 3
    with pytest.raises(InvalidConfig, match="batches of 2 or more"):
        model(torch.randn(1, 3, 64, 48))
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 50, 38)).shape == (1, 5, 50, 38)


def test_logits_equal_the_reference_implementation(one_thread):
    ref = np.load(FIXTURES / "zll_reference_logits.npz")
    state = pseudo_random_state(KEYS)
    assert fingerprint(state) == str(ref["weights_sha256"])  # the fixture was made from these very weights
    model = ReferenceBiSeNet()
    model.load_state_dict(state, strict=True)
    x = torch.from_numpy(ref["input"])
    assert x.shape == (1, 3, 50, 38)
    with torch.no_grad():
        main = model.eval()(x)
        heads = model.heads(x)
    assert torch.equal(main, heads[0])
    for got, key in ((main, "main"), (heads[1][..., ::3, ::3], "aux16_every3"), (heads[2][..., ::3, ::3],
                                                                                  "aux32_every3")):
        want = torch.from_numpy(ref[key])
        assert got.shape == want.shape and float((got - want).abs().max()) < 1e-4, key
    assert len(main.argmax(1).unique()) > 3  # the weights make a varied label map, not one class


def test_converted_checkpoint_predicts_exactly_like_the_zll_route(pth, tmp_path, one_thread):
    out = convert_zll(pth, tmp_path / "ckpt")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["converted_from"] == {"file": "79999_iter.pth", "sha256": hashlib.sha256(pth.read_bytes()).hexdigest()}
    assert cfg["architecture"] == "bisenet-zll" and cfg["weights"]["dtype"] == "float32"
    images = _images()
    a = load_zll_parser(pth).predict(images)
    b = load_parser(str(out)).predict(images)
    assert [m.shape for m in a] == [(64, 48), (40, 56)] and all(m.dtype == np.uint8 for m in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert len(np.unique(a[0])) > 1


def test_cli_convert_then_predict_equals_predict_zll(pth, tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(_images()[0]).save(photos / "face.png")
    cli = [sys.executable, "-m", "facebench"]

    def run(*args: str) -> None:
        r = subprocess.run([*cli, *args], capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]

    run("convert", f"zll:{pth}", "--out", str(tmp_path / "ckpt"))
    run("predict", str(tmp_path / "ckpt"), str(photos), "--out", str(tmp_path / "a"), "--threads", "1")
    run("predict", f"zll:{pth}", str(photos), "--out", str(tmp_path / "b"), "--threads", "1")
    a, b = read_mask(tmp_path / "a" / "face.png"), read_mask(tmp_path / "b" / "face.png")
    assert a.shape == (64, 48) and np.array_equal(a, b)
