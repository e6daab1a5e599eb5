"""hf:ORG/NAME[@REV]: a tiny random transformers SegFormer, from a folder and from the loopback Hub.

Its id2label spells classes the way Hub face parsers do, in a non-facebench order, so every test that looks at
class ids also checks the remapping by name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from hubserver import HubServer
from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor, SegformerModel

from baselines.hf_parser import HFParser, load_hf_parser
from facebench.errors import CheckpointError, InputNotFound, InvalidConfig
from facebench.labels import FACEBENCH
from facebench.parsing import Parser

NAMES = ["left_eyebrow", "eyeglasses", "necklace", "face", "bg", "Hair", "upper_lip", "scarf"]
EXPECTED = {"left_eyebrow": "l_brow", "eyeglasses": "eye_g", "necklace": "neck_l", "face": "skin",
            "bg": "background", "Hair": "hair", "upper_lip": "u_lip", "scarf": "background"}
TOKEN = "hf_test_token"
REPO = "tester/faceseg"


def _config(names=NAMES) -> SegformerConfig:
    return SegformerConfig(depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 32, 64], num_attention_heads=[1, 1, 2, 2],
                           decoder_hidden_size=32, id2label=dict(enumerate(names)),
                           label2id={n: i for i, n in enumerate(names)})


def _save(folder: Path, constant: str | None = None, names=NAMES) -> Path:
    """A random tiny SegFormer + a 64×64 image processor; ``constant``: it predicts that class everywhere."""
    torch.manual_seed(0)
    model = SegformerForSemanticSegmentation(_config(names)).eval()
    if constant is not None:
        _set_constant(model, names.index(constant))
    model.save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


def _set_constant(model, index: int) -> None:
    """Zero the final classifier and put a one-hot bias at ``index``: that class wins at every pixel."""
    with torch.no_grad():
        model.decode_head.classifier.weight.zero_()
        model.decode_head.classifier.bias.zero_()
        model.decode_head.classifier.bias[index] = 5.0


def _images(rng, sizes=((37, 91), (120, 45), (64, 64), (5, 200))) -> list[np.ndarray]:
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("hf") / "tiny-segformer")


@pytest.fixture(scope="module")
def parser(model_dir) -> HFParser:
    return load_hf_parser(str(model_dir), batch_size=3, echo=lambda s: None)


def test_local_folder_is_a_parser_in_facebench_ids(model_dir):
    said: list[str] = []
    p = load_hf_parser(str(model_dir), echo=said.append)
    assert isinstance(p, Parser) and p.labels is FACEBENCH and p.name == "tiny-segformer"
    assert p.config["architecture"] == "hf:segformer" and p.config["revision"] is None
    assert p.config["weights"]["sha256"] == hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert p.config["labels"]["mapping"] == EXPECTED
    assert said == ["warning: " + str(model_dir) + ": 1 of 8 classes have no facebench equivalent and are predicted as "
                    "background: scarf"]


@pytest.mark.parametrize("name", ["left_eyebrow", "eyeglasses", "necklace", "face", "upper_lip", "scarf"])
def test_classes_are_remapped_by_name(parser, name):
    _set_constant(parser.model, NAMES.index(name))
    masks = parser.predict(_images(np.random.default_rng(1), ((48, 80), (90, 30))))
    want = FACEBENCH.index(EXPECTED[name])
    assert all((m == want).all() for m in masks), (name, [np.unique(m) for m in masks])


def test_mixed_sizes_in_one_batch(model_dir):
    p = load_hf_parser(str(model_dir), batch_size=3, echo=lambda s: None)  # random weights: varied maps
    images = _images(np.random.default_rng(2))
    masks = p.predict(images)
    assert [m.shape for m in masks] == [im.shape[:2] for im in images]
    assert all(m.dtype == np.uint8 for m in masks)
    allowed = {FACEBENCH.index(v) for v in EXPECTED.values()}
    assert set(np.unique(np.concatenate([m.ravel() for m in masks])).tolist()) <= allowed
    alone = [p.predict([im])[0] for im in images]
    assert all((a == b).all() for a, b in zip(alone, masks, strict=True))
    assert tuple(p.pixels(images[0]).shape) == (3, 64, 64)  # the model's own processor decides the input size


def _refused(spec: str, match: str, kind=CheckpointError) -> None:
    with pytest.raises(kind) as e:
        load_hf_parser(spec, echo=lambda s: None)
    assert "\n" not in str(e.value) and spec in str(e.value) and match in str(e.value), str(e.value)


def test_unusable_folders_are_refused_in_one_line(tmp_path):
    from transformers import ViTConfig

    vit = tmp_path / "vit"
    ViTConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(vit)
    _refused(str(vit), "is a 'vit' model, not a semantic-segmentation one")
    nameless = tmp_path / "nameless"
    SegformerConfig(num_labels=3).save_pretrained(nameless)
    _refused(str(nameless), "has no id2label")
    scenery = tmp_path / "ade"
    _config(["wall", "building", "sky", "background"]).save_pretrained(scenery)
    _refused(str(scenery), "none of its 4 classes (wall, building, sky, background) is a face region")
    backbone = tmp_path / "backbone"  # encoder weights only: the decode head would be random
    SegformerModel(_config()).save_pretrained(backbone)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(backbone)
    _refused(str(backbone), "not a trained segmentation model")
    (tmp_path / "empty").mkdir()
    _refused(str(tmp_path / "empty"), "has no config.json")
    _refused(str(tmp_path / "missing"), "neither a folder nor a Hub model id", InputNotFound)


def test_without_transformers_the_hint_names_the_extra(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(InvalidConfig, match=r"hf: models need transformers \(pip install 'facebench\[hf\]'\)"):
        load_hf_parser(str(model_dir))


# -- the loopback Hub --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A model repo with two commits: the first predicts eyeglasses everywhere, main now predicts left_eyebrow."""
    from huggingface_hub import HfApi, constants

    root = tmp_path_factory.mktemp("hub")
    with HubServer(tokens={TOKEN}) as server, pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, "HF_HUB_DISABLE_XET", True)  # in-process: the env var is read at import
        api = HfApi(endpoint=server.endpoint, token=TOKEN)
        api.create_repo(REPO, repo_type="model")
        first = api.upload_folder(repo_id=REPO, folder_path=_save(root / "v1", "eyeglasses"), repo_type="model").oid
        shutil.rmtree(root / "v1")
        api.upload_folder(repo_id=REPO, folder_path=_save(root / "v2", "left_eyebrow"), repo_type="model")
        server.first = first
        yield server


