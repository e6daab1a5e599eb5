"""The densification schedule as a plain dataclass, apart from ``densify.py`` so that configs holding it
(``generators.refine.config``, read by ``facebench generate --help``) load without torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DensifyConfig:
    """Schedule and thresholds; defaults are 3DGS's, with the schedule scaled to a few thousand steps."""

    start: int = 300  # first densification step (3DGS: 500)
    stop: int = 1500  # no densification from this step on (3DGS: 15000)
    every: int = 100  # densify/prune interval (3DGS: 100)
    # Opacity reset interval (3DGS: 3000); 0 = off. Off by default: in a short, time-boxed fit a reset
    # near the end costs more than it saves (33.3 -> 31.5 dB when the budget ended 80 steps after one).
    reset_every: int = 0
    grad_threshold: float = 0.0002  # mean screen-space gradient (NDC units, as gsplat) to grow (3DGS: 0.0002)
    grow_scale3d: float = 0.01  # below this largest scale (x scene scale) clone, above it split (3DGS: 0.01)
    prune_scale3d: float = 0.1  # prune larger than this (x scene scale) after the first reset (3DGS: 0.1)
    prune_opacity: float = 0.005  # prune below this opacity (3DGS: 0.005)
    split_factor: float = 1.6  # children of a split are this much smaller (3DGS: 1.6)
    max_gaussians: int = 300_000  # never grow beyond this
