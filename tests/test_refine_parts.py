"""Stages 3–5 of the refinement on their own: view sampling, label clustering, clean-up."""

import numpy as np
import pytest
import torch

from facebench.errors import InvalidConfig
from facebench.labels import FACEBENCH, IGNORE
from facebench.pose import pose_bin, view_pose
from generators.refine.clustering import argmax_labels, kmeans_labels, nearest_palette
from generators.refine.config import CleanupConfig, ViewSampling
from generators.refine.postprocess import (
    cleanup,
    enforce_sides_3d,
    fill_foreground_holes,
    majority_smooth,
    remove_small_components,
)
from generators.refine.views import sample_cameras, sample_poses


def test_view_sampling_is_seeded_and_covers_every_bin():
    vs = ViewSampling(n_views=16)
    a, b = sample_poses(vs, 3), sample_poses(vs, 3)
    assert a == b and a != sample_poses(vs, 4)
    assert {pose_bin(p.yaw) for p in a} == {"frontal", "three_quarter", "profile", "rear"}
    assert all(-60 <= p.pitch <= 60 for p in a)
    cams = sample_cameras(vs, 3, np.eye(4), distance=2.0, focal=200.0, size=128)
    for pose, cam in cams:
        got = view_pose(cam.world_to_camera)
        assert (got.yaw, got.pitch, got.roll) == pytest.approx((pose.yaw, pose.pitch, pose.roll), abs=1e-6)
        assert 1.8 < np.linalg.norm(cam.center) < 2.2
    with pytest.raises(InvalidConfig, match="pitch range"):
        ViewSampling(pitch_range=(-100, 10))


def test_argmax_and_palette_clustering_recover_classes():
    ids = np.random.default_rng(0).integers(1, 19, (20, 20)).astype(np.uint8)
    alpha = np.ones((20, 20), np.float32)
    alpha[:3] = 0.1
    logits = torch.nn.functional.one_hot(torch.from_numpy(ids.astype(np.int64)), 19).permute(2, 0, 1).float()
    got = argmax_labels(logits, torch.from_numpy(alpha))
    assert (got[:3] == 0).all() and np.array_equal(got[3:], ids[3:])
    colors = FACEBENCH.palette_array[ids].astype(np.float64) / 255
    noisy = colors + np.random.default_rng(1).normal(0, 0.02, colors.shape)
    got = nearest_palette(noisy, alpha, FACEBENCH)
    assert (got[:3] == 0).all() and (got[3:] == ids[3:]).mean() > 0.97


def test_kmeans_names_clusters_by_overlap_with_reference():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 19, (30, 30)).astype(np.uint8)
    weird = rng.random((18, 3))  # an unknown palette
    colors = weird[ids - 1] + rng.normal(0, 0.01, (30, 30, 3))
    alpha = np.ones((30, 30))
    noisy_ref = np.where(rng.random((30, 30)) < 0.2, 1, ids).astype(np.uint8)
    got = kmeans_labels([colors], [alpha], [noisy_ref], 19, seed=0)[0]
    assert (got == ids).mean() > 0.95


def test_small_components_holes_and_smoothing():
    ids = np.zeros((40, 40), np.uint8)
    ids[5:35, 5:35] = 1
    ids[10:12, 10:12] = 4  # a 4-px speck of eye
    ids[20:22, 20:22] = 0  # a hole in the head
    cleaned = remove_small_components(ids, min_frac=5 / ids.size)
    assert not (cleaned == 4).any() and cleaned[10, 10] == 1
    filled = fill_foreground_holes(ids)
    assert filled[20, 20] == 1 and filled[0, 0] == 0
    jag = ids.copy()
    jag[30, 6] = 17  # a lone hair pixel inside skin
    assert majority_smooth(jag, 19, 1)[30, 6] == 1
    conf = np.ones(ids.shape)
    conf[6, 6] = 0.2
    out = cleanup(ids, CleanupConfig(enabled=True, min_component_frac=5 / ids.size), 19, conf)
    assert out[6, 6] == IGNORE and out[0, 0] == 0 and not (out == 4).any()
    assert cleanup(ids, CleanupConfig(min_component_frac=5 / ids.size), 19, conf) is ids  # off by default


def test_sides_from_3d():
    l_ear, r_ear = FACEBENCH.index("l_ear"), FACEBENCH.index("r_ear")
    scores = torch.zeros(3, 19)
    scores[0, r_ear] = 5  # on the subject's left but called right: becomes l_ear
    scores[1, l_ear] = 5  # on the right, called left: becomes r_ear
    scores[2, FACEBENCH.index("nose")] = 5
    x = torch.tensor([0.08, -0.08, 0.0])
    out = enforce_sides_3d(scores, x, FACEBENCH, margin=0.02)
    assert out.argmax(1).tolist() == [l_ear, r_ear, FACEBENCH.index("nose")]


def test_view_weights_survive_pixel_normalisation_but_cancel_under_weight_normalisation():
    from generators.refine.lift import _weighted_ce, view_weight

    torch.manual_seed(0)
    features = torch.randn(FACEBENCH.num_classes, 6, 6)
    alpha = torch.full((6, 6), 0.9)
    labels = torch.randint(1, FACEBENCH.num_classes, (6, 6))
    ones = torch.ones(6, 6)
    profile = ones * view_weight(90.0)  # the parser's weak views count a quarter
    assert view_weight(0.0) == 1.0 and view_weight(90.0) == 0.25
    full = _weighted_ce(features, alpha, labels, ones, "pixels")
    torch.testing.assert_close(_weighted_ce(features, alpha, labels, profile, "pixels"), full * 0.25)
    torch.testing.assert_close(_weighted_ce(features, alpha, labels, profile, "weights"), full)


def test_class_balance_weights_rare_parts_up_and_keeps_the_mean():
    from facebench.captures import Camera
    from generators.refine.inputs import SubjectView
    from generators.refine.lift import class_weights

    m = np.zeros((10, 10), np.uint8)
    m[:5], m[5:9], m[9, 0], m[9, 1] = 1, 17, 4, IGNORE
    v = SubjectView(id="v", camera=Camera(np.eye(3), np.eye(4), 10, 10), image=np.zeros((10, 10, 3), np.uint8), mask=m)
    assert class_weights([v], FACEBENCH.num_classes, 0.0) is None
    w = class_weights([v], FACEBENCH.num_classes, 0.5)
    assert w[4] > 1 > w[1] and w[1] < w[17]  # the one-pixel eye counts most, skin (most pixels) least
    counts = np.bincount(m[(m != 0) & (m != IGNORE)], minlength=FACEBENCH.num_classes)
    assert np.isclose((counts * w).sum() / counts.sum(), 1.0)  # same average weight per pixel as without


def test_fit_device_follows_the_machine_and_the_renderer():
    """auto: CUDA only when present and the rasterizer can use it (cpp is CPU-only); explicit wins."""
    import torch

    from generators.refine.config import LiftConfig
    from generators.refine.lift import fit_device

    cuda = torch.cuda.is_available()
    assert fit_device(LiftConfig()) == ("cuda" if cuda else "cpu")
    assert fit_device(LiftConfig(renderer="cpp")) == "cpu"
    assert fit_device(LiftConfig(device="cpu", renderer="gsplat")) == "cpu"
