import numpy as np
import pytest

from facebench.pose import (
    Pose,
    look_at_head,
    pose_bin,
    pose_bins_array,
    pose_to_rotation,
    rotation_to_pose,
    view_pose,
)


@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (35, -20, 5), (-120, 50, -10), (179, 10, 0), (-90, 0, 30)])
def test_rotation_round_trip(yaw, pitch, roll):
    p = rotation_to_pose(pose_to_rotation(Pose(yaw, pitch, roll)))
    assert (p.yaw, p.pitch, p.roll) == pytest.approx((yaw, pitch, roll), abs=1e-9)


def test_positive_yaw_puts_camera_on_subjects_left():
    # Head frame: x toward the subject's left. A camera seeing yaw +90 sits at +x.
    w2c = look_at_head(Pose(90, 0, 0), distance=2.0)
    center = -w2c[:3, :3].T @ w2c[:3, 3]
    assert center == pytest.approx([2.0, 0, 0], abs=1e-9)
    # Positive pitch: camera above the head (head y points down).
    w2c = look_at_head(Pose(0, 30, 0), distance=2.0)
    assert (-w2c[:3, :3].T @ w2c[:3, 3])[1] < 0


def test_view_pose_with_moved_head():
    h2w = np.eye(4)
    h2w[:3, :3] = pose_to_rotation(Pose(20, 0, 0)).T
    h2w[:3, 3] = [0.3, -0.1, 5.0]
    w2c = look_at_head(Pose(-40, 15, 3), 1.5, h2w)
    p = view_pose(w2c, h2w)
    assert (p.yaw, p.pitch, p.roll) == pytest.approx((-40, 15, 3), abs=1e-9)


def test_pose_bins():
    assert [pose_bin(y) for y in (0, -29.9, 30, 59, -60, 99.9, 100, 180, -180, 200)] == [
        "frontal", "frontal", "three_quarter", "three_quarter", "profile", "profile", "rear", "rear", "rear",
        "rear",
    ]
    ys = np.array([0, -45, 75, 120, 359])
    assert list(pose_bins_array(ys)) == [pose_bin(y) for y in ys]
