"""Ablation of the refinement on a TUNING subject (seed 2000 by default; bench_generate's seed 1000 stays held out).

Rows: label representation (logits / palette / joint geometry) and post-processing (all on, all but the
confidence → ignore step, all off). Same captures, parser and budgets for every row.

    .venv/bin/python benchmarks/ablate_generate.py [--seed 2000] [--rgb-steps 400] [--label-steps 150]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see facebench/cli.py

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=2000)
    ap.add_argument("--rgb-steps", type=int, default=400)
    ap.add_argument("--label-steps", type=int, default=150)
    ap.add_argument("--views", type=int, default=32)
    ap.add_argument("--new-views", type=int, default=64)
    args = ap.parse_args()
    from facebench.cli_generate import ParserSpec, refine_config, synthetic_captures, synthetic_truth
    from generators.refine.postprocess import CleanupConfig
    from generators.refine.quality import headline
    from generators.refine.run import SubjectJob, load_evaluations, run_subjects

    tmp = Path(tempfile.mkdtemp(prefix="ablate-"))
    caps = synthetic_captures(tmp, 1, args.views, 128, args.seed, 1)
    jobs = [SubjectJob(subject=p.name, capture=p) for p in caps]
    rows = []
    for variant, cleanup_name in (("logits", "all"), ("logits", "no-confidence"), ("logits", "off"),
                                  ("palette", "off"), ("joint", "all"), ("joint", "no-confidence"), ("joint", "off")):
        cfg = refine_config(variant=variant, rgb_steps=args.rgb_steps, label_steps=args.label_steps,
                            new_views=args.new_views, size=256, seed=args.seed, cleanup=cleanup_name != "off")
        if cleanup_name == "no-confidence":
            cfg = dataclasses.replace(cfg, cleanup=CleanupConfig(confidence=False))
        work = tmp / f"{variant}-{cleanup_name}"
        t0 = time.perf_counter()
        run_subjects(jobs, work, cfg, ParserSpec(), synthetic_truth)
        q = load_evaluations([d / "quality.npz" for d in sorted(work.iterdir()) if (d / "done.json").exists()])
        h = headline(None, q)
        rows.append({"variant": variant, "cleanup": cleanup_name, "s": round(time.perf_counter() - t0, 1),
                     **{k: round(v, 4) for k, v in h.items()}})
        print(json.dumps(rows[-1]), flush=True)
    print("| variant | post-processing | initial F1 |yaw|≥60 | refined F1 |yaw|≥60 | gain | frontal change | s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['cleanup']} | {r.get('initial_f1_yaw60', float('nan')):.3f} | "
              f"{r.get('refined_f1_yaw60', float('nan')):.3f} | {r.get('f1_gain_yaw60', float('nan')):+.3f} | "
              f"{r.get('f1_delta_frontal', float('nan')):+.3f} | {r['s']} |")
    best = max(rows, key=lambda r: r.get("f1_gain_yaw60", -1) + r.get("f1_delta_frontal", -1))
    print(json.dumps({"rows": len(rows), "best": f"{best['variant']}/{best['cleanup']}", "seed": args.seed}))


if __name__ == "__main__":
    main()
