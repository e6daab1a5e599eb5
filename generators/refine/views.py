"""Stage 3: where to look from. A seeded distribution of head poses and camera jitter (``ViewSampling``),
kept within what the input views covered."""

from __future__ import annotations

import numpy as np

from facebench.captures import Camera
from facebench.pose import Pose, look_at_head, wrap_degrees
from generators.refine.config import ViewSampling


def covered_yaws(yaws: list[float], margin: float) -> list[tuple[float, float]]:
    """Arcs of yaw (degrees, within [-180, 180]) no further than ``margin`` from an input view's yaw."""
    if not yaws:
        return [(-180.0, 180.0)]
    ys = np.sort(np.asarray([wrap_degrees(y) for y in yaws], dtype=np.float64))
    gaps = np.diff(np.concatenate([ys, ys[:1] + 360.0]))  # gap after each yaw, going round
    if gaps.max() <= 2 * margin:
        return [(-180.0, 180.0)]
    arcs, start = [], ys[(int(np.argmax(gaps)) + 1) % len(ys)]  # walk round from the end of the widest gap
    lo = start - margin
    prev = start
    for y in np.concatenate([ys[ys >= start], ys[ys < start] + 360.0])[1:]:
        if y - prev > 2 * margin:
            arcs.append((lo, prev + margin))
            lo = y - margin
        prev = y
    arcs.append((lo, prev + margin))
    out = []
    for a, b in arcs:  # back into [-180, 180], splitting an arc that crosses ±180
        a, b = a - 360.0 * np.floor((a + 180.0) / 360.0), b - 360.0 * np.floor((a + 180.0) / 360.0)
        out += [(a, min(b, 180.0))] + ([(-180.0, b - 360.0)] if b > 180.0 else [])
    return sorted((float(a), float(b)) for a, b in out)


def _intersect(arcs: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    return [(max(a, lo), min(b, hi)) for a, b in arcs if min(b, hi) > max(a, lo)]


def sample_poses(vs: ViewSampling, seed: int, inputs: list[Pose] | None = None) -> list[Pose]:
    """``vs.n_views`` poses: yaw stratified over its range, pitch and roll uniform; with ``inputs`` (and
    ``vs.within_coverage``) only yaws and pitches within ``vs.coverage_margin`` of what the inputs saw."""
    rng = np.random.default_rng(seed)
    lo, hi = vs.yaw_range
    p_lo, p_hi = vs.pitch_range
    arcs = [(lo, hi)]
    if inputs and vs.within_coverage:
        arcs = _intersect(covered_yaws([p.yaw for p in inputs], vs.coverage_margin), lo, hi) or arcs
        pitches = [p.pitch for p in inputs]
        p_lo, p_hi = max(p_lo, min(pitches) - vs.coverage_margin), min(p_hi, max(pitches) + vs.coverage_margin)
    total = sum(b - a for a, b in arcs)
    t = total * (np.arange(vs.n_views) + rng.random(vs.n_views)) / vs.n_views
    ends = np.cumsum([b - a for a, b in arcs])
    k = np.minimum(np.searchsorted(ends, t, side="right"), len(arcs) - 1)
    strata = np.array([a for a, _ in arcs])[k] + t - np.concatenate([[0.0], ends[:-1]])[k]
    pitch = rng.uniform(p_lo, p_hi, vs.n_views)
    roll = rng.uniform(*vs.roll_range, vs.n_views)
    return [Pose(float(y), float(p), float(r)) for y, p, r in zip(strata, pitch, roll, strict=True)]


def sample_cameras(vs: ViewSampling, seed: int, head_to_world: np.ndarray, distance: float, focal: float,
                   size: int, inputs: list[Pose] | None = None) -> list[tuple[Pose, Camera]]:
    """Cameras looking at the head origin, with the principal point at the image centre."""
    rng = np.random.default_rng([seed, 1])
    out = []
    for pose in sample_poses(vs, seed, inputs):
        d = distance * (1 + rng.uniform(-vs.distance_jitter, vs.distance_jitter))
        f = focal * (1 + rng.uniform(-vs.focal_jitter, vs.focal_jitter))
        K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
        out.append((pose, Camera(K, look_at_head(pose, d, head_to_world), size, size)))
    return out
