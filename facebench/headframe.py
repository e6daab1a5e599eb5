"""The head frame of a capture, estimated from its cameras and a parser's label maps.

A capture's world frame is arbitrary (any rotation, origin and scale), but poses, pose bins, new
viewpoints and the subject's left/right all live in the head frame (docs: x toward the subject's left,
y down, z from the face into the head; metres). Face parts are small and the parser names them with
their anatomical side, so they pin the frame down:

1. In every view, the pixel centroid of each face part the parser found (eyes, brows, nose, mouth,
   glasses, ears; ``facebench.importers.maskpose.REGIONS``) is a ray in the world.
2. Each part seen in at least two views is triangulated robustly (least squares over its rays,
   re-weighted by their distance to the estimate, so one bad view cannot pull it).
3. A similarity (rotation, translation, scale) maps the parts' 3D anchors in the head frame (triangulated
   offline from synthetic renders, shipped in ``mean_face_68.json``) onto the triangulated points
   (Umeyama's least squares, weighted by how many views saw each part), robustly: every triple of parts
   proposes a frame and the one most parts agree with is refined on them.

Because the anchors carry their side (l_eye at +x), the estimated x axis points to the subject's left.
When fewer than three parts can be triangulated, or they do not agree, the estimate is refused.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from facebench.captures import Camera
from facebench.errors import FacebenchError
from facebench.pose import similarity, split_frame

MIN_VIEWS_PER_PART = 2
MIN_PARTS = 4  # the head and three parts: three points alone always fit a similarity, right or wrong
# A part agrees with a frame when its anchor lands within this distance (metres of head) of its triangulation.
AGREE_M = 0.02
# Triangulation needs rays from different directions: the smallest eigenvalue of Σ(I - d dᵀ) per ray.
MIN_SPREAD = 0.02


class HeadFrameError(FacebenchError):
    """The head frame could not be estimated from what the parser found."""


@dataclass
class FrameEstimate:
    """An estimated head→world similarity and how it was found."""

    head_to_world: np.ndarray  # 4×4 [s·R | t]
    parts: dict[str, int] = field(default_factory=dict)  # part → views it was triangulated from
    used: list[str] = field(default_factory=list)  # parts the final frame was fitted to
    rms_m: float = float("nan")  # anchor-to-triangulation RMS over the used parts, metres of head

    @property
    def scale(self) -> float:
        """World units per head-frame metre."""
        return split_frame(self.head_to_world)[1]

    def summary(self) -> dict:
        return {"head_to_world": self.head_to_world.tolist(), "scale": self.scale, "parts": self.parts,
                "used": self.used, "rms_m": self.rms_m}


def ray(camera: Camera, uv: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(origin, unit direction) in the world of the pixel position ``uv`` (x, y; pixel centres at +0.5)."""
    d_cam = np.linalg.solve(camera.K, np.array([uv[0], uv[1], 1.0]))
    c2w = camera.camera_to_world
    d = c2w[:3, :3] @ d_cam
    return c2w[:3, 3], d / np.linalg.norm(d)


def _nearest(origins: np.ndarray, dirs: np.ndarray) -> np.ndarray | None:
    """Least-squares point nearest to rays (unit dirs); None if they are (nearly) parallel."""
    projectors = np.eye(3)[None] - dirs[:, :, None] * dirs[:, None, :]
    a = projectors.sum(0)
    if np.linalg.eigvalsh(a)[0] / len(origins) < MIN_SPREAD:
        return None
    return np.linalg.solve(a, (projectors @ origins[:, :, None]).sum(0)[:, 0])


