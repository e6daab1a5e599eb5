"""facebench import: every reader on a fixture it builds in the released layout, plus malformed inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facebench.dataset import load, validate
from facebench.errors import FacebenchError, InvalidDataset, InvalidMask
from facebench.importers import fixtures, import_dataset
from facebench.importers.landmarks import InvalidLandmarks, read_lapa_txt, write_lapa_txt, write_pts
from facebench.importers.policy import merge_predictions, policy_of
from facebench.labels import CELEBAMASK_HQ, FACEBENCH, LabelSet
from facebench.pose import wrap_degrees

ELEVEN = LabelSet(fixtures.ELEVEN, name="eleven")


def _imported(out: Path) -> dict:
    ds = load(out)
    return {s.id: (split, s) for split in ds.splits for s in ds.iter_samples(split)}


def _one_line(err: pytest.ExceptionInfo, *needles: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg


def _check(out: Path, faces: list, source: LabelSet, yaw_tol: float) -> dict:
    got = _imported(out)
    assert set(got) == {f.name for f in faces}
    for f in faces:
        split, s = got[f.name]
        assert split == f.split
        np.testing.assert_array_equal(s.mask, fixtures.expected_mask(f.mask, source))
        assert abs(wrap_degrees(s.yaw - f.pose.yaw)) <= yaw_tol, (f.name, s.yaw, f.pose.yaw)
        assert s.provenance["pose_source"]
        assert s.provenance["label_policy"]["dataset"]
    assert sum(validate(out).values()) == len(faces)
    return got


@pytest.mark.parametrize("sides", ["subject", "image"])
def test_lapa(tmp_path: Path, sides: str) -> None:
    faces = fixtures.write_lapa(tmp_path / "LaPa", sides=sides)
    summary = import_dataset("lapa", tmp_path / "LaPa", tmp_path / "out")
    assert summary["sides"]["convention"] == sides
    got = _check(tmp_path / "out", faces, ELEVEN, yaw_tol=1.0)
    s = next(iter(got.values()))[1]
    assert s.provenance["pose_source"] == "pnp-landmarks-lapa106"
    assert summary["landmark_layout_check"]["dropped"] == []
    policy = policy_of(load(tmp_path / "out"))
    assert "neck" in policy.absent and "l_ear" in policy.absent and "skin" not in policy.absent
    pred = np.array([[FACEBENCH.index("neck"), FACEBENCH.index("l_ear"), FACEBENCH.index("nose")]], np.uint8)
    merged = merge_predictions(policy, pred)
    assert [FACEBENCH.names[i] for i in merged[0]] == ["background", "skin", "nose"]


def test_ibugmask(tmp_path: Path) -> None:
    faces = fixtures.write_ibugmask(tmp_path / "ibugmask_release", sides="image")
    summary = import_dataset("ibugmask", tmp_path / "ibugmask_release", tmp_path / "out", splits=("test",))
    assert summary["counts"] == {"test": 3} and summary["sides"]["convention"] == "image"
    _check(tmp_path / "out", [f for f in faces if f.split == "test"], ELEVEN, yaw_tol=1.0)


def test_helen(tmp_path: Path) -> None:
    faces = fixtures.write_helen(tmp_path / "helen")
    summary = import_dataset("helen", tmp_path / "helen", tmp_path / "out")
    assert summary["pose_sources"] == {"pnp-mask-centroids": 9}
    _check(tmp_path / "out", faces, ELEVEN, yaw_tol=12.0)  # region centroids: coarse by design


def test_celebamask_hq(tmp_path: Path) -> None:
    """Part masks merged in the official order, split via the mapping, pose file signs checked and fixed."""
    root = tmp_path / "CelebAMask-HQ"
    faces = fixtures.write_celebamask_hq(root, pose_signs=(-1, 1, -1))
    summary = import_dataset("celebamask-hq", root, tmp_path / "out")
    assert summary["pose_file_signs"] == {"yaw": -1, "pitch": 1, "roll": -1}
    got = _check(tmp_path / "out", faces, CELEBAMASK_HQ, yaw_tol=1e-6)
    _, s = got["00000"]
    assert s.image.shape == (128, 128, 3) and s.provenance["pose_source"] == "annotation"
    assert policy_of(load(tmp_path / "out")).absent == ()


def test_celebamask_hq_part_priority(tmp_path: Path) -> None:
    """Overlapping parts: the later one in g_mask.py's order wins (hair over skin, cloth over neck)."""
    root = tmp_path / "c"
    fixtures.write_celebamask_hq(root, n=3)
    part = root / "CelebAMask-HQ-mask-anno" / "0"
    full = np.full((128, 128), 255, np.uint8)
    Image.fromarray(full).save(part / "00000_skin.png")
    Image.fromarray(np.pad(np.full((8, 8), 255, np.uint8), ((0, 120), (0, 120)))).save(part / "00000_hair.png")
    import_dataset("celebamask-hq", root, tmp_path / "out")
    mask = _imported(tmp_path / "out")["00000"][1].mask
    assert (mask[:8, :8] == FACEBENCH.index("hair")).all()


