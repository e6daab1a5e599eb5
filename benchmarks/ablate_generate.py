"""Ablation of the refinement on a TUNING subject (seed 2000 by default; bench_generate's seed 1000 stays held out).

Rows: label representation (logits / palette / joint geometry) and post-processing (all on, all but the
confidence → ignore step, all off). Same captures, parser and budgets for every row.

    .venv/bin/python benchmarks/ablate_generate.py [--seed 2000] [--rgb-steps N] [--label-steps N]
        [--subjects 1] [--rows logits/off,votes/off] [--truth-masks] [--lift '{"num_init": 12000}']
        [--input-size 256] [--refine '{"work_size": 128}']

``--truth-masks`` lifts the captures' exact labels instead of the parser's: what the lifting loses on its own
(the ceiling any parser could reach with the same representation and budget).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see facebench/app/cli.py

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

ROWS = ("logits/all", "logits/no-confidence", "logits/off", "palette/off", "votes/off", "joint/all",
        "joint/no-confidence", "joint/off")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=2000)
    ap.add_argument("--rgb-steps", type=int, default=None, help="default: generate's")
    ap.add_argument("--label-steps", type=int, default=None, help="default: generate's")
    ap.add_argument("--views", type=int, default=32)
    ap.add_argument("--new-views", type=int, default=64)
    ap.add_argument("--parser", default=None, help="initial-mask checkpoint (default: the shipped BiSeNet)")
    ap.add_argument("--input-size", type=int, default=None, help="input views' size (default: generate's)")
    ap.add_argument("--refine", default="{}",
                    help="RefineConfig scalar fields as JSON, e.g. '{\"work_size\": 128, \"relabel_crops\": false}'")
    ap.add_argument("--subjects", type=int, default=1, help="tuning subjects (from --seed)")
    ap.add_argument("--rows", default=",".join(ROWS), help="variant/post-processing pairs, comma-separated")
    ap.add_argument("--truth-masks", action="store_true", help="lift the exact labels (the lifting's ceiling)")
    ap.add_argument("--lift", default="{}", help="LiftConfig fields as JSON, e.g. '{\"class_balance\": 0.25}'")
    args = ap.parse_args()
    from refine_rows import base_config, best, print_table, score, synthetic_jobs

    from generators.refine.variants import make_variant

    tmp = Path(tempfile.mkdtemp(prefix="ablate-"))
    base = base_config(args.seed, args.subjects, args.views, args.new_views, args.rgb_steps, args.label_steps,
                       input_size=args.input_size)
    base = replace(base, refine=replace(base.refine, lift=replace(base.refine.lift, **json.loads(args.lift)),
                                       **json.loads(args.refine)))
    jobs = synthetic_jobs(tmp, base)
    cleanups = {"all": replace(base.refine.cleanup, enabled=True),
                "no-confidence": replace(base.refine.cleanup, enabled=True, confidence=False),
                "off": base.refine.cleanup}
    rows = []
    for variant, cleanup_name in (r.split("/") for r in args.rows.split(",")):
        cfg = replace(base, refine=replace(base.refine, variant=make_variant(variant), cleanup=cleanups[cleanup_name]))
        figures = score(jobs, tmp / f"{variant}-{cleanup_name}", cfg, args.subjects, args.parser, args.truth_masks)
        rows.append({"variant": variant, "cleanup": cleanup_name, "masks": "truth" if args.truth_masks else "parser",
                     "lift": args.lift, "refine": args.refine, **figures})
        print(json.dumps(rows[-1]), flush=True)
    print_table(rows, {"variant": "variant", "cleanup": "post-processing", "masks": "masks", "lift": "lift",
                       "refine": "refine"})
    top = best(rows)
    print(json.dumps({"rows": len(rows), "best": f"{top['variant']}/{top['cleanup']}", "seed": args.seed}))


if __name__ == "__main__":
    main()
