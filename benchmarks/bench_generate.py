"""`facebench generate` at the issue's size: time per subject and label quality on held-out subjects.

Default: 2 synthetic subjects from a seed used nowhere else (held out from any tuning), 32 input views at
128², 64 new views at 256², initial masks from the shipped frontal BiSeNet. The peer measured in the same
run is the initial parser itself: quality is reported as refined minus initial on the same views.

    .venv/bin/python benchmarks/bench_generate.py [--subjects 2] [--seed 1000] [--variant joint] [--out DIR]

Defaults: generate's defaults (logits on frozen geometry, no post-processing) with 400 + 150 fit steps.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see facebench/cli.py

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--views", type=int, default=32)
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--new-views", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--variant", default="logits")
    ap.add_argument("--rgb-steps", type=int, default=400)
    ap.add_argument("--label-steps", type=int, default=150)
    ap.add_argument("--cleanup", action="store_true", help="post-processing on (generate's default is off)")
    ap.add_argument("--no-cleanup", action="store_true", help="off (the default; old commands)")
    ap.add_argument("--parser", default=None)
    ap.add_argument("--out", type=Path, default=None, help="keep the dataset and report here")
    args = ap.parse_args()
    from facebench.cli_generate import run_generate

    tmp = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    out = args.out or tmp / "data"
    t0 = time.perf_counter()
    head = run_generate(captures=[], out=out, parser=args.parser, masks=None, subjects=args.subjects,
                        views=args.views, input_size=args.input_size, new_views=args.new_views, size=args.size,
                        variant=args.variant, rgb_steps=args.rgb_steps, label_steps=args.label_steps,
                        cleanup=args.cleanup and not args.no_cleanup, seed=args.seed, workers=1, echo=print)
    wall = time.perf_counter() - t0
    per = wall / args.subjects
    print(f"load average: {os.getloadavg()[0]:.1f}; wall {wall:.0f} s for {args.subjects} subjects")
    print(f"seconds per subject: {per:.0f} (target ≤ 180; ratio target/measured {180 / per:.2f})")
    print((out.parent / f"{out.name}-quality" / "report.md").read_text())
    if args.out is None:
        shutil.rmtree(tmp, ignore_errors=True)
    def fig(key: str) -> float:
        return round(head.get(key, float("nan")), 4)

    print(json.dumps({"s_per_subject": round(per, 1), "f1_gain_yaw60": fig("f1_gain_yaw60"),
                      "f1_delta_frontal": fig("f1_delta_frontal"), "refined_f1_yaw60": fig("refined_f1_yaw60"),
                      "initial_f1_yaw60": fig("initial_f1_yaw60"), "variant": args.variant,
                      "subjects": args.subjects, "seed": args.seed}))


if __name__ == "__main__":
    main()