def _angles(point: np.ndarray, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Angle (radians) between each ray and the direction from its origin to ``point``; π behind the camera."""
    to = point - origins
    cos = (to * dirs).sum(1) / np.maximum(np.linalg.norm(to, axis=1), 1e-12)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def triangulate(origins: np.ndarray, dirs: np.ndarray, max_angle_deg: float = 4.0) -> tuple[np.ndarray, int] | None:
    """The point that most rays pass through, within ``max_angle_deg`` (scale-free), refined on those rays.

    Every pair of rays proposes a point (RANSAC, exhaustive for a rig's few dozen views); a parser that
    mislabels a part in some views (the sides swapped seen from behind, a brow on the hair) is outvoted.
    Returns (point, number of agreeing rays), or None when no two rays from different directions agree."""
    limit = np.radians(max_angle_deg)
    best, best_key = None, None
    for i, j in itertools.combinations(range(len(origins)), 2):
        x = _nearest(origins[[i, j]], dirs[[i, j]])
        if x is None:
            continue
        ang = _angles(x, origins, dirs)
        inliers = ang < limit
        key = (int(inliers.sum()), -float(np.minimum(ang, limit).sum()))
        if best_key is None or key > best_key:
            best, best_key = inliers, key
    if best is None or best.sum() < MIN_VIEWS_PER_PART:
        return None
    x = _nearest(origins[best], dirs[best])
    return None if x is None else (x, int(best.sum()))


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The 4×4 similarity ``dst ≈ s R src + t`` minimising the weighted squared error (Umeyama 1991); R proper."""
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s0, d0 = src - mu_s, dst - mu_d
    cov = (d0 * w[:, None]).T @ s0
    u, sig, vt = np.linalg.svd(cov)
    flip = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ flip @ vt
    var = float(w @ (s0**2).sum(1))
    scale = float(np.trace(np.diag(sig) @ flip)) / max(var, 1e-18)
    return similarity(rot, scale, mu_d - scale * rot @ mu_s)


FACE_PARTS = ("l_eye", "r_eye", "l_brow", "r_brow", "nose", "mouth")
# The whole head: every class on the head (not neck, necklace or cloth); its centroid is the "head" anchor.
HEAD_CLASSES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 17, 18)
MIN_HEAD_PIXELS = 50
SKIN, HAIR = 1, 17
FINAL_PARTS, FINAL_HEAD_WEIGHT = 4, 3.0
# Refuse a frame whose parts sit further than this (RMS, metres of head) from their anchors: not one head.
MAX_RMS_M = 0.012
# Rays agree with a triangulated point within these angles: a part is small; the head's visible centroid
# moves more as it turns (its anchor is where it projects best from all round).
PART_ANGLE, HEAD_ANGLE = 4.0, 8.0
SIDE_PARTS = {"l_ear": 1.0, "r_ear": -1.0}  # the sign of the yaw that shows them
# Where a parser trained on ordinary photos is worth believing: face parts within this |yaw|, an ear
# from the side that shows it (not too far round either side).
FACE_YAW, EAR_YAW = 50.0, (30.0, 120.0)


def view_centroids(masks: list[np.ndarray]) -> list[dict[str, tuple[float, float]]]:
    """Per view: pixel centroid of each face part the parser found (``maskpose.REGIONS``, glasses left out:
    a parser's false glasses are common and not every subject wears them)."""
    from facebench.importers.maskpose import region_centroids

    out = []
    for m in masks:
        c = {k: v for k, v in region_centroids(m).items() if k != "eye_g"}
        ys, xs = np.nonzero(np.isin(m, HEAD_CLASSES))
        if len(xs) >= MIN_HEAD_PIXELS:
            c["head"] = (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)
        out.append(c)
    return out


def part_points(cameras: list[Camera], centroids: list[dict], views: dict[str, list[int]]
                ) -> dict[str, tuple[np.ndarray, int]]:
    """Each part triangulated from the views allowed for it: part → (world point, agreeing views)."""
    out = {}
    for name, allowed in views.items():
        rs = [ray(cameras[i], centroids[i][name]) for i in allowed if name in centroids[i]]
        if len(rs) < MIN_VIEWS_PER_PART:
            continue
        got = triangulate(np.array([r[0] for r in rs]), np.array([r[1] for r in rs]),
                          HEAD_ANGLE if name == "head" else PART_ANGLE)
        if got is not None:
            out[name] = got
    return out


def _fit(found: dict[str, tuple[np.ndarray, int]], table: dict[str, np.ndarray], head_weight: float | None = None
         ) -> FrameEstimate | None:
    """The similarity most triangulated parts agree with (RANSAC over triples, then refined on them).

    The whole head, when triangulated, is in every hypothesis and always kept: it is the one point far
    behind the face (it fixes where the face points) and the parser never mistakes it; it weighs as one
    view, because its anchor varies with the hair. Face parts weigh by the square root of their views."""
    names = sorted(n for n in found if n in table)
    if len(names) < MIN_PARTS:
        return None
    src = np.array([table[n] for n in names])
    dst = np.array([found[n][0] for n in names])
    weights = np.array([float(found[n][1]) if n != "head" or head_weight is None else head_weight for n in names])
    fixed = [names.index("head")] if "head" in names and head_weight is None else []
    free = [i for i in range(len(names)) if i not in fixed]

    def residuals(h2w: np.ndarray) -> np.ndarray:  # metres of head
        rot, scale, t = split_frame(h2w)
        return np.linalg.norm((dst - t) @ rot / scale - src, axis=1)

    best, best_key = None, None
    for combo in itertools.combinations(free, 3 - len(fixed)):
        idx = fixed + list(combo)
        if np.linalg.matrix_rank(src[idx] - src[idx].mean(0), tol=1e-3) < 2:
            continue  # collinear anchors fix no rotation
        h2w = umeyama(src[idx], dst[idx], weights[idx])
        if not np.isfinite(h2w).all() or np.linalg.det(h2w[:3, :3]) <= 0:
            continue
        r = residuals(h2w)
        agree = r < AGREE_M
        agree[fixed] = True
        key = (int(agree.sum()), -float(np.sum(np.minimum(r, AGREE_M))))
        if best_key is None or key > best_key:
            best, best_key = agree, key
    if best is None or best.sum() < MIN_PARTS:
        return None
    keep = list(np.nonzero(best)[0])
    h2w = umeyama(src[keep], dst[keep], weights[keep])
    rms = float(np.sqrt(np.mean(residuals(h2w)[keep] ** 2)))
    return FrameEstimate(h2w, parts={n: int(found[n][1]) for n in names}, used=[names[i] for i in keep], rms_m=rms)


def _reliable_views(cameras: list[Camera], h2w: np.ndarray) -> dict[str, list[int]]:
    """Per part, the views where the parser can be trusted with it, by each view's yaw in frame ``h2w``."""
    from facebench.pose import view_pose

    yaws = [view_pose(c.world_to_camera, h2w).yaw for c in cameras]
    out = {n: [i for i, y in enumerate(yaws) if abs(y) <= FACE_YAW] for n in FACE_PARTS}
    out["head"] = list(range(len(cameras)))
    for n, sign in SIDE_PARTS.items():
        out[n] = [i for i, y in enumerate(yaws) if EAR_YAW[0] <= sign * y <= EAR_YAW[1]]
    return out


def estimate_head_frame(cameras: list[Camera], masks: list[np.ndarray], where=None, rounds: int = 3
                        ) -> FrameEstimate:
    """The head frame of one capture from its cameras and the parser's label maps (facebench label order).

    A parser trained on ordinary photos is right about the face seen from the front and wrong about much
    else, and which views are frontal is what is being estimated. So the first estimate uses only views
    where the whole face was found (nose, mouth and an eye or brow); then, with each view's yaw from that
    estimate, every part is re-triangulated from the views where the parser is worth believing for it."""
    from facebench.importers.maskpose import anchors

    table = anchors()
    cents = view_centroids(masks)
    # A whole face, and more skin than hair: a frontal parser also "finds" faces in the back of a head.
    face = [i for i, (c, m) in enumerate(zip(cents, masks, strict=True))
            if "nose" in c and "mouth" in c and any(k in c for k in ("l_eye", "r_eye", "l_brow", "r_brow"))
            and np.count_nonzero(m == SKIN) > np.count_nonzero(m == HAIR)]
    est = _fit(part_points(cameras, cents, {**{n: face for n in FACE_PARTS}, "head": list(range(len(cents)))}),
               table)
    if est is None:  # no whole face anywhere: every view may vote, robustly
        est = _fit(part_points(cameras, cents, {n: list(range(len(cents))) for n in table if n != "eye_g"}), table)
    for _ in range(rounds if est is not None else 0):
        again = _fit(part_points(cameras, cents, _reliable_views(cameras, est.head_to_world)), table)
        if again is None or frame_angle(again.head_to_world, est.head_to_world) < 0.1:
            est = again or est
            break
        est = again
    if est is not None and sum(n != "head" for n in est.used) >= FINAL_PARTS:
        # Enough face parts agree: let them set the tilt; the head (its anchor moves with the hair) only helps.
        final = _fit(part_points(cameras, cents, _reliable_views(cameras, est.head_to_world)), table,
                     head_weight=FINAL_HEAD_WEIGHT)
        est = final or est
    if est is None:
        found = sorted({k for c in cents for k in c})
        raise HeadFrameError(
            f"cannot estimate the head frame: the parser's face parts ({', '.join(found) or 'none'}) are not "
            f"seen consistently from ≥ {MIN_VIEWS_PER_PART} directions for {MIN_PARTS} parts", where,
            hint="declare it: --head-frame capture or FILE")
    if est.rms_m > MAX_RMS_M:
        raise HeadFrameError(
            f"cannot estimate the head frame with confidence: the parser's face parts ({', '.join(est.used)}) sit "
            f"{1000 * est.rms_m:.0f} mm (RMS) from where one head would put them", where,
            hint="declare it: --head-frame capture or FILE")
    return est


def frame_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in degrees between the rotations of two head frames."""
    r = split_frame(a)[0].T @ split_frame(b)[0]
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0))))


def read_frame_file(path) -> np.ndarray:
    """A 4×4 head→world matrix from a text (whitespace/commas) or JSON file."""
    import json
    from pathlib import Path

    from facebench.captures import checked_frame
    from facebench.errors import InvalidConfig, require_exists

    path = require_exists(Path(path), "head frame file")
    try:
        text = path.read_text(encoding="utf-8")
        values = json.loads(text) if text.lstrip().startswith(("[", "{")) else [
            float(t) for t in text.replace(",", " ").split()]
        if isinstance(values, dict):
            values = values.get("head_to_world", values)
    except (OSError, ValueError, RecursionError):  # unreadable, not UTF-8, not JSON or numbers, nested too deep
        raise InvalidConfig("not a 4×4 matrix (16 numbers, or JSON)", path) from None
    return checked_frame(values, path)
