"""Multi-scale inference (``"test_time_scales"`` in a checkpoint's config): what it computes, that it finds the
small parts the shipped parser misses at its crop side, that fine-tunes inherit it, and one-line refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli
from test_baselines import tiny_config, toy_dataset  # noqa: F401 (a fixture)

from baselines.checkpoint import save_checkpoint
from baselines.models import build_model
from baselines.predict import ScaleAveraged, export_onnx, load_model, load_parser
from baselines.train import train
from baselines.transforms import IMAGENET_MEAN, IMAGENET_STD
from facebench.errors import CheckpointError, InvalidConfig
from facebench.labels import FACEBENCH
from facebench.metrics import confusion_matrix, iou_f1

SHIPPED = Path(__file__).resolve().parents[1] / "baselines" / "weights" / "bisenet-frontal"


def _checkpoint(folder: Path, **extra) -> Path:
    torch.manual_seed(0)
    model = build_model("bisenet", width=0.25).eval()
    config = {"architecture": "bisenet", "width": 0.25, "input_size": 64,
              "labels": {"name": "facebench", "names": list(FACEBENCH.names)},
              "normalisation": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}, **extra}
    save_checkpoint(folder, model, config)
    return folder


def test_scale_averaged_is_the_mean_of_the_zoomed_probabilities_and_travels_into_onnx(tmp_path):
    ckpt = _checkpoint(tmp_path / "ck", test_time_scales=[1.0, 1.75])
    model, _ = load_model(ckpt)
    assert isinstance(model, ScaleAveraged) and model.scales == (1.0, 1.75)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        plain = model.model(x)
        zoomed = model.model(F.interpolate(x, size=(112, 112), mode="bilinear", align_corners=False))
        zoomed = F.interpolate(zoomed, size=(64, 64), mode="bilinear", align_corners=False)
        expected = 0.5 * (plain.softmax(1) + zoomed.softmax(1))
        got = model(x)
    torch.testing.assert_close(got.exp(), expected, atol=1e-5, rtol=1e-4)  # log-probabilities out
    assert (got.argmax(1) != plain.argmax(1)).any()  # the zoom changes some pixels' classes
    report = export_onnx(str(ckpt), tmp_path / "ms.onnx")
    assert report.get("onnxruntime") is False or report["max_abs_diff"] < 1e-3, report
    plain_model, _ = load_model(_checkpoint(tmp_path / "plain"))
    assert not isinstance(plain_model, ScaleAveraged)  # no key: the network alone, as before


@pytest.fixture(scope="module")
def frontal_heads(tmp_path_factory):
    """Two synthetic subjects, six near-frontal 256² views each, in the default (head-filling) framing."""
    from facebench.captures import read_capture
    from generators.heads.capture import write_captures
    from generators.heads.rig import RigConfig

    rig = RigConfig(views=6, yaw_range=(-25.0, 25.0), pitch_range=(-10.0, 10.0), mode="spiral")
    folders = write_captures(tmp_path_factory.mktemp("frontal"), subjects=2, rig=rig, size=256, seed=21,
                             supersample=1)
    views = [v for f in folders for v in read_capture(f).views]
    return [v.load_image() for v in views], [v.load_labels() for v in views]


def _small_part_f1(parser, images, truths) -> float:
    cm = sum(confusion_matrix(t, p, FACEBENCH.num_classes) for t, p in zip(truths, parser.predict(images),
                                                                           strict=True))
    _, f1 = iou_f1(cm)
    return float(np.mean([f1[FACEBENCH.names.index(n)] for n in ("l_eye", "r_eye", "l_brow", "r_brow")]))


def test_zoomed_inference_finds_the_shipped_parsers_eyes_and_brows(frontal_heads, tmp_path):
    """The property the option exists for, on real renders: at its 256² crop side the shipped parser misses
    much of the eyes and brows; averaged with a 1.75× zoom it finds clearly more of them."""
    ckpt = shutil.copytree(SHIPPED, tmp_path / "ck")
    before = _small_part_f1(load_parser(str(ckpt)), *frontal_heads)
    cfg = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**cfg, "test_time_scales": [1.0, 1.75]}))
    after = _small_part_f1(load_parser(str(ckpt)), *frontal_heads)
    assert after >= before + 0.05, (before, after)


def test_fine_tunes_inherit_the_scales_and_bad_scales_are_refused(toy_dataset, tmp_path):  # noqa: F811
    base = train(tiny_config(toy_dataset, tmp_path / "ms", steps=2, val_split=None, width=None,
                             test_time_scales=(1.0, 1.5)))
    assert json.loads((base.out / "config.json").read_text())["test_time_scales"] == [1.0, 1.5]
    ft = train(tiny_config(toy_dataset, tmp_path / "ft", steps=2, val_split=None, width=None, size=None,
                           init=str(base.out)))
    assert json.loads((ft.out / "config.json").read_text())["test_time_scales"] == [1.0, 1.5]
    off = train(tiny_config(toy_dataset, tmp_path / "off", steps=2, val_split=None, width=None, size=None,
                            init=str(base.out), test_time_scales=(1.0,)))
    assert "test_time_scales" not in json.loads((off.out / "config.json").read_text())
    with pytest.raises(InvalidConfig, match="--test-time-scales"):
        train(tiny_config(toy_dataset, tmp_path / "bad", test_time_scales=(0.1,)))
    r = run_cli("train", "bisenet", "--data", str(toy_dataset), "--out", str(tmp_path / "cli"),
                "--test-time-scales", "1,big")
    assert r.returncode == 2 and "--test-time-scales" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("scales", [[0.1], [1.0, 64.0], "1.75", [], [1.0] * 5, [float("nan")]])
def test_a_config_with_impossible_scales_is_refused_before_any_weights_load(tmp_path, scales):
    ckpt = _checkpoint(tmp_path / "ck")
    cfg = json.loads((ckpt / "config.json").read_text())
    # NaN is not JSON (the reader refuses it as such): a number too large for a float, read as inf, stands in
    text = json.dumps({**cfg, "test_time_scales": scales}).replace("NaN", "1e999")
    (ckpt / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match="test_time_scales"):
        load_model(ckpt)


def test_the_leaderboard_bounds_the_side_a_submission_is_parsed_at(tmp_path):
    from leaderboard.checkpoint import check_checkpoint
    from leaderboard.errors import InvalidSubmission
    from leaderboard.limits import Limits

    ckpt = _checkpoint(tmp_path / "ck", test_time_scales=[1.0, 1.75])
    check_checkpoint(ckpt, Limits())  # 64 · 1.75 = 112 px: fine
    cfg = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**cfg, "test_time_scales": [1.0, 40.0]}))  # 2560 px
    with pytest.raises(InvalidSubmission, match="test_time_scales"):
        check_checkpoint(ckpt, Limits())
