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
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=2000)
    ap.add_argument("--rgb-steps", type=int, default=400)
    ap.add_argument("--label-steps", type=int, default=150)
    ap.add_argument("--views", type=int, default=32)
    ap.add_argument("--new-views", type=int, default=64)
    args = ap.parse_args()
    from refine_rows import best, print_table, score

    from facebench.cli_generate import refine_config, synthetic_captures
    from generators.refine.postprocess import CleanupConfig
    from generators.refine.run import SubjectJob

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
        figures = score(jobs, tmp / f"{variant}-{cleanup_name}", cfg)
        rows.append({"variant": variant, "cleanup": cleanup_name, **figures})
        print(json.dumps(rows[-1]), flush=True)
    print_table(rows, {"variant": "variant", "cleanup": "post-processing"})
    top = best(rows)
    print(json.dumps({"rows": len(rows), "best": f"{top['variant']}/{top['cleanup']}", "seed": args.seed}))


if __name__ == "__main__":
    main()
