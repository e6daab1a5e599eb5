"""Tuning of `generate`'s knobs on TUNING subjects (seeds 2000+; bench_generate's seed 1000 stays held out).

Each row changes one thing against the base (joint geometry, no post-processing, the given steps) and is
run on the same captures, parser and views; the gains are pooled over the tuning subjects.

    .venv/bin/python benchmarks/tune_generate.py [--subjects 2] [--seed 2000] [--rows base,pixels,...]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see facebench/app/cli.py

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any


def rows(base: Any, steps: int) -> dict[str, Any]:
    """Named refinements, each one change against ``base`` (a RefineConfig with the joint variant)."""
    lift, variant = base.lift, base.variant
    pixels = dataclasses.replace(base, lift=dataclasses.replace(lift, ce_normalise="pixels"))
    return {
        "base": base,
        "pixels": pixels,
        "weights": dataclasses.replace(base, lift=dataclasses.replace(lift, ce_normalise="weights")),
        "logit-render": dataclasses.replace(base, variant=dataclasses.replace(variant, label_render="logits")),
        "pixels+logit-render": dataclasses.replace(pixels, variant=dataclasses.replace(variant, label_render="logits")),
        "no-view-weighting": dataclasses.replace(base, lift=dataclasses.replace(lift, view_weighting=False)),
        "no-knn": dataclasses.replace(base, variant=dataclasses.replace(variant, knn_weight=0.0)),
        "cleanup-no-confidence": dataclasses.replace(base, cleanup=dataclasses.replace(base.cleanup, enabled=True,
                                                                                       confidence=False)),
        "alpha-min-0.3": dataclasses.replace(base, variant=dataclasses.replace(variant, alpha_min=0.3)),
        "steps-x2.5": dataclasses.replace(base, lift=dataclasses.replace(lift, rgb_steps=int(steps * 2.5))),
        "init-8000": dataclasses.replace(base, lift=dataclasses.replace(lift, num_init=8000)),
        "class-balance-0.5": dataclasses.replace(base, lift=dataclasses.replace(lift, class_balance=0.5)),
        "class-balance-0.3": dataclasses.replace(base, lift=dataclasses.replace(lift, class_balance=0.3)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=2000)
    ap.add_argument("--subjects", type=int, default=2)
    ap.add_argument("--rgb-steps", type=int, default=None, help="default: generate's")
    ap.add_argument("--label-steps", type=int, default=None, help="default: generate's")
    ap.add_argument("--views", type=int, default=32)
    ap.add_argument("--new-views", type=int, default=64)
    ap.add_argument("--rows", default="")
    args = ap.parse_args()
    from refine_rows import base_config, best, print_table, score, synthetic_jobs

    tmp = Path(tempfile.mkdtemp(prefix="tune-"))
    gen = base_config(args.seed, args.subjects, args.views, args.new_views, args.rgb_steps, args.label_steps,
                      variant="joint")
    jobs = synthetic_jobs(tmp, gen)
    table = {name: dataclasses.replace(gen, refine=refine)
             for name, refine in rows(gen.refine, gen.refine.lift.rgb_steps).items()}
    names = args.rows.split(",") if args.rows else list(table)
    results = []
    for name in names:
        results.append({"row": name, **score(jobs, tmp / name, table[name], per=args.subjects)})
        print(json.dumps(results[-1]), flush=True)
    print_table(results, {"row": "row"})
    print(json.dumps({"rows": len(results), "best": best(results)["row"], "seed": args.seed,
                      "subjects": args.subjects}))


if __name__ == "__main__":
    main()
