"""Views per second of the synthetic-head renderer at 256² on 2 cores (RGB + labels + depth + alpha).

Two worker processes, each single-threaded (render.py pins torch to one thread), each rendering its
own subject from a spiral of poses; subject sampling is excluded (it happens once per capture).
The last stdout line is one JSON object: {"views_per_s": ..., "size": 256}.

    python benchmarks/bench_heads.py [--views 40] [--workers 2] [--size 256]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time


def _worker(args: tuple[int, int, int, int]) -> tuple[int, float, float]:
    seed, views, size, supersample = args
    from generators.heads import RigConfig, camera_for_pose, render_views, rig_poses, sample_head

    head = sample_head(seed)
    cams = [camera_for_pose(p, size) for p in rig_poses(RigConfig(views=views), seed)]
    render_views(head, cams[:2], supersample=supersample)  # warm-up (caches, allocator)
    t, c = time.perf_counter(), time.process_time()
    out = render_views(head, cams, supersample=supersample)
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    assert len(out) == views and out[0].labels.shape == (size, size)
    return views, dt, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=40, help="views per worker")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--supersample", type=int, default=2)
    a = ap.parse_args()
    jobs = [(k, a.views, a.size, a.supersample) for k in range(a.workers)]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(a.workers) as pool:
        results = pool.map(_worker, jobs)
    wall = time.perf_counter() - t0
    total = sum(r[0] for r in results)
    # Throughput while all workers render concurrently: views over the slowest worker's render time.
    vps = total / max(r[1] for r in results)
    for k, (v, dt, cpu) in enumerate(results):
        print(f"worker {k}: {v} views in {dt:.2f} s wall, {cpu:.2f} s CPU ({v / dt:.1f} views/s)")
    cpu_per_view = sum(r[2] for r in results) / total
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{a.workers} workers, {a.size}², supersample {a.supersample}: {vps:.1f} views/s wall-clock "
          f"(incl. start-up and subject sampling {wall:.1f} s); {1000 * cpu_per_view:.0f} ms CPU per view, "
          f"i.e. {a.workers / cpu_per_view:.1f} views/s if {a.workers} cores were free; load average {load:.1f}")
    print(json.dumps({"views_per_s": round(vps, 2), "size": a.size}))


if __name__ == "__main__":
    main()
