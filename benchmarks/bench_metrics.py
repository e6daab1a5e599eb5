"""Metric throughput: facebench's confusion accumulation against torchmetrics and scikit-learn.

1,000 masks of 512×512 with 19 classes (100 distinct random pairs, cycled), one process, the
machine's threads. Prints masks/s for each and the ratio to the faster peer; last line is JSON.

    .venv/bin/python benchmarks/bench_metrics.py [--n 1000] [--size 512]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from facebench.metrics import Evaluation


def make_pairs(n: int, size: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        true = rng.integers(0, 19, (size, size), dtype=np.uint8)
        pred = np.where(rng.random((size, size)) < 0.8, true, rng.integers(0, 19, (size, size))).astype(np.uint8)
        true[:8] = 255
        pairs.append((pred, true))
    return pairs


def run_facebench(pairs, n: int) -> tuple[float, np.ndarray]:
    ev = Evaluation()
    t0 = time.perf_counter()
    for i in range(n):
        p, t = pairs[i % len(pairs)]
        ev.add(p, t, str(i), "all")
    cm = ev.total()
    ev.scores(n_boot=0)
    return n / (time.perf_counter() - t0), cm


def run_torchmetrics(pairs, n: int) -> tuple[float, np.ndarray]:
    from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex

    jac = MulticlassJaccardIndex(num_classes=19, average=None, ignore_index=255)
    cmm = MulticlassConfusionMatrix(num_classes=19, ignore_index=255)
    tensors = [(torch.from_numpy(p).long(), torch.from_numpy(t).long()) for p, t in pairs]
    t0 = time.perf_counter()
    for i in range(n):
        p, t = tensors[i % len(tensors)]
        jac.update(p, t)
    jac.compute()
    rate = n / (time.perf_counter() - t0)
    for p, t in tensors:  # same data once more, for the agreement check only
        cmm.update(p, t)
    return rate, cmm.compute().numpy()


def run_sklearn(pairs, n: int) -> float:
    from sklearn.metrics import confusion_matrix

    t0 = time.perf_counter()
    for i in range(n):
        p, t = pairs[i % len(pairs)]
        keep = t != 255
        confusion_matrix(t[keep], p[keep], labels=list(range(19)))
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--sklearn-n", type=int, default=50, help="sklearn is slow; time it on fewer masks")
    args = ap.parse_args()
    pairs = make_pairs(min(100, args.n), args.size)
    fb, cm = run_facebench(pairs, args.n)
    tm, tm_cm = run_torchmetrics(pairs, args.n)
    # Agreement on the 100 distinct pairs: the facebench matrix over one cycle must equal torchmetrics'.
    ev = Evaluation()
    for p, t in pairs:
        ev.add(p, t)
    assert np.array_equal(ev.total(), tm_cm), "facebench and torchmetrics disagree"
    sk = run_sklearn(pairs, args.sklearn_n)
    peer, peer_rate = max((("torchmetrics.MulticlassJaccardIndex", tm), ("sklearn.confusion_matrix", sk)),
                          key=lambda x: x[1])
    print(f"threads: torch {torch.get_num_threads()}; masks {args.n} of {args.size}², 19 classes")
    print(f"facebench      {fb:8.1f} masks/s")
    print(f"torchmetrics   {tm:8.1f} masks/s")
    print(f"scikit-learn   {sk:8.1f} masks/s (on {args.sklearn_n} masks)")
    print(f"ratio vs faster peer ({peer}): {fb / peer_rate:.2f}x")
    print(json.dumps({"masks_per_s": round(fb, 1), "peer": peer, "peer_masks_per_s": round(peer_rate, 1),
                      "ratio": round(fb / peer_rate, 2), "size": args.size, "n": args.n}))


if __name__ == "__main__":
    main()
