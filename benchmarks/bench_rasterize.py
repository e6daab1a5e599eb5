"""Forward+backward time and peak memory of the CPU rasterizer against gsplat's reference path.

    python benchmarks/bench_rasterize.py            # 128² and 256²; 5k/20k/50k; 3 and 19 channels; 2 scenes
    python benchmarks/bench_rasterize.py --quick    # 128², 20k, both scenes and channel counts

"ours" is ``generators.gaussians.rasterize`` with each CPU renderer: "cpp" (the C++ tile compositor,
the default wherever a compiler exists) and "torch" (the pure-torch pair compositor). The headline is
the first of ``--renderers``. "gsplat ref" is gsplat's pure-torch
projection (``_quat_scale_to_covar_preci`` + ``_fully_fused_projection``) followed by the straightforward
compositor below: tile lists built with vectorised ops (gsplat's own ``_isect_tiles`` is a Python loop),
then per 16×16 tile a dense (Gaussians × pixels) alpha matrix, an exclusive cumulative product for the
transmittance, and autograd for the backward. Both run in the same invocation on the same scenes.

Scenes (``generators.gaussians.scenes.random_scene``): "fresh" is a 3DGS-style initialisation (uniform in a
ball, isotropic scales of one spacing, opacity 0.1); "fitted" stands in for a trained model (flat splats on
an ellipsoid surface, mostly opaque). Camera 3.2 units away, 40° field of view.

Timing: wall clock per forward+backward (loss = sum of image, alpha and depth), median of repeats after
warm-up. Each case runs with OMP_WAIT_POLICY=PASSIVE unless --omp-active (on a shared machine, spinning
OpenMP threads made two threads 5x slower than one). "cpu" is the process CPU time of the same calls
(with one thread it is immune to waiting for a busy CPU, though not to cache contention). The load
average is printed before and after.
Memory: every case runs in a fresh subprocess; peak_mb is the growth of the process's maximum
resident set size (``resource.getrusage().ru_maxrss``) from just before the first render to the end, so
it counts everything the rasterizer made resident, allocator slack included. The last line printed is
the JSON for the headline case (128², 20k Gaussians, 19 channels, fitted scene).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEADLINE = {"size": 128, "n": 20000, "channels": 19, "kind": "fitted"}
TILE = 16


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _scene(case):
    import torch

    from generators.gaussians.cameras import intrinsics, look_at
    from generators.gaussians.scenes import random_scene

    s = random_scene(case["n"], case["kind"], seed=0, channels=case["channels"])
    view = look_at(torch.tensor([0.5, -0.3, 3.2]), torch.zeros(3))
    K = intrinsics(case["size"], case["size"], 40.0)
    params = [s[k].clone().requires_grad_() for k in ("means", "quats", "scales", "opacities", "colors")]
    return params, view, K


def reference_render(means, quats, scales, opacities, colors, viewmat, K, width, height):
    """gsplat's torch projection, then a plain tile compositor with autograd: image [D,H,W], alpha, depth."""
    import torch
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci

    covars, _ = _quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        means, covars, viewmat[None], K[None], width, height, eps2d=0.3, near_plane=0.01
    )
    radii, means2d, depths, conics = radii[0], means2d[0], depths[0], conics[0]
    feats = torch.cat([colors, depths[:, None]], 1)
    tw, th = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    with torch.no_grad():  # tile lists: (tile, depth)-sorted pairs, as gsplat's isect_tiles makes them
        vis = torch.nonzero((radii > 0).all(-1)).squeeze(1)
        vis = vis[torch.argsort(depths[vis])]
        lo = ((means2d[vis] - radii[vis]) / TILE).floor().long()
        hi = ((means2d[vis] + radii[vis]) / TILE).ceil().long()
        x0, x1 = lo[:, 0].clamp(0, tw), hi[:, 0].clamp(0, tw)
        y0, y1 = lo[:, 1].clamp(0, th), hi[:, 1].clamp(0, th)
        nx, ny = (x1 - x0).clamp_min(0), (y1 - y0).clamp_min(0)
        cnt = nx * ny
        g = torch.repeat_interleave(torch.arange(len(vis)), cnt)
        local = torch.arange(int(cnt.sum())) - (torch.cumsum(cnt, 0) - cnt)[g]
        tile = (y0[g] + local // nx[g]) * tw + x0[g] + local % nx[g]
        order = torch.argsort(tile, stable=True)  # stable: keeps depth order inside a tile
        tile, gauss = tile[order], vis[g[order]]
        bounds = torch.searchsorted(tile, torch.arange(tw * th + 1))
    image = torch.zeros(height, width, feats.shape[1], dtype=means.dtype)
    trans = torch.ones(height, width, dtype=means.dtype)
    for t in range(tw * th):
        ids = gauss[bounds[t] : bounds[t + 1]]
        if len(ids) == 0:
            continue
        ty, tx = divmod(t, tw)
        ys = torch.arange(ty * TILE, min((ty + 1) * TILE, height))
        xs = torch.arange(tx * TILE, min((tx + 1) * TILE, width))
        py, px = torch.meshgrid(ys.to(means.dtype) + 0.5, xs.to(means.dtype) + 0.5, indexing="ij")
        dx = px.reshape(1, -1) - means2d[ids, :1]
        dy = py.reshape(1, -1) - means2d[ids, 1:]
        c = conics[ids]
        sigma = 0.5 * (c[:, :1] * dx * dx + c[:, 2:] * dy * dy) + c[:, 1:2] * dx * dy
        alpha = torch.clamp_max(opacities[ids, None] * torch.exp(-sigma), 0.999)
        alpha = torch.where((sigma >= 0) & (alpha >= 1 / 255), alpha, torch.zeros_like(alpha))
        t_before = torch.cumprod(torch.cat([torch.ones_like(alpha[:1]), 1 - alpha[:-1]]), 0)
        alive = t_before * (1 - alpha) > 1e-4
        w = torch.where(alive, alpha * t_before, torch.zeros_like(alpha))
        t_end = torch.where(alive, 1 - alpha, torch.ones_like(alpha)).prod(0)
        image[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1] = (w.T @ feats[ids]).reshape(len(ys), len(xs), -1)
        trans[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1] = t_end.reshape(len(ys), len(xs))
    return image[..., :-1].permute(2, 0, 1), 1 - trans, image[..., -1]


def worker(case: dict) -> dict:
    """One measurement in this (fresh) process."""
    import torch

    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    from generators.gaussians.rasterize import rasterize

    params, view, K = _scene(case)
    size = case["size"]
    if case["impl"] == "ours":

        def step():
            img, a, d = rasterize(*params, view, K, size, size, renderer=case["renderer"], use_compile=case["compile"])
            (img.sum() + a.sum() + d.sum()).backward()
    else:

        def step():
            img, a, d = reference_render(*params, view, K, size, size)
            (img.sum() + a.sum() + d.sum()).backward()

    rss0 = _maxrss_mb()
    t_warm = 0.0
    for _ in range(case["warmup"]):  # the first call also compiles when asked; time only the last
        t_warm = time.perf_counter()
        step()
        t_warm = time.perf_counter() - t_warm
    repeats = max(2, min(case["repeats"], int(20.0 / max(t_warm, 1e-3))))  # ~20 s per case at most
    times, cpu = [], []
    for _ in range(repeats):
        for p in params:
            p.grad = None
        t, c = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    out = {
        "ms": 1000 * statistics.median(times),
        "ms_min": 1000 * min(times),
        "peak_mb": _maxrss_mb() - rss0,
        "cpu_ms": 1000 * statistics.median(cpu),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
    }
    if case["impl"] == "ref" and case.get("check"):
        from generators.gaussians.native_composite import native_available

        with torch.no_grad():  # the largest difference of either CPU renderer's image from the reference's
            b = reference_render(*params, view, K, size, size)[0]
            diffs = [
                float((rasterize(*params, view, K, size, size, renderer=name)[0] - b).abs().max())
                for name in ("torch", "cpp")
                if name == "torch" or native_available()
            ]
        out["max_abs_diff"] = max(diffs)
    return out


def run_case(case: dict, omp_passive: bool = True) -> dict:
    env = dict(os.environ)
    if (
        omp_passive
    ):  # idle OpenMP threads sleep instead of spinning: on a busy machine 2 threads were 5x slower
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(case)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=case.get("timeout", 1800))
    if res.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description="CPU rasterizer vs gsplat reference path")
    ap.add_argument("--quick", action="store_true", help="128², 20k Gaussians only")
    ap.add_argument("--threads", type=int, default=0, help="torch threads in each case (0: torch's default)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the projection (and torch's pair kernels)")
    ap.add_argument("--renderers", default="cpp,torch", help="our CPU renderers to time; the first is the headline")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--ref-repeats", type=int, default=2)
    ap.add_argument("--no-ref", action="store_true", help="skip the gsplat reference path")
    ap.add_argument("--omp-active", action="store_true", help="keep OpenMP's default spin-waiting threads")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    sizes, counts = ([128], [20000]) if args.quick else ([128, 256], [5000, 20000, 50000])
    print(
        f"# load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; threads "
        f"{args.threads or 'default'}; compile {args.compile}",
        flush=True,
    )
    renderers = [b.strip() for b in args.renderers.split(",") if b.strip()]
    print(
        f"{'size':>5} {'N':>6} {'ch':>3} {'scene':>7} {'ours':>5} | {'ours ms':>8} {'min':>7} {'cpu':>7} {'MB':>6} | "
        f"{'ref ms':>8} {'cpu':>7} {'MB':>6} {'ratio':>6} {'max|diff|':>9}",
        flush=True,
    )
    headline = None
    for size in sizes:
        for n in counts:
            for kind in ("fresh", "fitted"):
                for ch in (3, 19):
                    base = {"size": size, "n": n, "kind": kind, "channels": ch, "threads": args.threads}
                    ref = None
                    if not args.no_ref:
                        ref = run_case(
                            {**base, "impl": "ref", "warmup": 1, "repeats": args.ref_repeats, "check": True},
                            not args.omp_active,
                        )
                    for renderer in renderers:
                        ours_case = {**base, "impl": "ours", "compile": args.compile, "warmup": 2, "renderer": renderer}
                        ours = run_case({**ours_case, "repeats": args.repeats}, not args.omp_active)
                        ratio = ref["ms"] / ours["ms"] if ref else float("nan")
                        line = f"{size:>5} {n:>6} {ch:>3} {kind:>7} {renderer:>5} | {ours['ms']:8.1f} "
                        line += f"{ours['ms_min']:7.1f} {ours['cpu_ms']:7.1f} {ours['peak_mb']:6.0f} | "
                        line += (
                            f"{ref['ms']:8.1f} {ref['cpu_ms']:7.1f} {ref['peak_mb']:6.0f} {ratio:6.1f} "
                            f"{ref['max_abs_diff']:9.1e}"
                            if ref
                            else "       -       -      -      -         -"
                        )
                        print(line, flush=True)
                        if (size, n, ch, kind) == (HEADLINE["size"], HEADLINE["n"], HEADLINE["channels"],
                                                   HEADLINE["kind"]):
                            figures = {
                                "fwd_bwd_ms": round(ours["ms"], 1),
                                "ratio_vs_gsplat_ref": round(ratio, 1) if ref else None,
                                "peak_mb": round(ours["peak_mb"], 1),
                            }
                            if headline is None:
                                headline = {**figures, "renderer": renderer}
                            else:
                                headline.update({f"{renderer}_{k}": v for k, v in figures.items()})
    print(f"# load average after: {os.getloadavg()[0]:.2f}", flush=True)
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
