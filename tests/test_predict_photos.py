"""`facebench predict MODEL photos/`: any folder of JPEG/PNG photos, label maps and overlays with a legend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import run_cli
from PIL import Image

from facebench.imageio import read_mask
from facebench.labels import FACEBENCH

SHIPPED = Path(__file__).resolve().parent.parent / "baselines" / "weights" / "bisenet-frontal"


def _photos(folder: Path) -> dict[str, tuple[int, int]]:
    """Two synthetic heads as a JPEG and a non-square PNG (what a user's photos folder holds), plus a text file."""
    from facebench.pose import Pose
    from generators.heads import camera_for_pose, render_view, sample_head

    folder.mkdir(parents=True)
    sizes = {}
    for k, (name, w, h) in enumerate((("front.JPG", 160, 160), ("side.png", 200, 140))):
        cam = camera_for_pose(Pose(25.0 * k, 0.0), size=max(w, h))
        rgb = render_view(sample_head(40 + k), cam).rgb[: h, : w]
        Image.fromarray(rgb).save(folder / name, quality=92)
        sizes[Path(name).stem] = (h, w)
    (folder / "notes.txt").write_text("not an image")
    return sizes


def test_predict_a_folder_of_photos(tmp_path):
    sizes = _photos(tmp_path / "photos")
    r = run_cli("predict", str(SHIPPED), str(tmp_path / "photos"), "--out", str(tmp_path / "masks"))
    assert r.returncode == 0, r.stderr[-2000:]
    for stem, shape in sizes.items():
        mask = read_mask(tmp_path / "masks" / f"{stem}.png")
        assert mask.shape == shape and mask.max() < FACEBENCH.num_classes
        assert {1, 17} & set(np.unique(mask).tolist())  # skin or hair found on a head
        overlay = Image.open(tmp_path / "masks" / "overlays" / f"{stem}.png")
        assert overlay.size[0] > 400 and np.asarray(overlay).std() > 10
    assert not (tmp_path / "masks" / "notes.png").exists()


def test_bad_photo_folders_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    r = run_cli("predict", str(SHIPPED), str(tmp_path / "empty"), "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and "no .jpg, .jpeg or .png images here" in r.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    r = run_cli("predict", str(SHIPPED), str(tmp_path / "broken"), "--out", str(tmp_path / "m"))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "a.jpg" in lines[0] and "not a readable image" in lines[0]
    r = run_cli("predict", str(SHIPPED), "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and "either a folder of photos or --data" in r.stderr


def test_a_phone_photo_is_parsed_upright_by_its_exif_orientation(tmp_path):
    """A portrait phone photo: landscape pixels plus EXIF orientation 6 (turn 90° clockwise to view). Parsed as
    stored the face would lie on its side; the label map must match the photo as viewers show it."""
    from facebench.pose import Pose
    from generators.heads import camera_for_pose, render_view, sample_head

    upright = render_view(sample_head(7), camera_for_pose(Pose(0.0, 0.0), size=200)).rgb[:, 25:175]  # 200×150
    (tmp_path / "phone").mkdir()
    (tmp_path / "plain").mkdir()
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote: 150 high
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "phone" / "portrait.jpg", quality=95, exif=exif)
    Image.fromarray(upright).save(tmp_path / "plain" / "portrait.png")
    for name in ("phone", "plain"):
        r = run_cli("predict", str(SHIPPED), str(tmp_path / name), "--out", str(tmp_path / f"{name}-masks"))
        assert r.returncode == 0, r.stderr[-2000:]
    phone = read_mask(tmp_path / "phone-masks" / "portrait.png")
    plain = read_mask(tmp_path / "plain-masks" / "portrait.png")
    assert phone.shape == plain.shape == (200, 150)
    assert (phone == plain).mean() > 0.9  # the same parse, up to JPEG noise
