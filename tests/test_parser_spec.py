"""One model spec wherever a parser is accepted: routes, the onnx: route, and one-line refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image

from baselines.checkpoint import save_checkpoint
from baselines.models import build_model
from baselines.parser_spec import parse_spec
from baselines.transforms import IMAGENET_MEAN, IMAGENET_STD
from facebench.imageio import read_mask
from facebench.labels import FACEBENCH

pytest.importorskip("onnxruntime")


def _checkpoint(folder: Path) -> Path:
    """A tiny BiSeNet with perturbed batch norms (so they matter), ImageNet normalisation, 64² input."""
    torch.manual_seed(0)
    model = build_model("bisenet", width=0.25).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    config = {"architecture": "bisenet", "width": 0.25, "input_size": 64,
              "labels": {"name": "facebench", "names": list(FACEBENCH.names)},
              "normalisation": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}}
    save_checkpoint(folder, model, config)
    return folder


def _foreign_onnx(ckpt: Path, out: Path) -> Path:
    """The same network exported the way other projects do: normalised input, no facebench metadata."""
    from baselines.predict import load_model

    model, _ = load_model(ckpt)
    torch.onnx.export(model, (torch.zeros(1, 3, 64, 64),), str(out), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17, dynamo=False)
    return out


def _photos(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name, (h, w) in {"a.png": (64, 64), "b.jpg": (50, 80)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _masks(folder: Path) -> dict[str, np.ndarray]:
    return {p.stem: read_mask(p) for p in sorted(folder.glob("*.png"))}


def test_specs_name_their_route(tmp_path):
    assert parse_spec("zll:79999_iter.pth").route == "zll"
    assert parse_spec("hf:org/name@abc").target == "org/name@abc"
    assert parse_spec("onnx:m.onnx").route == "onnx"
    ckpt = _checkpoint(tmp_path / "ck")
    assert parse_spec(str(ckpt)).route == "facebench"
    hf = tmp_path / "hfmodel"
    hf.mkdir()
    (hf / "config.json").write_text('{"model_type": "segformer", "id2label": {"0": "background"}}')
    assert parse_spec(str(hf)).route == "hf"


def test_onnx_routes_give_the_checkpoints_masks(tmp_path):
    ckpt = _checkpoint(tmp_path / "ck")
    photos = _photos(tmp_path / "photos")
    ours = tmp_path / "ours.onnx"
    assert run_cli("export-onnx", str(ckpt), "--out", str(ours)).returncode == 0
    foreign = _foreign_onnx(ckpt, tmp_path / "foreign.onnx")

    want = run_cli("predict", str(ckpt), str(photos), "--out", str(tmp_path / "want"))
    assert want.returncode == 0, want.stderr[-2000:]
    r = run_cli("predict", f"onnx:{ours}", str(photos), "--out", str(tmp_path / "own"))  # metadata: no --labels
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli("predict", f"onnx:{foreign}", str(photos), "--out", str(tmp_path / "foreign"), "--labels", "bisenet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ImageNet-normalised RGB at 64×64" in r.stderr  # the assumption is said, not silent
    for route in ("own", "foreign"):
        got, ref = _masks(tmp_path / route), _masks(tmp_path / "want")
        assert got.keys() == ref.keys() == {"a", "b"}
        for k in ref:
            assert got[k].shape == ref[k].shape and (got[k] == ref[k]).mean() > 0.999, (route, k)


def test_test_time_flip_is_mirror_equivariant_and_travels_into_onnx(tmp_path):
    """A checkpoint with ``test_time_flip``: the parse of a mirrored image is the mirrored parse with l_/r_
    swapped (exactly, in the logits), it differs from the plain model's, and its ONNX export agrees."""
    import json

    from baselines.predict import export_onnx, load_model, load_parser

    ckpt = _checkpoint(tmp_path / "ck")
    cfg = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**cfg, "test_time_flip": True}))
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    swap = torch.from_numpy(FACEBENCH.flip_lut[: FACEBENCH.num_classes].astype(np.int64))
    flipped_model, _ = load_model(ckpt)
    with torch.no_grad():
        a, b = flipped_model(x), flipped_model(x.flip(-1))
    torch.testing.assert_close(b, a.flip(-1).index_select(1, swap), atol=1e-5, rtol=1e-5)
    (ckpt / "config.json").write_text(json.dumps(cfg))
    plain, _ = load_model(ckpt)
    with torch.no_grad():
        assert (plain(x) - a).abs().max() > 1e-3  # the flip changes something
    (ckpt / "config.json").write_text(json.dumps({**cfg, "test_time_flip": True}))
    report = export_onnx(str(ckpt), tmp_path / "flip.onnx")
    assert report["max_abs_diff"] < 1e-3, report
    parser = load_parser(str(ckpt))
    img = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
    m, mm = parser.predict([img, img[:, ::-1].copy()])
    assert (FACEBENCH.flip_lut[mm][:, ::-1] == m).mean() > 0.999


