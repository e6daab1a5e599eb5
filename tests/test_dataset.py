import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from facebench.dataset import Sample, build_dataset, load, validate
from facebench.errors import InvalidDataset, InvalidMask


def test_build_load_and_validate(small_dataset):
    counts = validate(small_dataset)
    assert counts == {"test": 24}
    ds = load(small_dataset)
    meta = ds.metadata("test")
    assert set(meta.pose_bin) == {"frontal", "three_quarter", "profile", "rear"}
    assert json.loads((small_dataset / "id2label.json").read_text())["17"] == "hair"
    card = (small_dataset / "README.md").read_text()
    assert "task_categories:\n- image-segmentation" in card and "config_name: profile" in card
    assert "| 17 | hair |" in card
    s = next(ds.iter_samples("test"))
    assert s.image.dtype == np.uint8 and s.image.shape[2] == 3 and s.mask.shape == s.image.shape[:2]


def test_same_samples_same_bytes(tmp_path, small_dataset):
    ds = load(small_dataset)
    again = build_dataset({"test": list(ds.iter_samples("test"))}, tmp_path / "again")
    for a in sorted((small_dataset / "data").glob("*.parquet")):
        assert (again / "data" / a.name).read_bytes() == a.read_bytes()
    assert load(again).revision == ds.revision


def test_loads_with_hugging_face_datasets(small_dataset):
    datasets = pytest.importorskip("datasets")
    d = datasets.load_dataset(str(small_dataset))
    row = d["test"][0]
    assert np.asarray(row["mask"]).dtype == np.uint8 and row["mask"].mode == "L"
    assert d["test"].num_rows == 24
    prof = datasets.load_dataset(str(small_dataset), "profile")
    assert set(prof["test"]["pose_bin"]) == {"profile"}


def test_rejects_bad_layouts(tmp_path, small_dataset):
    with pytest.raises(InvalidDataset, match="no id2label.json"):
        load(tmp_path)
    shard = next((small_dataset / "data").glob("*.parquet"))
    t = pq.read_table(shard).drop_columns(["pose_bin"])
    pq.write_table(t, shard)
    with pytest.raises(InvalidDataset, match="missing columns pose_bin"):
        validate(small_dataset)


def test_rejects_lossy_and_illegal_masks(tmp_path, small_dataset):
    import io

    from PIL import Image

    shard = next((small_dataset / "data").glob("*.parquet"))
    t = pq.read_table(shard)
    rows = t.to_pylist()
    buf = io.BytesIO()
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(buf, format="JPEG")
    rows[0]["mask"] = {"bytes": buf.getvalue(), "path": None}
    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), shard)
    with pytest.raises(InvalidMask, match="not PNG"):
        validate(small_dataset)
    bad = Sample(id="x", image=np.zeros((4, 4, 3), np.uint8), mask=np.full((4, 4), 77, np.uint8), subject="s",
                 yaw=0, pitch=0)
    with pytest.raises(InvalidMask, match="illegal label values 77"):
        build_dataset({"test": [bad]}, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # nothing half-written
