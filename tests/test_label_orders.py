"""Label orders are declared (--labels), mapped by name, and a wrong declaration is noticed, not scored silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import noisy_synthetic_captures, run_cli

from facebench.dataset import load
from facebench.errors import FacebenchError
from facebench.imageio import write_png
from facebench.labels import FACEBENCH, ORDERS, label_order
from facebench.metrics import Evaluation


def _write_in_order(dataset: Path, out: Path, order: str) -> None:
    """The ground truth itself, written in another project's order (classes it lacks become its background)."""
    target = ORDERS[order]
    lut = target.lut_from(FACEBENCH, missing=0)
    for s in load(dataset).iter_samples("test"):
        write_png(out / f"{s.id}.png", lut[s.mask])


def _expected_mean_f1(dataset: Path, order: str) -> float:
    """What a perfect prediction can score once written in ``order`` and read back by name."""
    there = ORDERS[order].lut_from(FACEBENCH, missing=0)
    back = FACEBENCH.lut_from(ORDERS[order])
    ev = Evaluation(labels=FACEBENCH)
    for s in load(dataset).iter_samples("test"):
        ev.add(back[there[s.mask]], s.mask)
    return ev.scores(n_boot=0)["mean_f1_fg"]


@pytest.mark.parametrize("order", ["celebamask-hq", "farl", "lapa"])
def test_a_wrong_order_is_named_and_the_right_one_scores_exactly(order, small_dataset, tmp_path):
    preds = tmp_path / "preds"
    _write_in_order(small_dataset, preds, order)
    r = run_cli("evaluate", str(preds), "--data", str(small_dataset), "--n-boot", "0", "--out", str(tmp_path / "r1"))
    assert r.returncode == 0, r.stderr
    warning = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warning) == 1 and order in warning[0] and f"--labels {order.split('/')[0]}" in warning[0], r.stderr
    metrics = json.loads((tmp_path / "r1" / "metrics.json").read_text())
    assert metrics["warnings"] == [warning[0][len("warning: "):]]
    assert "**Warning:**" in (tmp_path / "r1" / "report.md").read_text()

    r = run_cli("evaluate", str(preds), "--data", str(small_dataset), "--n-boot", "0", "--labels", order,
                "--out", str(tmp_path / "r2"))
    assert r.returncode == 0 and "warning:" not in r.stderr, r.stderr
    got = json.loads((tmp_path / "r2" / "metrics.json").read_text())["overall"]["mean_f1_fg"]
    assert got == pytest.approx(_expected_mean_f1(small_dataset, order), abs=1e-12)
    if order != "lapa":  # every class exists in these orders: the ground truth scores perfectly
        assert got == pytest.approx(1.0)


def test_the_declared_order_gives_no_warning_and_id2label_files_work(small_dataset, tmp_path):
    preds = tmp_path / "preds"
    _write_in_order(small_dataset, preds, "facebench")
    r = run_cli("evaluate", str(preds), "--data", str(small_dataset), "--n-boot", "0", "--out", str(tmp_path / "r"))
    assert r.returncode == 0 and "warning" not in r.stderr
    id2label = tmp_path / "id2label.json"
    id2label.write_text(json.dumps({str(i): n for i, n in enumerate(ORDERS["celebamask-hq"].names)}))
    assert label_order(str(id2label)).names == ORDERS["celebamask-hq"].names
    for text, match in (('["a"]', "not an id2label"), ('{"0": "background", "2": "skin"}', "without gaps"),
                        ('{"0": "background", "1": "elbow"}', "elbow")):
        id2label.write_text(text)
        with pytest.raises(FacebenchError, match=match):
            label_order(str(id2label))
    r = run_cli("evaluate", str(preds), "--data", str(small_dataset), "--labels", "klingon")
    assert r.returncode == 2 and "unknown label order 'klingon'" in r.stderr


def test_generate_takes_masks_in_a_declared_order(tmp_path):
    """The same initial masks written in CelebAMask-HQ's order with --labels give the same dataset bytes."""
    caps, masks = noisy_synthetic_captures(tmp_path)
    other = tmp_path / "masks-celebamask"
    lut = ORDERS["celebamask-hq"].lut_from(FACEBENCH)
    from facebench.imageio import read_mask

    for p in masks.glob("*.png"):
        write_png(other / p.name, lut[read_mask(p)])
    common = ["--new-views", "4", "--size", "32", "--rgb-steps", "30", "--label-steps", "10", "--head-frame",
              "capture"]
    a = run_cli("generate", str(caps), "--masks", str(masks), "--out", str(tmp_path / "a"), *common)
    b = run_cli("generate", str(caps), "--masks", str(other), "--labels", "celebamask-hq", "--out",
                str(tmp_path / "b"), *common)
    assert a.returncode == 0 and b.returncode == 0, (a.stderr[-1000:], b.stderr[-1000:])

    def shards(d: Path) -> dict:
        return {p.name: p.read_bytes() for p in sorted((d / "data").glob("*.parquet"))}

    assert shards(tmp_path / "a") == shards(tmp_path / "b") and shards(tmp_path / "a")
