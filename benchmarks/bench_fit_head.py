"""Fit Gaussians to a synthetic head capture and report held-out PSNR and wall time.

    python benchmarks/bench_fit_head.py                      # 32 views at 128², 3-minute budget
    python benchmarks/bench_fit_head.py --quick              # a small smoke run

Uses ``generators.heads`` (a solid background, so the Gaussians only model the head; the same colour
is the fit's background). Held-out views are separate random poses on the same sphere. Falls back to
a synthetic Gaussian scene when ``generators.heads`` cannot be imported. Writes a side-by-side PNG
(held-out truth | render) to docs/gaussians/ and prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Before torch loads OpenMP: idle threads sleep instead of spinning (on a busy machine spinning threads
# made two threads 5x slower than one). Set OMP_WAIT_POLICY yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generators.gaussians.fit import FitConfig, FitView, fit  # noqa: E402


def head_views(subject: int, n_train: int, n_eval: int, size: int):
    """FitViews of a synthetic head (train on a spiral rig, evaluate on random poses) and the background."""
    from generators.heads import HeadConfig, RigConfig, render_views, rig_cameras, sample_head
    from generators.heads.appearance import AppearanceConfig, linear_to_srgb_u8

    head = sample_head(subject, HeadConfig(appearance=AppearanceConfig(background="solid")))
    pitch = (-45.0, 60.0)
    train_cams = rig_cameras(RigConfig(views=n_train, pitch_range=pitch), size=size)
    eval_cams = rig_cameras(RigConfig(views=n_eval, pitch_range=pitch, mode="random"), size=size, seed=1)
    bg = linear_to_srgb_u8(np.asarray(head.appearance.bg_colours[0])[None, None]).reshape(3) / 255.0

    def to_views(cams):
        out = []
        for cam, r in zip(cams, render_views(head, cams), strict=True):
            out.append(
                FitView(
                    r.rgb,
                    torch.tensor(cam.world_to_camera, dtype=torch.float32),
                    torch.tensor(cam.K, dtype=torch.float32),
                    alpha=r.alpha,
                )
            )
        return out

    return to_views(train_cams), to_views(eval_cams), tuple(float(c) for c in bg), f"synthetic head {subject}"


def scene_views(n_train: int, n_eval: int, size: int):
    """Fallback: a seeded ground-truth Gaussian scene rendered from a rig."""
    from generators.gaussians.cameras import intrinsics, orbit_viewmats
    from generators.gaussians.scenes import random_scene, render_scene

    scene = random_scene(20_000, "fitted", seed=7)
    K = intrinsics(size, size, 40.0)
    vms = orbit_viewmats(n_train + n_eval, 3.2, seed=0, jitter=0.3)
    views = [
        FitView(img, vm, K, alpha=a)
        for vm, (img, a) in zip(vms, render_scene(scene, vms, K, size, size), strict=True)
    ]
    return views[n_eval:], views[:n_eval], None, "synthetic Gaussian scene (generators.heads unavailable)"


def side_by_side(model, views, background, path: Path, n: int = 4) -> None:
    from PIL import Image

    bg = None if background is None else torch.tensor(background)
    rows = []
    for v in views[:n]:
        img = torch.as_tensor(np.asarray(v.image))
        truth = img.float() / 255.0 if img.dtype == torch.uint8 else img.float()
        truth = truth if truth.shape[0] == 3 else truth.permute(2, 0, 1)
        h, w = truth.shape[1:]
        with torch.no_grad():
            r = model.render(v.viewmat, v.K, w, h, background=bg).rgb.clamp(0, 1)
        rows.append(torch.cat([truth, r], 2))
    grid = torch.cat(rows, 1).permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((grid * 255 + 0.5).astype(np.uint8)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=32)
    ap.add_argument("--eval-views", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seconds", type=float, default=170.0, help="wall-time budget for the fit itself")
    ap.add_argument("--subject", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-init", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the per-pair kernels")
    ap.add_argument("--scene", choices=["auto", "head", "gaussians"], default="auto")
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "gaussians" / "head_fit_heldout.png")
    ap.add_argument("--save", type=Path, default=None, help="also save the fitted model (.safetensors)")
    ap.add_argument("--quick", action="store_true", help="8 views at 64², 200 steps")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.views, args.eval_views, args.size, args.steps, args.num_init = 8, 2, 64, 200, 2000
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    source = None
    if args.scene in ("auto", "head"):
        try:
            train, held, bg, source = head_views(args.subject, args.views, args.eval_views, args.size)
        except ImportError as e:
            if args.scene == "head":
                raise
            print(f"generators.heads unavailable ({e}); fitting a synthetic Gaussian scene", file=sys.stderr)
    if source is None:
        train, held, bg, source = scene_views(args.views, args.eval_views, args.size)
    t_data = time.perf_counter() - t0
    cfg = FitConfig(
        steps=args.steps,
        seed=args.seed,
        num_init=args.num_init,
        background=bg,
        holdout_every=0,
        eval_every=max(1, args.steps // 10),
        max_seconds=args.seconds,
        progress=not args.no_progress,
        use_compile=args.compile,
    )
    t1 = time.perf_counter()
    model = fit(train, cfg, eval_views=held)
    t_fit = time.perf_counter() - t1
    if args.save:
        model.save(args.save)
    side_by_side(model, held, bg, args.png)
    info = model.meta["fit"]
    for h in info["history"]:
        n, psnr = int(h["gaussians"]), h["heldout_psnr"]
        print(f"step {h['step']:5d}  gaussians {n:6d}  held-out PSNR {psnr:.2f} dB")
    print(
        f"data: {source}, {len(train)} train + {len(held)} held-out views at {args.size}², "
        f"rendered in {t_data:.1f} s; threads {torch.get_num_threads()}"
    )
    print(
        json.dumps(
            {
                "heldout_psnr": round(info["heldout_psnr"], 3),
                "fit_seconds": round(t_fit, 1),
                "steps": info["steps"],
                "gaussians": len(model),
                "source": source,
            }
        )
    )


if __name__ == "__main__":
    main()
