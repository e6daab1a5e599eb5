"""Property-based fuzzing of the readers where untrusted bytes enter: whatever they are given, they return a
valid result or raise a FacebenchError (one line through the CLI), never another exception.

Readers: the PNG mask and image decoder (``facebench/imageio.py``), a capture's ``transforms.json``, an
``id2label.json``, a dataset row's provenance, a checkpoint's ``config.json`` and a head frame file. Each gets
arbitrary bytes, and, to reach past the first check, a good document with parts replaced by arbitrary JSON or a
good PNG with bytes flipped, cut or inserted. ``@pytest.mark.slow`` runs the same properties far longer.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facebench.errors import FacebenchError
from facebench.imageio import decode_png, encode_png

EXAMPLES = int(os.environ.get("FACEBENCH_FUZZ_EXAMPLES", "150"))  # more for a long local run
QUICK = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=20)


def _json_bytes(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def deeply_nested(depth: int = 100_000) -> bytes:
    """JSON the C parser recurses into once per level: a RecursionError unless the reader catches it."""
    return b"[" * depth + b"]" * depth


# --------------------------------------------------------------------------------------------------------------
# PNG masks and images

GOOD_MASK = encode_png(np.arange(48 * 40, dtype=np.uint8).reshape(48, 40) % 19)
GOOD_IMAGE = encode_png(np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8))


@st.composite
def damaged(draw, good: bytes) -> bytes:
    """``good`` with a few bytes flipped, a slice cut out, or bytes inserted (past the signature, mostly)."""
    data = bytearray(good)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("flip", "cut", "insert", "truncate")))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[i] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[i : i + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=32))
        else:
            del data[i:]
    return bytes(data)


def _decodes_or_refuses(data: bytes, what: str) -> None:
    try:
        array = decode_png(data, what, "fuzz.png")
    except FacebenchError as e:
        assert "\n" not in str(e) and "fuzz.png" in str(e)
        return
    assert array.dtype == np.uint8 and array.size > 0
    assert array.ndim == (2 if what == "mask" else 3)


@QUICK
@given(st.binary(max_size=256) | st.binary(max_size=64).map(lambda b: b"\x89PNG\r\n\x1a\n" + b))
def test_any_bytes_decode_as_a_mask_or_refuse(data: bytes) -> None:
    _decodes_or_refuses(data, "mask")


@QUICK
@given(damaged(GOOD_MASK))
def test_a_damaged_mask_png_decodes_or_refuses(data: bytes) -> None:
    _decodes_or_refuses(data, "mask")


@QUICK
@given(damaged(GOOD_IMAGE) | st.binary(max_size=128))
def test_a_damaged_image_decodes_or_refuses(data: bytes) -> None:
    _decodes_or_refuses(data, "image")


@pytest.mark.slow
@LONG
@given(damaged(GOOD_MASK) | damaged(GOOD_IMAGE) | st.binary(max_size=1024))
def test_png_decoder_long(data: bytes) -> None:
    _decodes_or_refuses(data, "mask")
    _decodes_or_refuses(data, "image")


# --------------------------------------------------------------------------------------------------------------
# JSON readers, each behind the file it reads


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    from facebench.pose import Pose
    from generators.heads import sample_head, write_capture

    folder = tmp_path_factory.mktemp("fuzzcap") / "cap"
    write_capture(sample_head(2), folder, [Pose(-30, 0), Pose(0, 0), Pose(30, 0)], size=24, subject="s")
    return folder


def _reads_or_refuses(read, path: Path) -> object | None:
    try:
        return read(path)
    except FacebenchError as e:
        assert "\n" not in str(e).replace(repr("\n")[1:-1], "")
        return None


FRAME_KEYS = ("transform_matrix", "fl_x", "fl_y", "cx", "cy", "w", "h", "file_path", "label_path", "mask_path",
              "pose", "facebench_id", "camera_model", "k1", "k4", "p1")
TOP_KEYS = ("frames", "camera_model", "facebench", "fl_x", "w", "k2")


@st.composite
def transforms_docs(draw, good: dict) -> dict:
    """The good transforms.json with a few values (per frame, at the top, in ``facebench``) replaced."""
    doc = copy.deepcopy(good)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(("frame", "top", "facebench")))
        if where == "frame":
            frame = doc["frames"][draw(st.integers(0, len(doc["frames"]) - 1))]
            if isinstance(frame, dict):
                frame[draw(st.sampled_from(FRAME_KEYS))] = draw(json_values)
        elif where == "top":
            doc[draw(st.sampled_from(TOP_KEYS))] = draw(json_values)
            if not isinstance(doc.get("frames"), list) or not doc["frames"]:
                break
        elif isinstance(doc.get("facebench"), dict):
            doc["facebench"][draw(st.sampled_from(("subject", "head_to_world", "license")))] = draw(json_values)
    return doc


def test_transforms_json_mutations(capture: Path, tmp_path_factory) -> None:
    from facebench.captures import read_capture

    good = json.loads((capture / "transforms.json").read_text())
    folder = tmp_path_factory.mktemp("fuzz-transforms")
    for name in ("images", "masks"):
        (folder / name).symlink_to(capture / name)

    @QUICK
    @given(transforms_docs(good))
    def run(doc: dict) -> None:
        (folder / "transforms.json").write_bytes(_json_bytes(doc))
        cap = _reads_or_refuses(read_capture, folder)
        if cap is not None:
            assert len(cap.views) >= 2

    run()


@QUICK
@given(data=st.binary(max_size=300) | json_values.map(_json_bytes))
def test_transforms_json_any_bytes(data: bytes, tmp_path_factory) -> None:
    from facebench.captures import read_transforms

    path = tmp_path_factory.getbasetemp() / "fuzz-any-transforms.json"
    path.write_bytes(data)
    _reads_or_refuses(read_transforms, path)


@QUICK
@given(data=st.binary(max_size=200) | json_values.map(_json_bytes)
       | st.dictionaries(st.integers(-2, 30).map(str), json_values | st.text(min_size=1), max_size=25).map(_json_bytes))
def test_id2label_any_content(data: bytes, tmp_path_factory) -> None:
    from facebench.labels import label_order, read_id2label

    path = tmp_path_factory.getbasetemp() / "id2label.json"
    path.write_bytes(data)
    labels = _reads_or_refuses(read_id2label, path)
    if labels is not None:
        assert 1 <= labels.num_classes <= 255 and all(isinstance(n, str) and n for n in labels.names)
    _reads_or_refuses(lambda p: label_order(str(p)), path)


@QUICK
@given(st.text(max_size=200) | json_values.map(lambda v: json.dumps(v, allow_nan=True)) | st.none() | json_values)
def test_provenance_any_text(text) -> None:
    from facebench.dataset import read_provenance

    got = _reads_or_refuses(lambda _: read_provenance(text, "shard.parquet id=x"), Path("."))
    assert got is None or isinstance(got, dict)


@st.composite
def checkpoint_configs(draw, good: dict) -> dict:
    doc = copy.deepcopy(good)
    for _ in range(draw(st.integers(1, 3))):
        doc[draw(st.sampled_from(("architecture", "width", "labels", "input_size", "normalisation", "weights",
                                  "format")))] = draw(json_values)
    return doc


def test_checkpoint_config_mutations(tmp_path_factory) -> None:
    from broken_inputs import SHIPPED

    from baselines.checkpoint import read_config

    good = json.loads((SHIPPED / "config.json").read_text())
    folder = tmp_path_factory.mktemp("fuzz-ck")
    (folder / "model.safetensors").write_bytes(b"")

    @QUICK
    @given(checkpoint_configs(good) | st.binary(max_size=100))
    def run(doc) -> None:
        (folder / "config.json").write_bytes(doc if isinstance(doc, bytes) else _json_bytes(doc))
        config = _reads_or_refuses(read_config, folder)
        if config is not None:
            assert 32 <= config["input_size"] <= 2048

    run()


@QUICK
@given(data=st.binary(max_size=200) | json_values.map(_json_bytes)
       | st.lists(st.floats() | st.integers(-3, 3), min_size=12, max_size=20).map(lambda v: " ".join(map(str, v))
                                                                                  .encode()))
def test_head_frame_file_any_content(data: bytes, tmp_path_factory) -> None:
    from facebench.headframe import read_frame_file

    path = tmp_path_factory.getbasetemp() / "frame.txt"
    path.write_bytes(data)
    m = _reads_or_refuses(read_frame_file, path)
    assert m is None or (m.shape == (4, 4) and np.isfinite(m).all())


def test_json_nested_thousands_deep_is_refused(tmp_path: Path, capture: Path) -> None:
    """Python's JSON parser raises RecursionError, not ValueError, on deep nesting: every reader turns it into
    its one line."""
    from broken_inputs import SHIPPED

    from baselines.checkpoint import read_config
    from facebench.captures import read_transforms
    from facebench.dataset import read_provenance
    from facebench.headframe import read_frame_file
    from facebench.labels import read_id2label

    deep = deeply_nested()
    for name, read in (("transforms.json", read_transforms), ("id2label.json", read_id2label),
                       ("frame.json", read_frame_file)):
        (tmp_path / name).write_bytes(deep)
        with pytest.raises(FacebenchError):
            read(tmp_path / name)
    with pytest.raises(FacebenchError):
        read_provenance(deep.decode(), "row")
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "model.safetensors").write_bytes((SHIPPED / "model.safetensors").read_bytes()[:8])
    (ck / "config.json").write_bytes(deep)
    with pytest.raises(FacebenchError):
        read_config(ck)
