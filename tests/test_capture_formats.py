"""Every capture format facebench reads, written from a synthetic head by ``capture_fixtures`` and read back:
cameras to 1e-6, views, distortion (undistorted pixels against the pinhole render), detection, and one line
for each kind of broken input."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from capture_fixtures import (
    SERIALS,
    make_rig,
    similarity,
    write_colmap,
    write_facescape,
    write_multiface,
    write_nerfstudio,
    write_nersemble,
)
from PIL import Image

from facebench.captures import (
    READERS,
    Camera,
    Distortion,
    detect_format,
    find_captures,
    read_capture,
    read_colmap,
    write_transforms,
)
from facebench.errors import FacebenchError, InvalidCapture, InvalidConfig


@pytest.fixture(scope="module")
def head():
    from generators.heads import sample_head

    return sample_head(11)


@pytest.fixture(scope="module")
def rig(head):
    """4 views at 96×64 (non-square); the head placed in the world by a random rigid motion."""
    return make_rig(head, [-50, -15, 20, 55], 96, 64, similarity(1))


@pytest.fixture(scope="module")
def wide(head):
    """3 views at 128×96 through a wide lens (70° vertical) close to the head: distortion moves pixels."""
    return make_rig(head, [-40, 0, 40], 128, 96, similarity(7), fov=70, distance=0.45)


def same_cameras(got: list[Camera], want: list[Camera]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.K, w.K, atol=1e-6)
        np.testing.assert_allclose(g.world_to_camera, w.world_to_camera, atol=1e-6)
        assert (g.width, g.height) == (w.width, w.height)


def close(a: np.ndarray, b: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean absolute difference (grey levels) over ``valid`` pixels."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(-1)
    return float(d[valid].mean() if valid is not None else d.mean())


def interior(shape: tuple[int, ...], margin: float = 0.1) -> np.ndarray:
    h, w = shape[:2]
    m = np.zeros((h, w), bool)
    m[int(h * margin): h - int(h * margin), int(w * margin): w - int(w * margin)] = True
    return m


# ---------------------------------------------------------------------------------------------------------------
# nerfstudio


@pytest.mark.parametrize("shared", [True, False])
def test_nerfstudio_intrinsics_global_or_per_frame_and_valid_masks(rig, tmp_path, shared):
    cams = write_nerfstudio(tmp_path, rig, masks=True, shared_intrinsics=shared)
    assert detect_format(tmp_path) == "nerfstudio"
    cap = read_capture(tmp_path)
    same_cameras([v.camera for v in cap.views], cams)
    assert cap.head_to_world is None  # the world frame is arbitrary and undeclared
    v = cap.views[1]
    assert v.distortion is None
    np.testing.assert_array_equal(v.load_image(), rig.rgb[1])
    valid = v.load_valid()
    assert valid.dtype == bool and valid.shape == (64, 96)
    assert not valid[:, :24].any() and valid[:, 24:].all()  # nerfstudio masks: 0 = ignore


@pytest.mark.parametrize("model,coeffs", [
    ("OPENCV", {"k1": -0.25, "k2": 0.08, "p1": 0.002, "p2": -0.001, "k3": -0.01}),
    ("OPENCV_FISHEYE", {"k1": 0.05, "k2": -0.02, "k3": 0.01, "k4": -0.005}),
])
def test_nerfstudio_distortion_is_undistorted_on_load(wide, tmp_path, model, coeffs):
    rig = wide
    write_nerfstudio(tmp_path, rig, model=model, coeffs=coeffs, masks=True, labels=True)
    cap = read_capture(tmp_path)
    d = cap.views[0].distortion
    assert d.model == model
    order = ("k1", "k2", "k3", "k4") if model == "OPENCV_FISHEYE" else ("k1", "k2", "p1", "p2", "k3")
    assert d.params == tuple(coeffs[k] for k in order)
    for i in (0, 2):
        v = cap.views[i]
        raw = np.array(Image.open(v.image_path))
        got, inside = v.load_image(), interior(rig.rgb[i].shape)
        assert close(got, rig.rgb[i], inside) < 0.35 * close(raw, rig.rgb[i], inside)
        assert close(got, rig.rgb[i], inside) < 4.0
        labels = v.load_labels()  # nearest: the class ids survive, only edges may move by a pixel
        assert (labels[inside] == rig.labels[i][inside]).mean() > 0.97
        valid = v.load_valid()
        rows = slice(10, 86)  # the band down the left edge (0 = ignore, columns < 32), undistorted
        assert not valid[rows, 12:28].any() and valid[rows, 36:116].all()
    # facebench's writer keeps the lens, the masks and the labels
    write_transforms(cap, tmp_path / "again.json")
    again = read_capture(tmp_path / "again.json")
    assert [(v.distortion, v.valid_path, v.label_path) for v in again.views] == \
        [(v.distortion, v.valid_path, v.label_path) for v in cap.views]


# ---------------------------------------------------------------------------------------------------------------
# COLMAP

MODELS = {  # COLMAP model → (its distortion coefficients, the Distortion facebench must make of them)
    "SIMPLE_PINHOLE": ((), None),
    "PINHOLE": ((), None),
    "SIMPLE_RADIAL": ((-0.1,), ("OPENCV", (-0.1, 0, 0, 0))),
    "RADIAL": ((-0.1, 0.02), ("OPENCV", (-0.1, 0.02, 0, 0))),
    "OPENCV": ((-0.1, 0.02, 0.001, -0.002), ("OPENCV", (-0.1, 0.02, 0.001, -0.002))),
    "OPENCV_FISHEYE": ((0.03, -0.01, 0.004, -0.001), ("OPENCV_FISHEYE", (0.03, -0.01, 0.004, -0.001))),
    "FULL_OPENCV": ((-0.1, 0.02, 0.001, -0.002, 0.003, 0.01, -0.004, 0.002),
                    ("OPENCV", (-0.1, 0.02, 0.001, -0.002, 0.003, 0.01, -0.004, 0.002))),
    "SIMPLE_RADIAL_FISHEYE": ((0.03,), ("OPENCV_FISHEYE", (0.03, 0, 0, 0))),
    "RADIAL_FISHEYE": ((0.03, -0.01), ("OPENCV_FISHEYE", (0.03, -0.01, 0, 0))),
}  # fmt: skip


@pytest.mark.parametrize("binary", [False, True], ids=["txt", "bin"])
@pytest.mark.parametrize("model", list(MODELS))
def test_colmap_every_model_text_and_binary(head, tmp_path, model, binary):
    rig = make_rig(head, [-40, 0, 40], 64, 48, similarity(2, scale=3.0), labels=False)
    coeffs, want = MODELS[model]
    cams = write_colmap(tmp_path, rig, model, coeffs, binary=binary, points=binary)
    assert detect_format(tmp_path) == "colmap"
    cap = read_capture(tmp_path)
    same_cameras([v.camera for v in cap.views], cams)
    d = cap.views[0].distortion
    assert d is None if want is None else (d.model, d.params) == want
    assert cap.views[0].image_path == tmp_path / "images" / "cam00.png"
    assert cap.meta == {"format": "colmap", "model": "sparse/0"} and cap.head_to_world is None


def test_colmap_binary_opencv_1920x1080(head, tmp_path):
    """The one full-size fixture: non-square 1920×1080 cameras, OPENCV distortion, a binary model."""
    rig = make_rig(head, [-30, 10, 45], 1920, 1080, similarity(3, scale=0.5), fov=50, distance=0.5, labels=False)
    coeffs = (-0.25, 0.06, 0.0008, -0.0005)
    cams = write_colmap(tmp_path, rig, "OPENCV", coeffs, distortion=Distortion("OPENCV", coeffs), binary=True)
    cap = read_capture(tmp_path)
    same_cameras([v.camera for v in cap.views], cams)
    v = cap.views[1]
    assert (v.camera.width, v.camera.height) == (1920, 1080) and v.distortion.params == coeffs
    got = v.load_image()
    raw = np.array(Image.open(v.image_path))
    inside = interior(got.shape, 0.05)
    assert close(got, rig.rgb[1], inside) < 0.3 * close(raw, rig.rgb[1], inside)
    assert close(got, rig.rgb[1], inside) < 2.5


def test_colmap_model_folder_and_images_dir(rig, tmp_path):
    cams = write_colmap(tmp_path / "proj", rig, "PINHOLE", binary=False, sub="sparse")
    cap = read_colmap(tmp_path / "proj" / "sparse")  # the model folder itself
    same_cameras([v.camera for v in cap.views], cams)
    assert cap.views[0].image_path == tmp_path / "proj" / "images" / "cam00.png"
    other = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "proj" / "images", other)
    assert read_colmap(tmp_path / "proj", images_dir=other).views[0].image_path == other / "cam00.png"


# ---------------------------------------------------------------------------------------------------------------
# FaceScape, NeRSemble, Multiface


@pytest.mark.parametrize("padded_k", [False, True])
def test_facescape_valid_views_and_distortion(wide, tmp_path, padded_k):
    rig = wide
    dist = (-0.2, 0.05, 0.001, 0.0005, 0.0)
    folder = tmp_path / "122" / "1_neutral"
    cams = write_facescape(folder, rig, dist, invalid=(1,), padded_k=padded_k)
    assert detect_format(folder) == "facescape"
    cap = read_capture(folder)
    same_cameras([v.camera for v in cap.views], cams)
    assert [v.image_path.name for v in cap.views] == ["0.jpg", "2.jpg"]  # view 1 is marked invalid
    assert cap.subject == "122-1_neutral" and cap.meta["invalid_views"] == [1]
    assert cap.meta["license"] == "other:facescape"  # the dataset's terms travel with it
    v = cap.views[1]
    assert v.distortion == Distortion("OPENCV", dist)
    raw = np.array(Image.open(v.image_path))
    inside = interior(raw.shape)
    assert close(v.load_image(), rig.rgb[2], inside) < 0.5 * close(raw, rig.rgb[2], inside)


def test_nersemble_v1_full_resolution_intrinsics_and_frames(head, tmp_path):
    rig = make_rig(head, [-60, -20, 20, 60], 55, 80, similarity(4), labels=False)  # 1/40 of 2200×3208
    cams = dict(zip(SERIALS, write_nersemble(tmp_path / "018", rig, "v1", frames=(0, 3)), strict=False))
    assert detect_format(tmp_path / "018") == "nersemble"
    cap = read_capture(tmp_path / "018")
    assert [v.id for v in cap.views] == [f"018-cam_{s}" for s in sorted(SERIALS[:4])]
    same_cameras([v.camera for v in cap.views], [cams[v.id.split("cam_")[1]] for v in cap.views])
    assert cap.meta == {"format": "nersemble", "sequence": "EXP-1-head", "frame": 0, "license": "other:nersemble"}
    third = read_capture(tmp_path / "018", frame=3)
    assert third.views[0].image_path.parent.parent.name == "frame_00003"
    np.testing.assert_array_equal(cap.views[0].load_image(), rig.rgb[SERIALS.index(sorted(SERIALS[:4])[0])])
    with pytest.raises(InvalidCapture, match="no frame_00001"):
        read_capture(tmp_path / "018", frame=1)


def test_nersemble_benchmark_per_serial_intrinsics(rig, tmp_path):
    cams = write_nersemble(tmp_path / "388", rig, "benchmark")
    cap = read_capture(tmp_path / "388")
    by_serial = dict(zip(SERIALS, cams, strict=False))
    same_cameras([v.camera for v in cap.views], [by_serial[v.id.split("cam_")[1]] for v in cap.views])


@pytest.mark.parametrize("sizes_in_krt", [False, True])
def test_multiface_krt_millimetres_expression_frame(head, tmp_path, sizes_in_krt):
    rig = make_rig(head, [-45, -15, 15, 45], 80, 96, similarity(5, scale=1000.0), fov=70, distance=0.45,
                   labels=False)  # a portrait rig in millimetres
    dist = (-0.3, 0.08, 0.0, 0.001, 0.0)
    entity = tmp_path / "m--20180227--0000--6795937--GHS"
    cams = write_multiface(entity, rig, dist, sizes_in_krt=sizes_in_krt)
    assert detect_format(entity) == "multiface"
    cap = read_capture(entity)
    same_cameras([v.camera for v in cap.views], cams)
    assert cap.meta == {"format": "multiface", "expression": "E001_Neutral_Eyes_Open", "frame": "000102",
                        "license": "other:multiface",
                        "tracked_head_pose": "tracked_mesh/E001_Neutral_Eyes_Open/000102_transform.txt"}
    assert read_capture(entity, frame=105).views[0].image_path.name == "000105.png"
    assert len(read_capture(entity, expression="E002_Swallow")) == 2
    v = cap.views[2]
    raw = np.array(Image.open(v.image_path))
    inside = interior(raw.shape)
    assert close(v.load_image(), rig.rgb[2], inside) < 0.4 * close(raw, rig.rgb[2], inside)


# ---------------------------------------------------------------------------------------------------------------
# the registry


@pytest.fixture(scope="module")
def every_format(tmp_path_factory, head) -> Path:
    """One small capture of each format, side by side."""
    root = tmp_path_factory.mktemp("formats")
    rig = make_rig(head, [-40, 0, 40], 48, 40, similarity(6), labels=False)
    write_nerfstudio(root / "a_nerfstudio", rig)
    write_colmap(root / "b_colmap", rig, "PINHOLE", binary=True)
    write_facescape(root / "c_facescape", rig)
    write_nersemble(root / "d_nersemble", rig, "benchmark")
    write_multiface(root / "e_multiface", rig)
    (root / "notes").mkdir()
    return root


def test_every_format_is_found_detected_and_read(every_format):
    found = find_captures([every_format])
    assert [p.name for p in found] == ["a_nerfstudio", "b_colmap", "c_facescape", "d_nersemble", "e_multiface"]
    for p in found:
        fmt = detect_format(p)
        assert p.name.endswith(fmt) and fmt in READERS
        assert len(read_capture(p)) == 3 and len(read_capture(p, fmt)) == 3
    assert find_captures([every_format], format="colmap") == [every_format / "b_colmap"]
    assert find_captures([every_format / "e_multiface"]) == [every_format / "e_multiface"]


def _one_line(exc: pytest.ExceptionInfo, *fragments: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for f in fragments:
        assert f in msg, (f, msg)


def _json(path: Path, edit) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _sub(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, (old, text[:200])
    path.write_text(text.replace(old, new, count))


def _truncate(path: Path, n: int) -> None:
    path.write_bytes(path.read_bytes()[:-n])


def _colmap_model_id(path: Path, model_id: int) -> None:
    b = bytearray(path.read_bytes())
    struct.pack_into("<i", b, 12, model_id)
    path.write_bytes(bytes(b))


def _rt(scale: float = 1.0, zero: bool = False):
    def edit(doc):
        rt = np.array(doc["1_Rt"])
        rt[:, :3] = 0 if zero else rt[:, :3] * scale
        doc["1_Rt"] = rt.tolist()
    return edit


# (folder, how to break it, what the one line must say, and which file it names)
BROKEN = {
    "several formats": ("a_nerfstudio", lambda p, src: shutil.copy(src / "c_facescape" / "params.json", p),
                        "several capture formats here (nerfstudio, facescape)", "a_nerfstudio"),
    "no format": ("notes", lambda p, src: None, "not a capture", "notes"),
    "ns scaled rotation": ("a_nerfstudio", lambda p, src: _json(p / "transforms.json", lambda d: d["frames"][1].update(
        transform_matrix=(np.array(d["frames"][1]["transform_matrix"]) * [[2], [2], [2], [1]]).tolist())),
        "frame 1 'transform_matrix' is not a rotation", "transforms.json"),
    "ns camera model": ("a_nerfstudio", lambda p, src: _json(p / "transforms.json", lambda d: d.update(
        camera_model="EQUIRECTANGULAR")), "unsupported camera model EQUIRECTANGULAR", "transforms.json"),
    "ns k4": ("a_nerfstudio", lambda p, src: _json(p / "transforms.json", lambda d: d.update(k4=0.1)),
              "k4 = 0.1", "transforms.json"),
    "ns malformed": ("a_nerfstudio", lambda p, src: _json(p / "transforms.json", lambda d: d.update(fl_x="wide")),
                     "fl_x must be numbers", "transforms.json"),
    "ns image absent": ("a_nerfstudio", lambda p, src: (p / "images" / "frame_00001.png").unlink(),
                        "image missing", "frame_00001.png"),
    "colmap unsupported model": ("b_colmap", lambda p, src: _colmap_model_id(p / "sparse/0/cameras.bin", 7),
                                 "unsupported camera model FOV", "cameras.bin"),
    "colmap unknown model id": ("b_colmap", lambda p, src: _colmap_model_id(p / "sparse/0/cameras.bin", 42),
                                "unknown camera model id 42", "cameras.bin"),
    "colmap truncated": ("b_colmap", lambda p, src: _truncate(p / "sparse/0/images.bin", 30),
                         "truncated or malformed COLMAP binary model", "images.bin"),
    "colmap missing camera": ("b_colmap", lambda p, src: _truncate_cameras(p), "refers to camera 3", "images.bin"),
    "colmap text malformed": ("b_colmap", lambda p, src: _colmap_text(p, "1 PINHOLE 48 40 x"), "line 1: expected",
                              "cameras.txt"),
    "colmap text FOV": ("b_colmap", lambda p, src: _colmap_text(p, "1 FOV 48 40 50 50 24 20 0.1"),
                        "line 1: unsupported camera model FOV", "cameras.txt"),
    "colmap zero quaternion": ("b_colmap", lambda p, src: _zero_quaternion(p), "quaternion QW QX QY QZ has norm 0",
                               "images.bin"),
    "fs missing Rt": ("c_facescape", lambda p, src: _json(p / "params.json", lambda d: d.pop("1_Rt")),
                      "view 1 has '1_K' but no '1_Rt'", "params.json"),
    "fs malformed K": ("c_facescape", lambda p, src: _json(p / "params.json", lambda d: d.update({"0_K": "eye(3)"})),
                       "'0_K' must be numbers", "params.json"),
    "fs singular Rt": ("c_facescape", lambda p, src: _json(p / "params.json", _rt(zero=True)), "'1_Rt' is singular",
                       "params.json"),
    "fs scaled Rt": ("c_facescape", lambda p, src: _json(p / "params.json", _rt(scale=1.5)), "'1_Rt' is not a rotation",
                     "params.json"),
    "fs image absent": ("c_facescape", lambda p, src: (p / "2.jpg").unlink(), "image missing", "2.jpg"),
    "nersemble missing camera": ("d_nersemble", lambda p, src: shutil.copy(p / f"images/cam_{SERIALS[0]}.png",
                                                                      p / "images/cam_999.png"),
                                 "image cam_999.png has no camera", "camera_params.json"),
    "nersemble non-rotation": ("d_nersemble", lambda p, src: _json(p / "calibration/camera_params.json", lambda d: d[
        "world_2_cam"].update({SERIALS[1]: np.diag([1.0, 1, -1, 1]).tolist()})),
        f"world_2_cam of {SERIALS[1]} is not a rotation", "camera_params.json"),
    "nersemble videos only": ("d_nersemble", lambda p, src: _videos_only(p), "NeRSemble videos", "images"),
    "multiface missing camera": ("e_multiface", lambda p, src: shutil.copytree(
        p / "images/E001_Neutral_Eyes_Open/400002", p / "images/E001_Neutral_Eyes_Open/400099"),
        "images/E001_Neutral_Eyes_Open/400099/ has no camera in KRT", "KRT"),
    "multiface malformed": ("e_multiface", lambda p, src: _sub(p / "KRT", "0.0 0.0 0.0 0.0 0.0", "0.0 0.O 0.0 0.0 0.0"),
                            "line 5: not numbers", "KRT"),
    "multiface truncated": ("e_multiface", lambda p, src: p.joinpath("KRT").write_text(
        "\n".join(p.joinpath("KRT").read_text().splitlines()[:6])), "needs 7 lines after its name", "KRT"),
    "multiface no frames": ("e_multiface", lambda p, src: [f.unlink() for f in p.glob("images/E001*/*/*.png")],
                            "no frame images", "E001_Neutral_Eyes_Open"),
}  # fmt: skip


def _truncate_cameras(p: Path) -> None:
    b = (p / "sparse/0/cameras.bin").read_bytes()
    rec = (len(b) - 8) // 3
    (p / "sparse/0/cameras.bin").write_bytes(struct.pack("<Q", 2) + b[8:8 + 2 * rec])


def _colmap_text(p: Path, camera_line: str) -> None:
    (p / "sparse/0/cameras.bin").unlink()
    (p / "sparse/0/images.bin").unlink()
    (p / "sparse/0/cameras.txt").write_text(camera_line + "\n")
    (p / "sparse/0/images.txt").write_text("1 1 0 0 0 0 0 2 1 cam00.png\n\n")


def _zero_quaternion(p: Path) -> None:
    b = bytearray((p / "sparse/0/images.bin").read_bytes())
    struct.pack_into("<dddd", b, 12, 0, 0, 0, 0)
    (p / "sparse/0/images.bin").write_bytes(bytes(b))


def _videos_only(p: Path) -> None:
    for f in (p / "images").glob("*.png"):
        f.rename(f.with_suffix(".mp4"))


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_captures_fail_in_one_line(every_format, tmp_path, case):
    name, breakage, says, names = BROKEN[case]
    folder = tmp_path / name
    if (every_format / name).is_dir():
        shutil.copytree(every_format / name, folder)
    else:
        folder.mkdir()
    breakage(folder, every_format)
    with pytest.raises(InvalidCapture) as e:
        read_capture(folder)
    _one_line(e, says, names)


def test_bad_format_names_and_options_are_one_line(every_format):
    with pytest.raises(InvalidConfig) as e:
        read_capture(every_format / "a_nerfstudio", "ply")
    _one_line(e, "unknown capture format 'ply'", "colmap, facescape")
    with pytest.raises(InvalidConfig) as e:
        read_capture(every_format / "a_nerfstudio", frame=3)
    _one_line(e, "the nerfstudio format takes no option 'frame'")
    with pytest.raises(FacebenchError) as e:
        find_captures([every_format / "notes"])
    _one_line(e, "no capture here or in its subfolders", "transforms.json", "KRT")
    with pytest.raises(FacebenchError) as e:  # read as the wrong format: that format's own complaint
        read_capture(every_format / "a_nerfstudio", "multiface")
    _one_line(e, "KRT does not exist")
