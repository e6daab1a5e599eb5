"""Offline check of head-pose estimation on synthetic heads with known pose. Run:

    python benchmarks/measure_pnp.py [--heads 8] [--views 25] [--renders 4]

Like ``make_mean_face`` this imports ``generators.heads`` and is never imported by the library.
For each sampled head (identity and expression vary, so its shape is *not* the mean face) and each
random pose (|yaw| <= 60, |pitch| <= 20, |roll| <= 10), the head's own landmark vertices are
projected through the synthetic rig's camera (30° lens, 256 px) with Gaussian noise (1.5 px, about
2% of the face width), then solved with the default assumed focal length (37° lens), so the shape,
the noise and the focal length are all wrong in the realistic way. Rows: all 68 points; the 60
points LaPa provides; and (with ``--renders``) region centroids of rendered label maps (Helen).
Row ``pnp-68-silhouette-jaw`` moves the far side's jaw points onto the rendered face outline, as
300-W annotators mark turned faces.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from importlib.resources import files

import numpy as np


@dataclass
class Errors:
    method: str
    yaw_true: np.ndarray
    err: np.ndarray  # (n, 3) absolute yaw / pitch / roll errors, degrees

    def summary(self) -> dict:
        med = np.median(self.err, 0)
        a = np.abs(self.yaw_true)
        by_bin = {f"median_yaw_{lo}_{hi}": round(float(np.median(self.err[(a >= lo) & (a < hi), 0])), 2)
                  for lo, hi in ((0, 30), (30, 61)) if ((a >= lo) & (a < hi)).any()}
        return {"method": self.method, "n": len(self.err), "median_yaw": round(float(med[0]), 2), **by_bin,
                "median_pitch": round(float(med[1]), 2), "median_roll": round(float(med[2]), 2),
                "p90_yaw": round(float(np.percentile(self.err[:, 0], 90)), 2)}


FACE_CLASSES = ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "nose", "mouth", "u_lip", "l_lip")


def silhouette_jaw(uv: np.ndarray, labels: np.ndarray, yaw: float) -> np.ndarray:
    """Landmarks as an annotator would place them: the far side's jaw points moved onto the face's
    visible outline in their image row (300-W convention for turned faces)."""
    from facebench.labels import FACEBENCH

    face = np.isin(labels, [FACEBENCH.index(c) for c in FACE_CLASSES])
    out = uv.copy()
    far = range(0, 8) if yaw > 0 else range(9, 17)  # positive yaw turns the subject's right side away
    for i in far:
        row = int(np.clip(round(uv[i, 1]), 0, labels.shape[0] - 1))
        xs = np.flatnonzero(face[row])
        if xs.size:
            out[i, 0] = xs.min() if yaw > 0 else xs.max() + 1
    return out


def measure(heads: int = 8, views: int = 25, renders: int = 0, noise_px: float = 1.5, seed: int = 0,
            size: int = 256) -> list[Errors]:
    from facebench.importers.landmarks import LAPA106_TO_68
    from facebench.importers.maskpose import pose_from_mask
    from facebench.importers.pnp import pose_from_68, project
    from facebench.pose import Pose, wrap_degrees
    from generators.heads import camera_for_pose, render_view, sample_head
    from generators.heads.mesh import template

    doc = json.loads(files("facebench.importers").joinpath("mean_face_68.json").read_text())
    base = template().base_ids
    tidx = np.searchsorted(base, doc["base_vertex_ids"]).clip(0, len(base) - 1)
    if not (base[tidx] == doc["base_vertex_ids"]).all():
        raise RuntimeError("the heads template no longer contains every landmark vertex: rerun make_mean_face")
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {"pnp-68": [], "pnp-lapa-60": [], "pnp-68-silhouette-jaw": [], "mask-centroids": []}
    truth: dict[str, list] = {k: [] for k in rows}
    sub = LAPA106_TO_68[:, 0]
    for h in range(heads):
        head = sample_head(1000 + h)
        for v in range(views):
            pose = Pose(rng.uniform(-60, 60), rng.uniform(-20, 20), rng.uniform(-10, 10))
            cam = camera_for_pose(pose, size=size)
            w2c = cam.world_to_camera
            uv = project(head.verts[tidx], w2c[:3, :3], w2c[:3, 3], cam.K) + rng.normal(0, noise_px, (68, 2))
            for key, est in (("pnp-68", pose_from_68(uv, size, size).pose),
                             ("pnp-lapa-60", pose_from_68(uv[sub], size, size, sub).pose)):
                rows[key].append([est.yaw - pose.yaw, est.pitch - pose.pitch, est.roll - pose.roll])
                truth[key].append(pose.yaw)
            if v < renders:
                labels = render_view(head, cam).labels
                est, _, _ = pose_from_mask(labels)
                sil = pose_from_68(silhouette_jaw(uv, labels, pose.yaw), size, size).pose
                for key, e in (("mask-centroids", est), ("pnp-68-silhouette-jaw", sil)):
                    rows[key].append([e.yaw - pose.yaw, e.pitch - pose.pitch, e.roll - pose.roll])
                    truth[key].append(pose.yaw)
    return [Errors(k, np.asarray(truth[k]), np.abs(wrap_degrees(np.asarray(v)))) for k, v in rows.items() if v]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--views", type=int, default=25)
    ap.add_argument("--renders", type=int, default=6, help="views per head also rendered for the mask method")
    ap.add_argument("--noise", type=float, default=1.5)
    a = ap.parse_args()
    print("| method | n | median yaw err | (abs yaw < 30) | (30..60) | p90 | median pitch err | median roll err |")
    print("|---|---|---|---|---|---|---|---|")
    for e in measure(a.heads, a.views, a.renders, a.noise):
        s = e.summary()
        print(f"| {s['method']} | {s['n']} | {s['median_yaw']}° | {s.get('median_yaw_0_30')}° | "
              f"{s.get('median_yaw_30_61')}° | {s['p90_yaw']}° | {s['median_pitch']}° | "
              f"{s['median_roll']}° |")


if __name__ == "__main__":
    main()
