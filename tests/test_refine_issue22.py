"""The refinement's #22 parts on their own: closed-form label votes, new-view framing, RGB fidelity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facebench.captures import Camera
from facebench.labels import FACEBENCH, IGNORE
from facebench.pose import Pose, look_at_head, similarity
from generators.gaussians.model import GaussianModel
from generators.refine.config import LiftConfig, ViewSampling
from generators.refine.fidelity import head_psnr_ssim
from generators.refine.inputs import SubjectView
from generators.refine.lift import vote_labels
from generators.refine.subject import new_view_focal
from generators.refine.views import sample_cameras


def _camera(size: int = 48) -> Camera:
    K = np.array([[60.0, 0, size / 2], [0, 60.0, size / 2], [0, 0, 1]])
    return Camera(K=K, world_to_camera=look_at_head(Pose(0, 0, 0), 1.0), width=size, height=size)


def test_votes_give_each_gaussian_the_class_of_the_pixels_it_made():
    """A wall of Gaussians seen head-on: the left half of the mask says l_eye, the right half nose. Each
    Gaussian's voted class is the one under its centre; an unlabelled view (all 255) changes nothing."""
    xs, ys = np.meshgrid(np.linspace(-0.3, 0.3, 9), np.linspace(-0.3, 0.3, 9))
    pts = torch.tensor(np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)], 1))
    model = GaussianModel.from_points(pts, scales=0.03, opacity=0.9)
    cam = _camera()
    mask = np.full((48, 48), FACEBENCH.names.index("nose"), np.uint8)
    mask[:, :24] = FACEBENCH.names.index("l_eye")
    views = [SubjectView("a", cam, np.zeros((48, 48, 3), np.uint8), mask),
             SubjectView("b", cam, np.zeros((48, 48, 3), np.uint8), np.full((48, 48), IGNORE, np.uint8))]
    cfg = LiftConfig(renderer="torch", device="cpu", class_balance=0.0)
    voted = vote_labels(model, views, FACEBENCH, cfg)
    probs = voted.features.exp()
    assert torch.allclose(probs.sum(1), torch.ones(len(pts)), atol=1e-5)  # log-probabilities
    cls = probs.argmax(1).numpy()
    u = cam.K[0, 0] * pts[:, 0].numpy() / 1.0 + 24  # image column of each centre (the camera looks down +z)
    clear = np.abs(u - 24) > 3
    want = np.where(u < 24, FACEBENCH.names.index("l_eye"), FACEBENCH.names.index("nose"))
    assert (cls[clear] == want[clear]).all()
    assert probs[clear].max(1).values.min() > 0.8  # decided, not a coin toss


def test_new_views_frame_the_head_whatever_the_world_scale():
    """frame_height: the focal length puts 0.33 m at the head origin across the image height, in any world
    scale (a capture in millimetres gets the same pixels as one in metres)."""
    vs = ViewSampling(n_views=8, distance_jitter=0.0, focal_jitter=0.0, within_coverage=False)
    for scale in (1.0, 1000.0):
        h2w = similarity(np.eye(3), scale, np.array([0.1, -2.0, 3.0]) * scale)
        distance = 0.85 * scale
        f = new_view_focal(vs, distance, h2w, 256, input_focal=999.0)
        assert f == pytest.approx(0.5 * 256 * 0.85 / (0.5 * 0.33), rel=1e-9)
        for _, cam in sample_cameras(vs, 0, h2w, distance, f, 256):
            depth = (cam.world_to_camera @ np.append(h2w[:3, 3], 1.0))[2]  # the head origin, on the axis
            assert depth == pytest.approx(distance)
            assert cam.K[1, 1] * 0.5 * 0.33 * scale / depth == pytest.approx(128.0)  # half the frame height
    keep = ViewSampling(frame_height=None)
    assert new_view_focal(keep, 0.85, np.eye(4), 256, input_focal=321.0) == 321.0


def test_head_fidelity_ignores_the_backdrop_and_falls_with_noise():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    head = np.zeros((64, 64), bool)
    head[16:48, 16:48] = True
    other_backdrop = np.where(head[..., None], truth, 255 - truth)
    psnr, ssim = head_psnr_ssim(other_backdrop, truth, head)
    assert psnr == 100.0 and ssim == pytest.approx(1.0, abs=1e-4)
    noisy = np.clip(truth.astype(int) + rng.normal(0, 20, truth.shape), 0, 255).astype(np.uint8)
    p1, s1 = head_psnr_ssim(noisy, truth, head)
    noisier = np.clip(truth.astype(int) + rng.normal(0, 60, truth.shape), 0, 255).astype(np.uint8)
    p2, s2 = head_psnr_ssim(noisier, truth, head)
    assert 20 < p1 < 30 and p2 < p1 - 6 and s2 < s1 < 1
    assert all(np.isnan(head_psnr_ssim(noisy, truth, np.zeros_like(head))))


def test_region_table_keeps_the_refined_labels_when_the_parser_cannot_label_new_views():
    """A mask folder (or the truth masks of the ceiling row) labels no new view: the by-region table at
    |yaw| ≥ 60° still scores the refined labels there, with the initial column NaN, not dropped."""
    from facebench.metrics import Evaluation
    from generators.refine.quality import before_after_tables

    nose, skin = FACEBENCH.names.index("nose"), FACEBENCH.names.index("skin")
    truth = np.full((8, 8), skin, np.uint8)
    truth[2:6, 2:6] = nose
    refined = truth.copy()
    refined[2:4, 2:6] = skin  # half the nose missed: F1 = 2·8/(8 + 16) = 2/3
    q = {k: Evaluation(labels=FACEBENCH) for k in ("input/initial", "input/refined", "novel/initial",
                                                   "novel/refined")}
    q["novel/refined"].add(refined, truth, "v0", "profile", 80.0)
    _, by_region = before_after_tables(q)
    row = by_region[(by_region["views"] == "novel") & (by_region["region"] == "nose")].iloc[0]
    assert row["refined_f1"] == pytest.approx(2 / 3) and np.isnan(row["initial_f1"])
