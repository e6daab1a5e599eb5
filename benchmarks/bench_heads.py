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
import time


def _worker(args: tuple[int, int, int, int]) -> tuple[int, float]:
    seed, views, size, supersample = args
    from generators.heads import RigConfig, camera_for_pose, render_views, rig_poses, sample_head

    head = sample_head(seed)
    cams = [camera_for_pose(p, size) for p in rig_poses(RigConfig(views=views), seed)]
    render_views(head, cams[:2], supersample=supersample)  # warm-up (caches, allocator)
    t = time.perf_counter()
    out = render_views(head, cams, supersample=supersample)
    dt = time.perf_counter() - t
    assert len(out) == views and out[0].labels.shape == (size, size)
    return views, dt


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
    total = sum(v for v, _ in results)
    # Throughput while all workers render concurrently: views over the slowest worker's render time.
    vps = total / max(dt for _, dt in results)
    for k, (v, dt) in enumerate(results):
        print(f"worker {k}: {v} views in {dt:.2f} s ({v / dt:.1f} views/s)")
    print(f"{a.workers} workers, {a.size}², supersample {a.supersample}: {vps:.1f} views/s "
          f"(wall incl. start-up and subject sampling {wall:.1f} s)")
    print(json.dumps({"views_per_s": round(vps, 2), "size": a.size}))


if __name__ == "__main__":
    main()
