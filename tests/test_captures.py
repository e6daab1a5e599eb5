import json

import numpy as np
import pytest
from PIL import Image

from facebench.captures import Camera, Capture, View, read_colmap, read_transforms, write_transforms
from facebench.errors import InvalidCapture
from facebench.pose import Pose, look_at_head


def _capture(tmp_path, n=3):
    K = np.array([[100.0, 0, 32], [0, 110.0, 30], [0, 0, 1]])
    views = []
    for i in range(n):
        w2c = look_at_head(Pose(-60 + 60 * i, 10 * i, 0), 3.0)
        img = tmp_path / "images" / f"v{i}.png"
        img.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((60, 64, 3), i, np.uint8)).save(img)
        lab = tmp_path / "masks" / f"v{i}.png"
        lab.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((60, 64), i, np.uint8)).save(lab)
        views.append(View(id=f"v{i}", camera=Camera(K, w2c, 64, 60), image_path=img, label_path=lab))
    return Capture(views=views, subject="alice", head_to_world=np.eye(4), meta={"seed": 3})  # built in the head frame


def test_transforms_round_trip(tmp_path):
    cap = _capture(tmp_path)
    write_transforms(cap, tmp_path / "transforms.json")
    back = read_transforms(tmp_path)
    assert back.subject == "alice" and back.meta["seed"] == 3
    for a, b in zip(cap.views, back.views, strict=True):
        np.testing.assert_allclose(a.camera.world_to_camera, b.camera.world_to_camera, atol=1e-12)
        np.testing.assert_allclose(a.camera.K, b.camera.K)
        assert b.load_image().shape == (60, 64, 3)
        assert b.load_labels().dtype == np.uint8
        assert back.pose_of(b).yaw == pytest.approx(cap.pose_of(a).yaw)


def test_opengl_convention_on_disk(tmp_path):
    """A camera looking down world -z in OpenGL must look down +z_cam in OpenCV."""
    cap = _capture(tmp_path, n=1)
    write_transforms(cap, tmp_path / "transforms.json")
    doc = json.loads((tmp_path / "transforms.json").read_text())
    c2w_gl = np.array(doc["frames"][0]["transform_matrix"])
    cam = cap.views[0].camera
    # OpenGL's -z axis (viewing direction) equals OpenCV's +z axis, in world coordinates.
    np.testing.assert_allclose(-c2w_gl[:3, 2], cam.camera_to_world[:3, 2], atol=1e-12)
    np.testing.assert_allclose(c2w_gl[:3, 1], -cam.camera_to_world[:3, 1], atol=1e-12)
    # The head origin projects to the principal point.
    uv, z = cam.project(np.zeros((1, 3)))
    np.testing.assert_allclose(uv[0], [32, 30], atol=1e-9)
    assert z[0] == pytest.approx(3.0)


def test_colmap_import(tmp_path):
    (tmp_path / "sparse").mkdir()
    (tmp_path / "sparse" / "cameras.txt").write_text("# c\n1 PINHOLE 64 48 50 52 32 24\n")
    # identity rotation, camera 2 units in front: t = (0,0,2)
    (tmp_path / "sparse" / "images.txt").write_text("# i\n1 1 0 0 0 0 0 2 1 a.png\n\n")
    cap = read_colmap(tmp_path / "sparse")
    cam = cap.views[0].camera
    assert cam.K[0, 0] == 50 and cam.K[1, 1] == 52 and (cam.width, cam.height) == (64, 48)
    np.testing.assert_allclose(cam.center, [0, 0, -2])
    assert cap.views[0].image_path == tmp_path / "images" / "a.png"


def test_bad_captures_name_the_file(tmp_path):
    (tmp_path / "transforms.json").write_text("{ nope")
    with pytest.raises(InvalidCapture, match="transforms.json: not valid JSON"):
        read_transforms(tmp_path)
    (tmp_path / "transforms.json").write_text(json.dumps({"frames": [{"file_path": "a.png"}]}))
    with pytest.raises(InvalidCapture, match="transform_matrix"):
        read_transforms(tmp_path)
    (tmp_path / "sparse").mkdir()
    (tmp_path / "sparse" / "cameras.txt").write_text("1 FISHEYE 64 48 50 32 24\n")
    (tmp_path / "sparse" / "images.txt").write_text("")
    with pytest.raises(InvalidCapture, match="unsupported camera model FISHEYE"):
        read_colmap(tmp_path / "sparse")
