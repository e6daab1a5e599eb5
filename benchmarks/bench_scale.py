"""Scaling of `generate` over subjects: local processes (1 and 2 workers) and Ray, at a small size.

Each configuration refines 1, 2 and 4 fresh subjects (synthetic heads, initial masks = exact labels with
the ears blurred into skin beyond 45° yaw, as in the tests) and times run_subjects + assemble. Throughput
is subjects per minute; parallel efficiency is T(serial, n) / (p × T(config, n)), where p = min(slots, n) and
slots is the worker count, or Ray CPUs / cpus-per-subject (a slot without a subject is not counted against
it). The Ray cluster is started once, outside the timings (its start-up time is printed apart), and warmed
with one subject, so the figures are steady-state throughput.
Process pools are created per run, as the CLI does, so their start-up is inside the local timings. Every
slot runs torch on one thread (the serial run too), with OMP_WAIT_POLICY=PASSIVE unless set.

    .venv/bin/python benchmarks/bench_scale.py [--subjects 1 2 4] [--ray-cpus 2] [--no-ray]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

# Spinning OpenMP threads are several times slower on a shared machine (see bench_fit_head.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Ray starts workers at nice 15; on a machine others are loading that starves them (measured: a 2-subject
# run took 150 s instead of ~40 s at load 8), so the comparison with local processes (nice 0) is unfair.
os.environ.setdefault("RAY_worker_niceness", "0")

VIEWS, INPUT_SIZE = 16, 64
RGB_STEPS, LABEL_STEPS, NEW_VIEWS, SIZE = 150, 40, 8, 64


def config(workers: int = 1, ray=None):
    """generate's defaults at this benchmark's small size, with post-processing on (its heaviest path)."""
    from dataclasses import replace

    from generators.refine.generate_config import GenerateConfig

    d = GenerateConfig()
    refine = replace(d.refine, out_size=SIZE, views=replace(d.refine.views, n_views=NEW_VIEWS),
                     lift=replace(d.refine.lift, rgb_steps=RGB_STEPS, label_steps=LABEL_STEPS),
                     cleanup=replace(d.refine.cleanup, enabled=True))
    return replace(d, refine=refine, workers=workers, **({"backend": "ray", "ray": ray} if ray else {}))


def make_captures(root: Path, n: int) -> tuple[list, Path]:
    """n synthetic subjects with noisy initial masks, written once and shared by every configuration."""
    from facebench.imageio import write_png
    from facebench.pose import Pose
    from generators.heads import sample_head, write_capture
    from generators.refine.parts import SubjectJob

    poses = [Pose(y, p) for y, p in zip(np.linspace(-180, 157.5, VIEWS), [15, -15] * (VIEWS // 2), strict=True)]
    jobs = []
    for k in range(n):
        cap = write_capture(sample_head(100 + k), root / "caps" / f"s{k}", poses, size=INPUT_SIZE, subject=f"s{k}")
        for v in cap.views:
            m = v.load_labels()
            if abs(cap.pose_of(v).yaw) > 45:
                m[np.isin(m, [7, 8])] = 1
            write_png(root / "masks" / f"{v.id}.png", m)
        jobs.append(SubjectJob(f"s{k}", cap.check()))
    return jobs, root / "masks"


def timed_run(jobs, masks: Path, work: Path, workers: int = 1, ray=None) -> tuple[float, float]:
    """(wall seconds, driver CPU seconds) of refining ``jobs`` from scratch and assembling the dataset."""
    from facebench.app.generate import ParserSpec
    from facebench.dataset import DatasetInfo
    from generators.refine.run import assemble, run_subjects

    shutil.rmtree(work, ignore_errors=True)
    cfg = config(workers, ray)
    t0, c0 = time.perf_counter(), time.process_time()
    summary = run_subjects(jobs, work / "subjects", cfg, ParserSpec(masks=str(masks)), None)
    assert not summary.failed and len(summary.done) == len(jobs), summary
    assemble(work / "subjects", work / "data", cfg, DatasetInfo(pretty_name="bench", description="bench"))
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)  # every slot is one core: serial runs, pool workers and Ray tasks alike
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    jobs, masks = make_captures(tmp, max(args.subjects) + 1)
    warm, jobs = jobs[-1:], jobs[:-1]
    configs: list[tuple[str, int, object]] = [("local", 1, None), ("local", 2, None)]
    ray_start = None
    if not args.no_ray:
        import ray

        from generators.refine.config import RayOptions

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=args.ray_cpus, include_dashboard=False, object_store_memory=200 * 1024**2,
                 log_to_driver=False)
        ray_start = time.perf_counter() - t0
        warm_s, _ = timed_run(warm, masks, tmp / "warm", ray=RayOptions())
        print(f"ray: cluster start {ray_start:.1f} s, first (cold) subject {warm_s:.1f} s")
        configs.append(("ray", args.ray_cpus, RayOptions()))
    rows = []
    serial: dict[int, float] = {}
    for backend, slots, ray_opts in configs:
        for n in args.subjects:
            load = os.getloadavg()[0]
            workers = slots if ray_opts is None else 1
            wall, _ = timed_run(jobs[:n], masks, tmp / f"{backend}{slots}-{n}", workers=workers, ray=ray_opts)
            if backend == "local" and slots == 1:
                serial[n] = wall
            eff = serial[n] / (min(slots, n) * wall)
            row = {"backend": backend, "slots": slots, "subjects": n, "wall_s": round(wall, 1),
                   "subjects_per_min": round(60 * n / wall, 2), "efficiency": round(eff, 2), "load": round(load, 1)}
            rows.append(row)
            print(f"{backend:5s} slots={slots} subjects={n}: {wall:6.1f} s, "
                  f"{row['subjects_per_min']:5.2f} subjects/min, efficiency {eff:.2f} (load {load:.1f})")
    if not args.no_ray:
        ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    best = max(rows, key=lambda r: r["subjects_per_min"])
    print(json.dumps({"rows": rows, "best": f"{best['backend']}x{best['slots']}", "ray_start_s":
                      None if ray_start is None else round(ray_start, 1), "cpus": os.cpu_count(),
                      "size": {"views": VIEWS, "input": INPUT_SIZE, "rgb_steps": RGB_STEPS,
                               "label_steps": LABEL_STEPS, "new_views": NEW_VIEWS, "out": SIZE}}))


if __name__ == "__main__":
    main()