def test_onnx_without_metadata_needs_its_order_and_the_order_is_used(tmp_path, small_dataset):
    ckpt = _checkpoint(tmp_path / "ck")
    foreign = _foreign_onnx(ckpt, tmp_path / "foreign.onnx")
    r = run_cli("evaluate", f"onnx:{foreign}", "--data", str(small_dataset), "--out", str(tmp_path / "r0"))
    assert r.returncode == 2 and "--labels" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    import json

    scores = {}
    for name, spec, extra in (("ckpt", str(ckpt), ()), ("onnx", f"onnx:{foreign}", ("--labels", "bisenet")),
                              ("celeb", f"onnx:{foreign}", ("--labels", "celebamask-hq"))):
        r = run_cli("evaluate", spec, "--data", str(small_dataset), "--out", str(tmp_path / name), "--n-boot", "0",
                    *extra)
        assert r.returncode == 0, r.stderr[-2000:]
        scores[name] = json.loads((tmp_path / name / "metrics.json").read_text())["overall"]
    assert abs(scores["onnx"]["pixel_acc"] - scores["ckpt"]["pixel_acc"]) < 1e-3
    assert scores["celeb"]["pixel_acc"] != scores["onnx"]["pixel_acc"]  # the declared order is what is scored


def test_unusable_specs_are_one_line_before_any_work(tmp_path, small_dataset):
    pth = tmp_path / "79999_iter.pth"
    pth.write_bytes(b"\x80\x04K\x01.")
    ckpt = _checkpoint(tmp_path / "ck")
    cases = [
        (("evaluate", str(pth), "--data", str(small_dataset)), "zll:"),
        (("predict", str(pth), str(tmp_path), "--out", str(tmp_path / "m")), "zll:"),
        (("predict", f"onnx:{tmp_path / 'missing.onnx'}", str(tmp_path), "--out", str(tmp_path / "m")),
         "does not exist"),
        (("evaluate", str(ckpt), "--data", str(small_dataset), "--labels", "lapa"), "declares its own"),
        (("generate", "--parser", f"onnx:{pth}", "--out", str(tmp_path / "o")), "onnxruntime cannot open"),
        (("reproduce", "--parser", f"onnx:{pth}", "--out", str(tmp_path / "rep")), "cannot be fine-tuned"),
        (("convert", f"onnx:{pth}", "--out", str(tmp_path / "c")), "convert reads zll:"),
    ]
    for args, words in cases:
        r = run_cli(*args)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and words in lines[0], (args, r.stderr[-1500:])
    for made in ("o", ".o.work", "rep", "c", "m"):
        assert not (tmp_path / made).exists(), made


def test_submit_refuses_a_pickle_and_says_how_to_convert(tmp_path):
    pth = tmp_path / "79999_iter.pth"
    pth.write_bytes(b"\x80\x04K\x01.")
    for spec in (str(pth), f"zll:{pth}"):
        r = run_cli("submit", spec, "--name", "x", "--contact", "x@y", "--training-data", "t", "--manifest",
                    str(tmp_path / "manifest.json"), "--requests", str(tmp_path / "req"))
        assert r.returncode == 2 and "facebench convert zll:" in r.stderr, r.stderr[-1500:]
