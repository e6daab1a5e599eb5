"""Baselines: architectures, augmentation, loss, training, checkpoints and prediction (small and fast)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.augment import NO_AUGMENT, AugmentConfig, augment
from baselines.checkpoint import convert, load_state, save_checkpoint
from baselines.loss import ohem_cross_entropy
from baselines.models import MODELS, build_model
from baselines.predict import TorchParser, load_parser, predict_dataset
from baselines.train import TrainConfig, train
from facebench.dataset import Sample, build_dataset
from facebench.errors import CheckpointError, InvalidConfig
from facebench.labels import FACEBENCH
from facebench.parsing import Parser

# One thread: these tiny models gain nothing from two, and the CI machine is shared.
torch.set_num_threads(1)


def toy_face(rng: np.random.Generator, size: int, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """A cartoon head: skin disc, two eyes, two brows, nose, lips, hair cap, on a noisy background.

    Frontal convention: the subject's left eye appears on the image's right.
    """
    yy, xx = np.mgrid[0:size, 0:size] / size
    cx = 0.5 + 0.25 * np.sin(np.deg2rad(yaw)) + rng.uniform(-0.03, 0.03)
    mask = np.zeros((size, size), np.uint8)
    mask[(xx - cx) ** 2 + (yy - 0.5) ** 2 < 0.09] = 1
    mask[((xx - cx) ** 2 + (yy - 0.5) ** 2 < 0.12) & (yy < 0.3)] = 17
    for side, eye, brow in ((+1, 4, 2), (-1, 5, 3)):
        ex = cx + side * 0.12
        mask[(np.abs(xx - ex) < 0.05) & (np.abs(yy - 0.45) < 0.025)] = eye
        mask[(np.abs(xx - ex) < 0.06) & (np.abs(yy - 0.38) < 0.015)] = brow
    mask[(np.abs(xx - cx) < 0.03) & (np.abs(yy - 0.55) < 0.06)] = 10
    mask[(np.abs(xx - cx) < 0.08) & (np.abs(yy - 0.68) < 0.015)] = 12
    mask[(np.abs(xx - cx) < 0.08) & (np.abs(yy - 0.71) < 0.015)] = 13
    palette = rng.integers(0, 256, size=(19, 3)) // 2 + FACEBENCH.palette_array // 2
    image = palette[mask] + rng.integers(-20, 20, size=(size, size, 3))
    return image.clip(0, 255).astype(np.uint8), mask


def toy_samples(n: int, size: int, seed: int, prefix: str) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        yaw = float(rng.uniform(-90, 90))
        image, mask = toy_face(rng, size, yaw)
        out.append(Sample(f"{prefix}{i:03d}", image, mask, f"s{i % 3}", yaw, float(rng.uniform(-30, 30))))
    return out


@pytest.fixture(scope="module")
def toy_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "toy"
    splits = {
        "train": toy_samples(16, 64, 0, "tr"),
        "validation": toy_samples(4, 64, 1, "va"),
        "test": toy_samples(3, 72, 2, "te"),
    }
    return build_dataset(splits, root)


def tiny_config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(model="bisenet", data=str(data), out=str(out), steps=4, size=64, batch_size=4, width=0.25,
                val_every=2, save_every=2, quiet=True, threads=None)  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def small_width(name: str) -> float:
    """A quarter width keeps these tests fast; bisenet-zll exists at the reference's width only."""
    return 1.0 if name == "bisenet-zll" else 0.25


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape", [(1, 64, 64), (2, 96, 128), (1, 130, 70)])
def test_output_shapes(name, shape):
    model = build_model(name, num_classes=19, width=small_width(name))
    n, h, w = shape
    n = max(n, 2) if name == "bisenet-zll" else n  # its pooled-feature batch norms train on 2+ images
    x = torch.randn(n, 3, h, w)
    model.train()
    outs = model(x)
    assert isinstance(outs, list) and len(outs) == (3 if name.startswith("bisenet") else 1)
    assert all(o.shape == (n, 19, h, w) for o in outs)
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (n, 19, h, w)


