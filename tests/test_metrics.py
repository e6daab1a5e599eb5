import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score, jaccard_score

from facebench.errors import InvalidMask
from facebench.labels import FACEBENCH
from facebench.metrics import Evaluation, bootstrap_ci, confusion_matrix, iou_f1, summary


def _random_pair(rng, size=40, absent=(6, 9, 18)):
    true = rng.integers(0, 19, (size, size), dtype=np.uint8)
    pred = np.where(rng.random((size, size)) < 0.6, true, rng.integers(0, 19, (size, size))).astype(np.uint8)
    for c in absent:  # classes absent from both -> NaN
        true[true == c] = 0
        pred[pred == c] = 1
    true[rng.random((size, size)) < 0.05] = 255
    return pred, true


def test_matches_scikit_learn_on_random_masks():
    rng = np.random.default_rng(0)
    ev = Evaluation()
    preds, trues = [], []
    for i in range(12):
        p, t = _random_pair(rng)
        ev.add(p, t, f"i{i}")
        preds.append(p.ravel())
        trues.append(t.ravel())
    p, t = np.concatenate(preds), np.concatenate(trues)
    keep = t != 255
    cm = ev.total()
    np.testing.assert_array_equal(cm, sk_confusion(t[keep], p[keep], labels=range(19)))
    iou, f1 = iou_f1(cm)
    absent = ~np.isin(np.arange(19), np.concatenate([t[keep], p[keep]]))
    sk_iou = jaccard_score(t[keep], p[keep], labels=range(19), average=None, zero_division=0)
    sk_f1 = f1_score(t[keep], p[keep], labels=range(19), average=None, zero_division=0)
    sk_iou[absent] = sk_f1[absent] = np.nan
    np.testing.assert_allclose(iou, sk_iou, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(f1, sk_f1, atol=1e-9, equal_nan=True)
    assert np.isnan(f1[[6, 9, 18]]).all() and not np.isnan(f1[[1, 2, 17]]).any()
    s = summary(cm)
    assert s["mean_f1_fg"] == pytest.approx(np.nanmean(sk_f1[1:]), abs=1e-9)
    assert s["miou"] == pytest.approx(np.nanmean(sk_iou), abs=1e-9)
    assert s["miou_fg"] == pytest.approx(np.nanmean(sk_iou[1:]), abs=1e-9)


def test_hand_computed_case():
    true = np.array([[0, 1, 1, 2]], np.uint8)
    pred = np.array([[0, 1, 2, 2]], np.uint8)
    cm = confusion_matrix(pred, true, 19)
    iou, f1 = iou_f1(cm)
    assert iou[1] == pytest.approx(1 / 2) and f1[1] == pytest.approx(2 / 3)
    assert iou[2] == pytest.approx(1 / 2) and f1[2] == pytest.approx(2 / 3)
    assert iou[0] == 1.0 and np.isnan(f1[5])
    # merged: l_brow (2) is its own class 'brow'; skin stays skin
    s = summary(cm)
    assert s["mean_f1_fg"] == pytest.approx(2 / 3)


def test_merged_pairs_forgive_left_right_swaps():
    true = np.array([[4, 4, 5, 5]], np.uint8)
    pred = np.array([[5, 5, 4, 4]], np.uint8)
    s = summary(confusion_matrix(pred, true, 19))
    assert s["mean_f1_fg"] == 0.0
    assert s["mean_f1_fg_merged"] == 1.0


def test_dataset_level_differs_from_per_image_average():
    """The convention matters: a rare class scored dataset-level is not the mean of per-image scores."""
    ev = Evaluation()
    t1 = np.zeros((10, 10), np.uint8)
    t1[:5] = 1
    ev.add(t1.copy(), t1)  # perfect
    t2 = np.zeros((10, 10), np.uint8)
    t2[:1, :2] = 1
    ev.add(np.zeros_like(t2), t2)  # misses a tiny region
    _, f1 = iou_f1(ev.total())
    per_image = np.nanmean([iou_f1(m)[1][1] for m in ev.matrices])
    assert f1[1] == pytest.approx(2 * 50 / (2 * 50 + 2))
    assert per_image == pytest.approx(0.5)


def test_bootstrap_interval_brackets_estimate_and_is_seeded():
    rng = np.random.default_rng(1)
    ev = Evaluation()
    for i in range(30):
        p, t = _random_pair(rng, 24)
        ev.add(p, t, str(i))
    est = summary(ev.total())["mean_f1_fg"]
    a = bootstrap_ci(ev.per_image, FACEBENCH, n_boot=300, seed=5)
    b = bootstrap_ci(ev.per_image, FACEBENCH, n_boot=300, seed=5)
    assert a == b
    lo, hi = a["mean_f1_fg"]
    assert lo < est < hi and hi - lo < 0.1


def test_groups_sum_to_total_and_bad_input_is_rejected():
    rng = np.random.default_rng(2)
    ev = Evaluation()
    for i in range(8):
        p, t = _random_pair(rng, 16)
        ev.add(p, t, str(i), group="frontal" if i % 2 else "profile")
    np.testing.assert_array_equal(ev.total("frontal") + ev.total("profile"), ev.total())
    with pytest.raises(InvalidMask, match="differ in size"):
        confusion_matrix(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), 19)
    with pytest.raises(InvalidMask, match="illegal class ids \\[40\\]"):
        confusion_matrix(np.full((2, 2), 40, np.uint8), np.zeros((2, 2), np.uint8), 19)


def test_abstaining_prediction_is_a_miss_not_a_pass():
    true = np.array([[4, 4, 4, 4]], np.uint8)
    abstain = np.array([[4, 4, 255, 255]], np.uint8)
    as_bg = np.array([[4, 4, 0, 0]], np.uint8)
    np.testing.assert_array_equal(confusion_matrix(abstain, true, 19), confusion_matrix(as_bg, true, 19))
    _, f1 = iou_f1(confusion_matrix(abstain, true, 19))
    assert f1[4] == pytest.approx(2 * 2 / (2 * 2 + 2))
