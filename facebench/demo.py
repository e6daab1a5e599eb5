"""`make demo` until `facebench generate` lands: build a dataset, evaluate predictions, write a report.

The data here are procedural label maps (coloured rectangles) and the predictions come from a
*simulated* parser whose errors grow with |yaw|. Both are stand-ins that exercise the real dataset
writer, evaluator and report end to end; the synthetic heads and the trained baselines replace them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facebench.dataset import DatasetInfo, Sample, build_dataset, load
from facebench.evaluate import evaluate_parser
from facebench.imageio import write_png
from facebench.labels import FACEBENCH
from facebench.parsing import MaskFolderParser
from facebench.report import write_report


def procedural_sample(rng: np.random.Generator, i: int, size: int = 96) -> Sample:
    mask = np.zeros((size, size), np.uint8)
    for _ in range(8):
        c = int(rng.integers(1, 19))
        y, x = rng.integers(0, size - 12, 2)
        h, w = rng.integers(6, size // 3, 2)
        mask[y : y + h, x : x + w] = c
    noise = rng.integers(-25, 25, (size, size, 3))
    image = (FACEBENCH.colorize(mask).astype(np.int16) + noise).clip(0, 255).astype(np.uint8)
    yaw = float(rng.uniform(-180, 180))
    return Sample(id=f"demo{i:04d}", image=image, mask=mask, subject=f"proc{i % 5}", yaw=yaw,
                  pitch=float(rng.uniform(-40, 40)), provenance={"source": "procedural demo"})


def simulated_prediction(s: Sample, rng: np.random.Generator) -> np.ndarray:
    """Truth with a rectangle wiped to skin; the wiped fraction grows with |yaw|."""
    pred = s.mask.copy()
    frac = 0.05 + 0.5 * abs(s.yaw) / 180
    h = int(pred.shape[0] * frac)
    y = int(rng.integers(0, pred.shape[0] - h + 1))
    pred[y : y + h] = 1
    return pred


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("demo-out"))
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    samples = [procedural_sample(rng, i) for i in range(args.n)]
    data = build_dataset({"test": samples}, args.out / "dataset", DatasetInfo(pretty_name="facebench demo"),
                         overwrite=True)
    preds = args.out / "predictions"
    for s in samples:
        write_png(preds / f"{s.id}.png", simulated_prediction(s, rng))
    ds = load(data)
    run = evaluate_parser(MaskFolderParser(preds), ds, "test")
    report = write_report(run, args.out / "report", model_name="simulated-parser")
    s = run.evaluation.scores(n_boot=0)
    print(f"dataset: {data}  ({len(samples)} samples)")
    print(f"mean F1 (fg) {s['mean_f1_fg']:.3f}; by pose bin: " + ", ".join(
        f"{b} {run.evaluation.scores(b, n_boot=0)['mean_f1_fg']:.3f}" for b in run.evaluation.group_names()))
    print(f"report: {report / 'report.html'}")


if __name__ == "__main__":
    main()