def test_bisenet_full_width_channels():
    """Width 1.0 reproduces the reference channel plan: ARMs 256→128 and 512→128, FFM to 256."""
    m = build_model("bisenet", width=1.0)
    assert m.context_path.backbone.channels == (64, 128, 256, 512)
    arm16 = m.context_path.arm16.conv[0]
    assert arm16.in_channels == 256 and arm16.out_channels == 128
    assert m.context_path.arm32.conv[0].in_channels == 512
    assert m.fusion.project[0].in_channels == 256 and m.fusion.project[0].out_channels == 256


def test_unknown_model_is_a_user_error():
    with pytest.raises(InvalidConfig, match="unknown model"):
        build_model("resnet9000")


def test_flip_augmentation_swaps_left_and_right():
    rng = np.random.default_rng(0)
    image, mask = toy_face(rng, 48, 0.0)
    images = torch.from_numpy(image).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    masks = torch.from_numpy(mask)[None].repeat(2, 1, 1)
    cfg = AugmentConfig(scale=(1.0, 1.0), rotate=0.0, flip=1.0, brightness=0, contrast=0, saturation=0)
    x, y = augment(images, masks, 48, cfg, FACEBENCH.flip_lut, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(y[0].numpy(), FACEBENCH.flip(mask))
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy() * 255, image[:, ::-1], atol=1e-3)
    left = FACEBENCH.index("l_eye")
    right = FACEBENCH.index("r_eye")
    assert (mask == left).sum() == (y[0].numpy() == right).sum() > 0
    x0, y0 = augment(images, masks, 48, NO_AUGMENT, FACEBENCH.flip_lut, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(y0[0].numpy(), mask)


def test_augmentation_keeps_labels_legal_and_is_seeded():
    rng = np.random.default_rng(1)
    pairs = [toy_face(rng, 64, y) for y in (0, 40, -70, 10)]
    images = torch.stack([torch.from_numpy(i).permute(2, 0, 1) for i, _ in pairs])
    masks = torch.stack([torch.from_numpy(m) for _, m in pairs])
    a = augment(images, masks, 48, AugmentConfig(), FACEBENCH.flip_lut, torch.Generator().manual_seed(3))
    b = augment(images, masks, 48, AugmentConfig(), FACEBENCH.flip_lut, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == (4, 3, 48, 48) and a[1].shape == (4, 48, 48)
    values = set(a[1].unique().tolist())
    assert values <= set(range(19)) | {255}


def test_ohem_keeps_hard_pixels_and_at_least_n_min():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    easy = torch.zeros(1, 19, 8, 8)
    easy[:, 0] = 20.0  # every pixel confidently right: no hard pixels, so the n_min largest are averaged
    assert 0 <= float(ohem_cross_entropy(easy, target)) < 1e-6
    target[0, 0, 0] = 255
    hard = torch.zeros(1, 19, 8, 8)  # uniform: p = 1/19 < 0.7 everywhere
    assert float(ohem_cross_entropy(hard, target)) == pytest.approx(np.log(19), rel=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_steps_lower_the_loss(name):
    """A few real optimiser steps (OHEM loss, recipe optimiser) on one fixed batch reduce its loss."""
    from baselines.models import model_spec
    from baselines.schedule import make_optimizer
    from baselines.transforms import IMAGENET_MEAN, IMAGENET_STD, normalise

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pairs = [toy_face(rng, 64, y) for y in (0, 30, -30, 60)]
    x = normalise(torch.stack([torch.from_numpy(i).permute(2, 0, 1) for i, _ in pairs]).float() / 255,
                  IMAGENET_MEAN, IMAGENET_STD)  # fmt: skip
    y = torch.stack([torch.from_numpy(m) for _, m in pairs]).long()
    model = build_model(name, width=small_width(name)).train()
    spec = model_spec(name)
    opt = make_optimizer(model, spec.optimizer, spec.lr, spec.weight_decay)

    def loss_now() -> torch.Tensor:
        return sum(ohem_cross_entropy(o, y) for o in model(x))

    losses = []
    for _ in range(10):
        loss = loss_now()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses


def test_train_writes_a_checkpoint_that_predicts(toy_dataset, tmp_path):
    result = train(tiny_config(toy_dataset, tmp_path / "run", max_yaw=60.0))
    assert result.step == 4
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["architecture"] == "bisenet" and config["width"] == 0.25 and config["input_size"] == 64
    assert config["labels"]["names"] == list(FACEBENCH.names)
    assert config["training"]["data_revision"].startswith("sha256:")
    assert config["training"]["pose_filter"] == {"max_yaw": 60.0, "max_pitch": None}
    assert "mean_f1_fg" in config["metrics"] and "by_pose_bin" in config["metrics"]
    parser = load_parser(str(tmp_path / "run"))
    assert isinstance(parser, Parser)
    images = [np.zeros((50, 80, 3), np.uint8), np.full((100, 40, 3), 128, np.uint8)]
    masks = parser.predict(images)
    assert [m.shape for m in masks] == [(50, 80), (100, 40)] and all(m.dtype == np.uint8 for m in masks)
    n = predict_dataset(parser, toy_dataset, "test", tmp_path / "masks", quiet=True)
    assert n == 3 and len(list((tmp_path / "masks").glob("*.png"))) == 3


def test_resume_matches_an_uninterrupted_run(toy_dataset, tmp_path):
    full = train(tiny_config(toy_dataset, tmp_path / "full"))
    train(tiny_config(toy_dataset, tmp_path / "part", stop_after=2))
    resumed = train(tiny_config(toy_dataset, tmp_path / "part"))
    assert resumed.step == full.step == 4
    a, _ = load_state(tmp_path / "full")
    b, _ = load_state(tmp_path / "part")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_same_seed_same_weights_and_resume_refuses_other_settings(toy_dataset, tmp_path):
    train(tiny_config(toy_dataset, tmp_path / "a", steps=2, val_split=None))
    train(tiny_config(toy_dataset, tmp_path / "b", steps=2, val_split=None))
    a, _ = load_state(tmp_path / "a")
    b, _ = load_state(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(InvalidConfig, match="other settings"):
        train(tiny_config(toy_dataset, tmp_path / "a", steps=2, seed=1))


def test_fine_tune_from_init(toy_dataset, tmp_path):
    train(tiny_config(toy_dataset, tmp_path / "base", steps=2, val_split=None, width=None))
    with pytest.raises(InvalidConfig, match="not unet"):
        train(tiny_config(toy_dataset, tmp_path / "ft", model="unet", init=str(tmp_path / "base")))
    res = train(tiny_config(toy_dataset, tmp_path / "ft", steps=2, val_split=None, width=None, size=None,
                            init=str(tmp_path / "base")))  # fmt: skip
    config = json.loads((res.out / "config.json").read_text())
    assert config["width"] == 1.0 and config["input_size"] == 64
    assert config["training"]["init"] == str(tmp_path / "base")
    assert "test_time_flip" not in config
    # a model that infers with test-time flip hands it on to its fine-tunes, unless told otherwise
    train(tiny_config(toy_dataset, tmp_path / "flip", steps=2, val_split=None, width=None, test_time_flip=True))
    assert json.loads((tmp_path / "flip" / "config.json").read_text())["test_time_flip"] is True
    ft = train(tiny_config(toy_dataset, tmp_path / "ft2", steps=2, val_split=None, width=None, size=None,
                           init=str(tmp_path / "flip")))
    assert json.loads((ft.out / "config.json").read_text())["test_time_flip"] is True
    off = train(tiny_config(toy_dataset, tmp_path / "ft3", steps=2, val_split=None, width=None, size=None,
                            init=str(tmp_path / "flip"), test_time_flip=False))
    assert "test_time_flip" not in json.loads((off.out / "config.json").read_text())


def bare_config(name: str) -> dict:
    labels = {"name": "facebench", "names": list(FACEBENCH.names)}
    norm = {"mean": [0.5] * 3, "std": [0.25] * 3}
    return {"architecture": name, "width": small_width(name), "labels": labels, "input_size": 64, "normalisation": norm}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_checkpoint_round_trip_gives_identical_outputs(name, tmp_path):
    model = build_model(name, width=small_width(name)).eval()
    with torch.no_grad():  # perturb BN statistics so they matter
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    config = bare_config(name)
    save_checkpoint(tmp_path / "ck", model, config)
    parser = load_parser(f"{name}:{tmp_path / 'ck'}")
    x = torch.randn(2, 3, 64, 64).contiguous(memory_format=parser.memory_format)
    model = model.to(memory_format=parser.memory_format)  # same kernels on both sides
    with torch.no_grad():
        assert torch.equal(model(x), parser.model(x))
    images = [np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)]
    direct = TorchParser(model, config).predict(images)[0]
    np.testing.assert_array_equal(direct, parser.predict(images)[0])
    # the NAME.safetensors + NAME.json form, stored in fp16 for shipping
    save_checkpoint(tmp_path / "small.safetensors", model, config, dtype=torch.float16)
    assert (tmp_path / "small.json").exists()
    assert load_parser(str(tmp_path / "small.safetensors")).predict(images)[0].shape == (64, 64)
    convert(tmp_path / "ck", tmp_path / "conv.safetensors")  # what ships in baselines/weights/
    small, conv = load_state(tmp_path / "small.safetensors"), load_state(tmp_path / "conv.safetensors")
    assert all(torch.equal(small[0][k], conv[0][k]) for k in small[0])
    assert conv[1]["weights"]["dtype"] == "float16" and conv[1]["architecture"] == name


def test_tampered_and_pickled_checkpoints_are_refused(tmp_path):
    model = build_model("unet", width=0.25)
    config = bare_config("unet")
    save_checkpoint(tmp_path / "ck", model, config)
    weights = tmp_path / "ck" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 does not match"):
        load_parser(str(tmp_path / "ck"))
    with pytest.raises(CheckpointError, match="not bisenet"):
        save_checkpoint(tmp_path / "ok", model, config)
        load_parser(f"bisenet:{tmp_path / 'ok'}")

    sentinel = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (sentinel.write_text, ("code ran",))

    for name in ("model.pt", "weights.pth", "noext"):
        (tmp_path / name).write_bytes(pickle.dumps(Evil()))
        with pytest.raises(CheckpointError, match="never unpickles"):
            load_parser(str(tmp_path / name))
    # a pickle renamed to model.safetensors inside a checkpoint folder
    (tmp_path / "ck" / "model.safetensors").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_parser(str(tmp_path / "ck"))
    # a folder with only a .pt file
    (tmp_path / "ptonly").mkdir()
    (tmp_path / "ptonly" / "model.pt").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_parser(str(tmp_path / "ptonly"))
    assert not sentinel.exists()
    with pytest.raises(CheckpointError, match="does not exist"):
        load_parser(str(tmp_path / "missing"))


def test_bf16_parser_agrees_with_fp32_mostly(tmp_path):
    model = build_model("bisenet", width=0.25).eval()
    save_checkpoint(tmp_path / "ck", model, bare_config("bisenet"))
    rng = np.random.default_rng(0)
    images = [toy_face(rng, 64, 0.0)[0] for _ in range(2)]
    a = load_parser(str(tmp_path / "ck")).predict(images)
    b = load_parser(str(tmp_path / "ck"), precision="bf16").predict(images)
    assert all(x.shape == y.shape == (64, 64) for x, y in zip(a, b, strict=True))
    with pytest.raises(InvalidConfig, match="precision"):
        load_parser(str(tmp_path / "ck"), precision="int3")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_export_matches_torch(name, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from baselines.predict import export_onnx

    save_checkpoint(tmp_path / "ck", build_model(name, width=small_width(name)), bare_config(name))
    report = export_onnx(str(tmp_path / "ck"), tmp_path / "m.onnx")
    assert report["max_abs_diff"] < 1e-3 and report["argmax_agreement"] > 0.999


def test_cli_commands_train_predict_and_fail_in_one_line(toy_dataset, tmp_path):
    import typer
    from typer.testing import CliRunner

    from baselines.cli import export_onnx_command, predict_command, train_command
    from facebench.errors import FacebenchError

    app = typer.Typer()
    for f, name in (
        (train_command, "train"),
        (predict_command, "predict"),
        (export_onnx_command, "export-onnx"),
    ):
        app.command(name)(f)
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["train", "bisenet", "--data", str(toy_dataset), "--out", str(out), "--steps", "2", "--size", "64"]
    args += ["--batch-size", "2", "--width", "0.25", "--frontal", "--val-split", "", "--threads", "1"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["pose_filter"] == {"max_yaw": 30.0, "max_pitch": 20.0}
    res = runner.invoke(app, ["predict", str(out), "--data", str(toy_dataset), "--out", str(tmp_path / "m"),
                              "--threads", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "m").glob("*.png"))) == 3
    res = runner.invoke(app, ["predict", str(tmp_path / "nope"), "--data", str(toy_dataset), "--out", "x"])
    assert isinstance(res.exception, FacebenchError) and "does not exist" in str(res.exception)


def test_captures_become_a_dataset_split_by_subject(tmp_path):
    from baselines.captures import captures_to_dataset
    from facebench.captures import Camera, Capture, View, write_transforms
    from facebench.dataset import load
    from facebench.imageio import write_png
    from facebench.pose import Pose

    rng = np.random.default_rng(0)
    K = np.array([[100.0, 0, 24], [0, 100.0, 24], [0, 0, 1]])
    for s in range(3):
        root = tmp_path / "caps" / f"subj{s}"
        views = []
        for k, yaw in enumerate((-20.0, 10.0)):
            image, mask = toy_face(rng, 48, yaw)
            cam = Camera(K=K, world_to_camera=np.eye(4), width=48, height=48)
            views.append(View(f"subj{s}-{k}", cam, write_png(root / "images" / f"{k}.png", image),
                              write_png(root / "masks" / f"{k}.png", mask), Pose(yaw, 5.0)))  # fmt: skip
        write_transforms(Capture(views, subject=f"subj{s}", root=root), root / "transforms.json")
    ds = load(captures_to_dataset(tmp_path / "caps", tmp_path / "ds", validation_subjects=1))
    assert ds.splits == ["train", "validation"]
    train_meta, val_meta = ds.metadata("train"), ds.metadata("validation")
    assert len(train_meta) == 4 and set(val_meta["subject"]) == {"subj2"}
    assert sorted(train_meta["yaw"].round(3)) == [-20.0, -20.0, 10.0, 10.0]


@pytest.mark.slow
def test_bisenet_learns_the_toy_faces(toy_dataset, tmp_path):
    """End to end: a short run reaches a useful validation F1 and predicts the held-out split well."""
    from facebench.dataset import load
    from facebench.metrics import Evaluation

    cfg = tiny_config(toy_dataset, tmp_path / "run", steps=150, val_every=150, save_every=150, batch_size=8,
                      width=0.5, augment=AugmentConfig(scale=(0.9, 1.2), rotate=5.0))  # fmt: skip
    result = train(cfg)
    assert result.metrics["mean_f1_fg"] > 0.35, result.metrics  # untrained: ≈ 0.05
    trained = load_parser(str(tmp_path / "run"))
    untrained = TorchParser(build_model("bisenet", width=0.5).eval(), trained.config)
    samples = list(load(toy_dataset).iter_samples("test"))

    def f1(parser) -> float:
        ev = Evaluation()
        for s, pred in zip(samples, parser.predict([s.image for s in samples]), strict=True):
            ev.add(pred, s.mask, s.id)
        return ev.scores(n_boot=0)["mean_f1_fg"]

    before, after = f1(untrained), f1(trained)
    assert after > max(0.25, 3 * before), (before, after)


def test_shipped_frontal_weights_load_and_fit_the_budget():
    root = Path(__file__).resolve().parent.parent / "baselines" / "weights" / "bisenet-frontal"
    if not root.exists():
        pytest.skip("no shipped weights in this checkout")
    assert sum(p.stat().st_size for p in root.iterdir()) <= 12 * 2**20
    parser = load_parser(str(root))
    assert parser.config["architecture"] == "bisenet" and parser.config["weights"]["dtype"] == "float16"
    assert parser.config["training"]["pose_filter"] == {"max_yaw": 30.0, "max_pitch": 20.0}
    image = toy_face(np.random.default_rng(0), 100, 0.0)[0]
    assert parser.predict([image])[0].shape == (100, 100)