def test_malformed_inputs(tmp_path: Path) -> None:
    lapa = tmp_path / "LaPa"
    faces = fixtures.write_lapa(lapa, per_split=1)
    f = faces[0]
    lm = lapa / "train" / "landmarks" / f"{f.name}.txt"
    write_lapa_txt(lm, np.zeros((98, 2)))
    with pytest.raises(InvalidLandmarks) as e:
        import_dataset("lapa", lapa, tmp_path / "o1")
    _one_line(e, str(lm), "98 points, expected 106")

    ib = tmp_path / "ib"
    fixtures.write_ibugmask(ib, per_split=1)
    img = next((ib / "test").glob("*.jpg"))
    Image.new("RGB", (100, 90)).save(img)
    with pytest.raises(InvalidMask) as e:
        import_dataset("ibugmask", ib, tmp_path / "o2")
    _one_line(e, str(img), "100×90", "128×128")

    helen = tmp_path / "helen"
    hf = fixtures.write_helen(helen, per_split=1)
    missing = helen / "labels" / hf[0].name / f"{hf[0].name}_lbl05.png"
    missing.unlink()
    with pytest.raises(InvalidMask) as e:
        import_dataset("helen", helen, tmp_path / "o3")
    _one_line(e, str(missing), "missing part mask")

    cel = tmp_path / "cel"
    fixtures.write_celebamask_hq(cel, n=3)
    for p in (cel / "CelebAMask-HQ-mask-anno" / "0").glob("00001_*.png"):
        p.unlink()
    with pytest.raises(InvalidMask) as e:
        import_dataset("celebamask-hq", cel, tmp_path / "o4")
    _one_line(e, "no part masks for image 00001")
    (cel / "list_eval_partition.txt").unlink()
    with pytest.raises(InvalidDataset) as e:
        import_dataset("celebamask-hq", cel, tmp_path / "o5")
    _one_line(e, "list_eval_partition.txt", "--celeba-partition")

    with pytest.raises(InvalidDataset) as e:
        import_dataset("lapa", tmp_path / "cel", tmp_path / "o6")
    _one_line(e, "not the LaPa layout")
    with pytest.raises(FacebenchError) as e:
        import_dataset("lfw", lapa, tmp_path / "o7")
    _one_line(e, "unknown dataset 'lfw'")


def test_helen_with_300w_landmarks(tmp_path: Path) -> None:
    faces = fixtures.write_helen(tmp_path / "helen", per_split=1)
    lms = tmp_path / "300w" / "helen" / "testset"
    lms.mkdir(parents=True)
    for f in faces:
        write_pts(lms / f"{f.name}.pts", f.lm68)
    summary = import_dataset("helen", tmp_path / "helen", tmp_path / "out", extra={"landmarks": tmp_path / "300w"})
    assert summary["pose_sources"] == {"pnp-landmarks-68": 3} and summary["pose_fit_median_rel"] < 0.05
    _check(tmp_path / "out", faces, ELEVEN, yaw_tol=1.0)
    # Landmarks of a differently sized copy of the images are refused.
    write_pts(lms / f"{faces[0].name}.pts", faces[0].lm68 * 2.0)
    with pytest.raises(InvalidLandmarks) as e:
        import_dataset("helen", tmp_path / "helen", tmp_path / "o2", extra={"landmarks": tmp_path / "300w"})
    _one_line(e, "SmithCVPR2013_dataset_original")


def test_split_aliases_and_limit(tmp_path: Path) -> None:
    fixtures.write_lapa(tmp_path / "LaPa", per_split=3)
    summary = import_dataset("lapa", tmp_path / "LaPa", tmp_path / "out", splits=("val", "test"), limit=2)
    assert summary["counts"] == {"validation": 2, "test": 2}


def test_lapa_layout_check_drops_a_misindexed_group(tmp_path: Path) -> None:
    """If our 106 -> 68 table were wrong for a group (here: each eye's corners swapped in the files),
    the import notices from the fit, leaves that group out, and the pose stays right."""
    faces = fixtures.write_lapa(tmp_path / "LaPa", per_split=2)
    for f in faces:
        p = next((tmp_path / "LaPa").glob(f"*/landmarks/{f.name}.txt"))
        xy = read_lapa_txt(p)
        xy[[52, 55, 58, 61]] = xy[[55, 52, 61, 58]]
        write_lapa_txt(p, xy)
    summary = import_dataset("lapa", tmp_path / "LaPa", tmp_path / "out")
    assert summary["landmark_layout_check"]["dropped"] == ["eyes"]
    _check(tmp_path / "out", faces, ELEVEN, yaw_tol=1.0)
