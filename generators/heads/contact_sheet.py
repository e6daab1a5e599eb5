"""Contact sheets: for each subject, a row of RGB and a row of label overlays over a pose grid.

The default grid (12 poses) covers frontal, three-quarter, both profiles, rear, and looking up and
down, so one glance shows whether heads look like people and whether labels sit where they should.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facebench.imageio import write_png
from facebench.labels import FACEBENCH
from facebench.pose import Pose
from generators.heads.head import Head
from generators.heads.render import render_views
from generators.heads.rig import DISTANCE, FOV, camera_for_pose

SHEET_POSES: tuple[Pose, ...] = (
    Pose(0, 0), Pose(30, 0), Pose(-45, 0), Pose(90, 0), Pose(-90, 0), Pose(135, 10),
    Pose(180, 0), Pose(-150, -20), Pose(0, 45), Pose(0, -45), Pose(60, 35), Pose(-60, -40),
)  # fmt: skip


def _caption(width: int, height: int, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (255, 255, 255))
    ImageDraw.Draw(img).text((4, 2), text, fill=(0, 0, 0))
    return np.asarray(img)


def contact_sheet(
    heads: Sequence[Head],
    poses: Sequence[Pose] = SHEET_POSES,
    size: int = 128,
    distance: float = DISTANCE,
    fov: float = FOV,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """H×W×3 uint8: a header row of poses, then per subject an RGB row and a label-overlay row."""
    cams = [camera_for_pose(p, size, distance, fov) for p in poses]
    header = np.concatenate([_caption(size, 14, f"yaw {p.yaw:g} pitch {p.pitch:g}") for p in poses], 1)
    rows = [np.concatenate([_caption(90, 14, "")] + [header], 1)]
    for k, h in enumerate(heads):
        renders = render_views(h, cams)
        name = names[k] if names else f"seed {h.seed}"
        tag = f"{name}\n{h.hair.kind} hair\n{h.identity.expression_name}"
        left = _caption(90, size, tag)
        rows.append(np.concatenate([left] + [r.rgb for r in renders], 1))
        rows.append(np.concatenate([_caption(90, size, "labels")]
                                   + [FACEBENCH.overlay(r.rgb, r.labels, 0.6) for r in renders], 1))
    return np.concatenate(rows, 0)


def write_contact_sheet(path: str | Path, heads: Sequence[Head], poses: Sequence[Pose] = SHEET_POSES,
                        size: int = 128, distance: float = DISTANCE, fov: float = FOV,
                        names: Sequence[str] | None = None) -> Path:
    return write_png(path, contact_sheet(heads, poses, size, distance, fov, names))


def channels_figure(head: Head, poses: Sequence[Pose] = (Pose(0, 0), Pose(-70, 15)), size: int = 256,
                    distance: float = DISTANCE, fov: float = FOV) -> np.ndarray:
    """Per pose, one row: RGB | labels | depth (near = bright) | alpha, to show what a view holds."""
    rows = []
    for p in poses:
        r = render_views(head, [camera_for_pose(p, size, distance, fov)])[0]
        d = r.depth
        fg = d > 0
        dv = np.zeros_like(d)
        if fg.any():
            lo, hi = d[fg].min(), d[fg].max()
            dv[fg] = 1.0 - 0.8 * (d[fg] - lo) / max(hi - lo, 1e-6)
        grey = lambda a: np.repeat((np.clip(a, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, -1)  # noqa: E731
        rows.append(np.concatenate([r.rgb, FACEBENCH.colorize(r.labels), grey(dv), grey(r.alpha)], 1))
    return np.concatenate(rows, 0)
