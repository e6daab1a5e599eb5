"""Head-frame estimation error on held-out synthetic subjects (issue 18: median ≤ 3°, worst ≤ 10°).

Each subject is generate's built-in input (24 views round the head at 128², pitch ±30°), moved into a
random world frame (rotation, origin, scale 0.1–10), its head frame declared nowhere. The frame is
estimated from the shipped frontal BiSeNet's masks (what ``facebench generate`` does), and, as the peer
in the same run, from the exact label maps (the best any parser could do). Errors are the yaw, pitch and
roll of the estimated head rotation against the true one, and the scale ratio.

    .venv/bin/python benchmarks/bench_headframe.py [--subjects 20] [--seed 6000]

The estimator's thresholds (parts needed, final head weight, RMS refusal) were chosen looking at seed 5000;
seed 6000 is the held-out figure.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see facebench/app/cli.py

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=20)
    ap.add_argument("--seed", type=int, default=6000, help="held out: the thresholds were chosen on seed 5000")
    ap.add_argument("--parser", default=None, help="checkpoint (default: the shipped frontal BiSeNet)")
    args = ap.parse_args()
    from baselines.predict import load_parser
    from facebench.app.generate import DEFAULT_PARSER
    from facebench.captures import Camera, read_transforms
    from facebench.headframe import HeadFrameError, estimate_head_frame
    from facebench.pose import rotation_to_pose, similarity, split_frame
    from generators.refine.generate_config import GenerateConfig
    from generators.refine.pipeline import synthetic_captures

    parser = load_parser(args.parser or str(DEFAULT_PARSER))
    rng = np.random.default_rng(args.seed)
    synthetic = GenerateConfig().synthetic
    tmp = Path(tempfile.mkdtemp(prefix="bench-headframe-"))
    t0 = time.perf_counter()
    paths = synthetic_captures(tmp, type(synthetic)(args.subjects, synthetic.views, synthetic.size), args.seed)
    render_s = time.perf_counter() - t0
    rows, t_est = [], 0.0
    for p in paths:
        cap = read_transforms(p)
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        s = similarity(q * np.sign(np.linalg.det(q)), 10 ** rng.uniform(-1, 1), rng.uniform(-5, 5, 3))
        cams = []
        for v in cap.views:  # the same cameras in the world s · world (rotation stays a rotation)
            rot, scale, t = split_frame(v.camera.world_to_camera @ np.linalg.inv(s))
            w2c = np.eye(4)
            w2c[:3, :3], w2c[:3, 3] = rot, t / scale
            cams.append(Camera(v.camera.K, w2c, v.camera.width, v.camera.height))
        truth_frame = s @ cap.head_to_world
        row = {"subject": p.name, "world_scale": round(split_frame(s)[1], 3)}
        for name, masks in (("parser", parser.predict([v.load_image() for v in cap.views])),
                            ("exact", [v.load_labels() for v in cap.views])):
            t1 = time.perf_counter()
            try:
                est = estimate_head_frame(cams, masks)
            except HeadFrameError as e:
                row[name] = {"refused": str(e)}
                continue
            t_est += time.perf_counter() - t1 if name == "parser" else 0.0
            err = rotation_to_pose(split_frame(truth_frame)[0].T @ split_frame(est.head_to_world)[0])
            row[name] = {"yaw": abs(err.yaw), "pitch": abs(err.pitch), "roll": abs(err.roll),
                         "scale_ratio": est.scale / split_frame(truth_frame)[1], "parts": len(est.used)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    def stats(name: str) -> dict:
        ok = [r[name] for r in rows if "yaw" in r[name]]
        e = np.array([[o["yaw"], o["pitch"], o["roll"]] for o in ok])
        sc = np.array([o["scale_ratio"] for o in ok])
        return {"n": len(ok), "refused": len(rows) - len(ok),
                **{f"median_{k}": round(float(np.median(e[:, i])), 2) for i, k in enumerate(("yaw", "pitch", "roll"))},
                **{f"worst_{k}": round(float(e[:, i].max()), 2) for i, k in enumerate(("yaw", "pitch", "roll"))},
                "median_scale_error": round(float(np.median(np.abs(sc - 1))), 3)}

    parser_stats, exact_stats = stats("parser"), stats("exact")
    for name, st in (("shipped parser", parser_stats), ("exact labels", exact_stats)):
        print(f"{name}: median yaw/pitch/roll {st['median_yaw']}/{st['median_pitch']}/{st['median_roll']}°, worst "
              f"{st['worst_yaw']}/{st['worst_pitch']}/{st['worst_roll']}°, refused {st['refused']} of {len(rows)}")
    worst = max(parser_stats[f"worst_{k}"] for k in ("yaw", "pitch", "roll"))
    median = max(parser_stats[f"median_{k}"] for k in ("yaw", "pitch", "roll"))
    print(json.dumps({"subjects": len(rows), "parser": parser_stats, "exact": exact_stats,
                      "median_deg_max_axis": median, "worst_deg_max_axis": worst,
                      "ratio_median_target_3deg": round(median / 3.0, 2),
                      "ratio_worst_target_10deg": round(worst / 10, 2),
                      "estimate_s_per_subject": round(t_est / max(len(rows), 1), 3), "render_s": round(render_s, 1),
                      "seed": args.seed}))


if __name__ == "__main__":
    main()