@pytest.fixture
def env(hub, tmp_path):
    return {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1",
            "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1", "FACEBENCH_CACHE": str(tmp_path / "fc")}


LOAD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from baselines.hf_parser import load_hf_parser
    from facebench.errors import FacebenchError
    for spec in sys.argv[1:]:
        try:
            p = load_hf_parser(spec)
        except FacebenchError as e:
            print(json.dumps({"spec": spec, "error": str(e)}))
            continue
        masks = p.predict([np.full((30, 50, 3), 128, np.uint8), np.zeros((70, 20, 3), np.uint8)])
        print(json.dumps({"spec": spec, "config": p.config, "shapes": [m.shape for m in masks],
                          "values": sorted({int(v) for m in masks for v in np.unique(m)})}))
""")


def _load(env, *specs) -> tuple[dict[str, dict], str]:
    r = subprocess.run([sys.executable, "-c", LOAD, *specs], env=env, capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0, r.stderr
    return {d["spec"]: d for d in map(json.loads, r.stdout.splitlines())}, r.stderr


def test_hub_model_pinned_to_a_commit(hub, env):
    first = hub.first
    main = hub.state.models[REPO].branches["main"]
    out, stderr = _load(env, f"{REPO}@{first}", REPO)
    pinned, latest = out[f"{REPO}@{first}"], out[REPO]
    assert pinned["config"]["revision"] == first and latest["config"]["revision"] == main != first
    assert pinned["values"] == [FACEBENCH.index("eye_g")] and latest["values"] == [FACEBENCH.index("l_brow")]
    assert pinned["shapes"] == [[30, 50], [70, 20]]
    blobs = {e.path: e.blob for e in hub.state.models[REPO].commits[first].values()}
    assert pinned["config"]["weights"]["sha256"] == blobs["model.safetensors"]  # the LFS oid is the sha256
    assert pinned["config"]["weights"]["sha256"] != latest["config"]["weights"]["sha256"]
    assert pinned["config"]["source"] == f"hf:{REPO}@{first}"
    assert "scarf" in stderr and "Traceback" not in stderr
    assert not hub.state.repos  # nothing was created or looked up as a dataset
    offline, _ = _load({**env, "HF_HUB_OFFLINE": "1"}, f"{REPO}@{first}", f"{REPO}@other")
    assert offline[f"{REPO}@{first}"]["config"] == pinned["config"]  # a pinned model runs from the cache
    assert offline[f"{REPO}@other"]["error"] == (f"hf:{REPO}@other: HF_HUB_OFFLINE is set and {REPO}@other is not in "
                                                 "the local cache (download it once online)")


def test_hub_failures_are_one_line(hub, env, tmp_path):
    out, _ = _load(env, "tester/nothing", f"{REPO}@no-such-branch", f"{REPO}@{'0' * 40}")
    assert "no model repo tester/nothing on " + hub.endpoint in out["tester/nothing"]["error"]
    assert "has no revision 'no-such-branch'" in out[f"{REPO}@no-such-branch"]["error"]
    assert f"has no revision '{'0' * 40}'" in out[f"{REPO}@{'0' * 40}"]["error"]
    r = subprocess.run([sys.executable, "-m", "facebench", "predict", f"hf:{REPO}@no-such-branch", str(tmp_path),
                        "--out", str(tmp_path / "masks")], env=env, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: hf:{REPO}@no-such-branch: ") and "Traceback" not in r.stderr


def test_cli_evaluates_a_hub_model(hub, env, small_dataset, tmp_path):
    out = tmp_path / "report"
    args = ["evaluate", f"hf:{REPO}@{hub.first}", "--data", str(small_dataset), "--out", str(out), "--n-boot", "0"]
    r = subprocess.run([sys.executable, "-m", "facebench", *args], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["overall"]["n_images"] == 24
    cache = json.loads((out / "predictions" / "cache.json").read_text())
    assert cache["model_sha256"] == {e.path: e.blob for e in hub.state.models[REPO].commits[hub.first].values()}[
        "model.safetensors"]

