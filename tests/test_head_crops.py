"""Large frames with a small head (a real rig): the fits' crop frames the head as the parser was trained, and
the parser labels that crop again instead of its first look at the whole frame being cut down to it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

from facebench.captures import Camera, read_capture
from facebench.labels import FACEBENCH
from facebench.metrics import confusion_matrix, iou_f1
from facebench.pose import similarity
from generators.refine.inputs import SubjectView, crop_to_head, frame_box, head_frame, load_views, relabel_crops


def _look_at_origin(distance: float, f: float, w: int, h: int) -> Camera:
    """A camera on the +z axis looking at the world origin (OpenCV: x right, y down, z forward)."""
    w2c = np.eye(4)
    w2c[:3, :3] = np.diag([1.0, -1.0, -1.0])
    w2c[2, 3] = distance
    return Camera(np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]]), w2c, w, h)


def _view(cam: Camera) -> SubjectView:
    return SubjectView(id="v", camera=cam, image=np.zeros((cam.height, cam.width, 3), np.uint8),
                       mask=np.zeros((cam.height, cam.width), np.uint8))


def test_frame_box_frames_metres_at_the_head_origin_in_any_world_scale():
    cam = _look_at_origin(2.0, 1000.0, 1920, 1080)
    x, y, side = frame_box(_view(cam), np.eye(4), 0.33)
    assert (x, y) == pytest.approx((960, 540)) and side == pytest.approx(1000 * 0.33 / 2.0)
    # a world in centimetres, the head 10 cm to the camera's right: same framing in pixels, centre moved
    h2w = similarity(np.eye(3), 100.0, np.array([10.0, 0.0, 0.0]))
    cam_cm = _look_at_origin(200.0, 1000.0, 1920, 1080)
    x, y, side = frame_box(_view(cam_cm), h2w, 0.33)
    assert x == pytest.approx(960 + 1000 * 10 / 200) and side == pytest.approx(1000 * 0.33 / 2.0)
    behind = _look_at_origin(-2.0, 1000.0, 1920, 1080)  # the head origin behind the camera: no box (a fallback)
    assert frame_box(_view(behind), np.eye(4), 0.33) is None


def test_crop_to_a_frame_box_keeps_the_head_origin_where_the_camera_projects_it():
    cam = _look_at_origin(2.0, 1000.0, 1920, 1080)
    v, crop = crop_to_head(_view(cam), 256, box=frame_box(_view(cam), np.eye(4), 0.33))
    assert crop is not None and crop["side"] == 165 and v.image.shape == (256, 256, 3) and v.image.flags.writeable
    p = v.camera.K @ v.camera.world_to_camera[:3, 3]  # the world origin in the crop's pixels
    assert p[:2] / p[2] == pytest.approx((128, 128), abs=1.0)


@pytest.fixture(scope="module")
def wide_capture(tmp_path_factory):
    """One synthetic subject seen from near-frontal cameras with a wide lens: the head is about a quarter of
    a 448² frame, as in a studio rig's full frames."""
    from generators.heads.capture import write_captures
    from generators.heads.rig import RigConfig

    root = tmp_path_factory.mktemp("wide")
    rig = RigConfig(views=6, yaw_range=(-40.0, 40.0), pitch_range=(-10.0, 10.0), fov=50.0, mode="spiral")
    return write_captures(root, subjects=1, rig=rig, size=448, seed=11, supersample=1)[0]


def _mean_f1(views: list[SubjectView]) -> float:
    cm = sum(confusion_matrix(v.truth, v.mask, FACEBENCH.num_classes) for v in views)
    _, f1 = iou_f1(cm)
    present = cm.sum(1)[1:] > 0
    return float(np.nanmean(f1[1:][present]))


def test_the_parser_labels_head_crops_far_better_than_its_first_look_at_the_whole_frame(wide_capture):
    from facebench.app.generate import ParserSpec

    parser = ParserSpec()()  # the shipped BiSeNet
    capture = read_capture(wide_capture)
    views = load_views(capture, parser)
    frame, _ = head_frame(capture, views, "capture")
    cropped = [crop_to_head(v, 256, box=frame_box(v, frame, 0.33)) for v in views]
    first = [v for v, _ in cropped]
    again = relabel_crops(first, [c is not None for _, c in cropped], parser)
    assert all(c is not None and c["side"] < 448 / 2 for _, c in cropped)  # a head-sized square, not the frame
    before, after = _mean_f1(first), _mean_f1(again)
    assert after >= before + 0.2 and after >= 0.6, (before, after)
    assert all(a.truth is b.truth for a, b in zip(first, again, strict=True))  # only the masks are re-made


def test_generate_on_large_frames_crops_to_the_parser_framing(wide_capture, tmp_path):
    out = tmp_path / "data"
    r = run_cli("generate", str(wide_capture.parent), "--out", str(out), "--head-frame", "capture", "--new-views",
                "4", "--size", "48", "--rgb-steps", "40", "--label-steps", "10", "--seed", "1")
    assert r.returncode == 0, (r.stdout[-1500:], r.stderr[-2000:])
    record = json.loads(next((tmp_path / ".data.work" / "subjects").glob("*/done.json")).read_text())
    sides = [c["side"] for c in record["input_crops"]]
    # 0.33 m at the head origin through a 50° lens at 0.85 m: 448 · 0.33 / (2 · 0.85 · tan 25°) ≈ 186 px
    assert len(sides) == 6 and all(abs(s - 186) <= 12 for s in sides), sides


def test_silhouette_head_box_finds_the_head_above_the_neck():
    from generators.refine.localise import HEAD_FILL, silhouette_head_box

    m = np.zeros((400, 600), np.uint8)
    yy, xx = np.mgrid[:400, :600]
    m[(yy - 100) ** 2 + (xx - 300) ** 2 <= 50**2] = 1  # a head of diameter 100 centred at (300, 100)
    m[150:220, 280:320] = 14  # the neck
    m[220:400, 100:500] = 16  # shoulders and chest, far wider than the head
    x, y, side = silhouette_head_box(m)
    assert x == pytest.approx(300.5, abs=2) and 95 <= y <= 130 and side == pytest.approx(101 / HEAD_FILL, rel=0.1)
    assert silhouette_head_box(np.zeros((400, 600), np.uint8)) is None  # nothing there: no guess


def test_generate_estimates_the_head_frame_on_large_frames(wide_capture, tmp_path):
    """The parser's first look at a wide frame cannot place the head; looking again at the head finds it."""
    from facebench.headframe import frame_angle

    out = tmp_path / "data"
    r = run_cli("generate", str(wide_capture.parent), "--out", str(out), "--new-views", "4", "--size", "48",
                "--rgb-steps", "40", "--label-steps", "10", "--seed", "1")
    assert r.returncode == 0, (r.stdout[-1500:], r.stderr[-2000:])
    record = json.loads(next((tmp_path / ".data.work" / "subjects").glob("*/done.json")).read_text())
    frame = record["head_frame"]
    assert frame["mode"] == "auto" and frame["angle_to_declared_deg"] < 10, frame
    declared = read_capture(wide_capture).head_to_world
    assert frame_angle(np.array(frame["head_to_world"]), declared) < 10
    assert 0.85 < frame["scale"] < 1.15  # the synthetic world is in metres
