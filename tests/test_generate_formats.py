"""`facebench generate` on each public capture format, through the CLI: a world frame of the rig's own, no
head frame declared (estimated), lens distortion, and one COLMAP binary model with 1920×1080 cameras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from capture_fixtures import (
    make_rig,
    similarity,
    write_colmap,
    write_facescape,
    write_multiface,
    write_nerfstudio,
    write_nersemble,
)
from conftest import run_cli

from facebench.captures import Distortion, read_capture
from facebench.dataset import load, validate
from facebench.imageio import write_png

YAWS = [-90, -60, -30, -10, 10, 30, 60, 90]  # a frontal rig, as real ones are: no back of the head


@pytest.fixture(scope="module")
def head():
    from generators.heads import sample_head

    return sample_head(33)


def _masks_for(capture_root: Path, rig, out: Path, fmt: str) -> Path:
    """The exact label maps as the 'initial parser', named by the view ids the reader gives, matched to the
    rig's cameras by position (formats name views their own way)."""
    cap = read_capture(capture_root, fmt)
    centres = np.array([c.center for c in rig.world_cameras()])
    for v in cap.views:
        k = int(np.argmin(np.linalg.norm(centres - v.camera.center, axis=1)))
        write_png(out / f"{v.id}.png", rig.labels[k])
    return out


WRITERS = {
    "nerfstudio": lambda root, rig: write_nerfstudio(root, rig, "OPENCV", {"k1": -0.05, "k2": 0.01}),
    "colmap": lambda root, rig: write_colmap(root, rig, "OPENCV", (-0.2, 0.05, 0.0005, -0.0004),
                                             distortion=Distortion("OPENCV", (-0.2, 0.05, 0.0005, -0.0004)),
                                             binary=True),
    "facescape": lambda root, rig: write_facescape(root, rig, dist=(-0.05, 0.01, 0.0, 0.0, 0.0)),
    "nersemble": lambda root, rig: write_nersemble(root, rig, layout="benchmark"),
    "multiface": lambda root, rig: write_multiface(root, rig),
}
SIZES = {"colmap": (1920, 1080)}  # the one full-size, non-square rig; the others small


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_generate_reads_each_format(fmt, head, tmp_path):
    w, h = SIZES.get(fmt, (128, 96))
    rig = make_rig(head, YAWS, w, h, similarity(11, scale=(0.3 if fmt == "colmap" else 4.0)))
    root = tmp_path / "caps" / fmt
    WRITERS[fmt](root, rig)
    masks = _masks_for(root, rig, tmp_path / "masks", fmt)
    out = tmp_path / "data"
    r = run_cli("generate", str(root), "--format", fmt, "--masks", str(masks), "--out", str(out), "--new-views",
                "6", "--size", "48", "--rgb-steps", "60", "--label-steps", "15", "--seed", "2")
    assert r.returncode == 0, (r.stdout[-1500:], r.stderr[-2000:])
    assert "head frame estimated from" in r.stdout and "no ground truth" in r.stdout
    n = validate(out)["train"]
    assert 1 <= n <= 6
    meta = load(out).metadata("train")
    assert meta.yaw.abs().max() <= 120.5  # the rig saw ±90° and the margin is 30°
    card = (out / "README.md").read_text()
    if fmt in ("facescape", "nersemble", "multiface"):  # the dataset's own terms travel with what is derived
        assert "license: other\n" in card and f"license_name: {fmt}\n" in card
    else:  # nothing declared: unknown, and publish refuses to guess
        assert "license: unknown\n" in card
        r = run_cli("publish", str(out), "--repo-id", "someone/data")
        assert r.returncode == 2 and "licence is unknown" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    if fmt == "colmap":  # 1920×1080 views were cropped to the head and resized for the fits
        import json

        work = tmp_path / ".data.work" / "subjects"
        record = json.loads(next(work.glob("*/done.json")).read_text())
        assert len(record["input_crops"]) == len(YAWS) and all(c["size"] == 256 for c in record["input_crops"])
        assert all(c["side"] <= 1080 for c in record["input_crops"])
        assert '"input_crops"' in (out / "README.md").read_text()  # recorded in the dataset's provenance


def test_mixed_or_unknown_formats_are_one_line(head, tmp_path):
    rig = make_rig(head, [-30, 0, 30], 64, 48, similarity(3))
    root = tmp_path / "caps" / "both"
    write_nerfstudio(root, rig, "OPENCV")
    write_facescape(root, rig)
    r = run_cli("generate", str(root), "--out", str(tmp_path / "o"))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "both" in lines[0], r.stderr
    r = run_cli("generate", str(root), "--format", "vicon", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "vicon" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "o").exists()


def test_restricted_captures_cannot_go_out_as_cc0(head, tmp_path):
    rig = make_rig(head, YAWS, 128, 96, similarity(5))
    root = tmp_path / "caps" / "fs"
    write_facescape(root, rig)
    masks = _masks_for(root, rig, tmp_path / "masks", "facescape")
    r = run_cli("generate", str(root), "--masks", str(masks), "--out", str(tmp_path / "o"), "--license", "cc0-1.0")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "other:facescape" in lines[0] and "cc0-1.0" in lines[0], r.stderr
    assert not (tmp_path / "o").exists()
