"""Accessories with their own classes: glasses (``eye_g``), earrings (``ear_r``), necklace (``neck_l``);
the knit cap (``hat``) is a shell like the hair and lives in hair.py.

Built per head from the deformed geometry, symmetric in x (so mirrored views stay exact):

- glasses: an elliptical rim in front of each eye (14 mm ahead of the cornea), a bridge over the
  nose and temple arms back to the top of each ear. Clear glasses draw the frame only (lenses are
  not rendered, so eyes and skin show through and keep their labels); sunglasses also draw tinted
  opaque lenses, labelled ``eye_g`` like the frame;
- earrings: a small sphere (stud) or a ring (hoop) under each earlobe;
- necklace: a thin tube following the neck's cross-section a little above the collar line,
  sagging toward the front.

Each returns (vertices (k, 3), faces (f, 3), part per face), in the head frame (metres).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generators.heads.mesh import PART_EARRING, PART_GLASSES, PART_LENS, PART_NECKLACE

Mesh = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Accessories:
    glasses: str = "none"  # none | clear | sun
    frame_a: float = 0.025  # lens half-width, metres
    frame_b: float = 0.018  # lens half-height
    earrings: str = "none"  # none | stud | hoop
    necklace: bool = False
    hat: bool = False

    def to_json(self) -> dict:
        return {"glasses": self.glasses, "earrings": self.earrings, "necklace": self.necklace, "hat": self.hat}


def sample_accessories(rng: np.random.Generator, gender: float, p_glasses: float, p_earrings: float,
                       p_necklace: float, p_hat: float = 0.0) -> Accessories:
    female = gender < 0.5
    g = "none"
    if rng.random() < p_glasses:
        g = "sun" if rng.random() < 0.3 else "clear"
    e = "none"
    # Women wear earrings and necklaces more often: p ** 0.6 vs p ** 2.5 (both 1 at p = 1).
    if rng.random() < p_earrings ** (0.6 if female else 2.5):
        e = "hoop" if rng.random() < 0.4 else "stud"
    n = bool(rng.random() < p_necklace ** (0.7 if female else 1.8))
    fa, fb = float(rng.uniform(0.022, 0.028)), float(rng.uniform(0.015, 0.021))
    hat = bool(rng.random() < p_hat)
    return Accessories(g, fa, fb, e, n, hat)


def _strip(a: np.ndarray, b: np.ndarray, up: np.ndarray, half: float) -> tuple[np.ndarray, np.ndarray]:
    """A flat ribbon from a to b, ``2 * half`` wide along ``up``: 4 vertices, 2 triangles."""
    v = np.stack([a - up * half, b - up * half, b + up * half, a + up * half])
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def _tube(path: np.ndarray, radius: float, closed: bool, sides: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A polygonal tube along ``path`` (n, 3)."""
    n = len(path)
    t = np.roll(path, -1, 0) - np.roll(path, 1, 0) if closed else np.gradient(path, axis=0)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    ref = np.where(np.abs(t[:, 1:2]) < 0.9, np.array([[0.0, 1.0, 0.0]]), np.array([[1.0, 0.0, 0.0]]))
    u = np.cross(t, ref)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = np.cross(t, u)
    ang = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    ring = (np.cos(ang)[None, :, None] * u[:, None] + np.sin(ang)[None, :, None] * w[:, None]) * radius
    verts = (path[:, None] + ring).reshape(-1, 3)
    faces = []
    segs = n if closed else n - 1
    for i in range(segs):
        j = (i + 1) % n
        for k in range(sides):
            k1 = (k + 1) % sides
            a, b, c, d = i * sides + k, i * sides + k1, j * sides + k1, j * sides + k
            faces += [[a, b, c], [a, c, d]]
    return verts, np.asarray(faces, dtype=np.int64)


def _sphere(centre: np.ndarray, radius: float, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    th = np.linspace(0, np.pi, n + 1)
    ph = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    v = np.array([[np.sin(a) * np.cos(b), -np.cos(a), np.sin(a) * np.sin(b)] for a in th for b in ph])
    faces = []
    m = len(ph)
    for i in range(n):
        for k in range(m):
            k1 = (k + 1) % m
            a, b, c, d = i * m + k, i * m + k1, (i + 1) * m + k1, (i + 1) * m + k
            faces += [[a, c, b], [a, d, c]]
    return centre + radius * v, np.asarray(faces, dtype=np.int64)


def _join(parts: list[tuple[np.ndarray, np.ndarray, int]]) -> Mesh:
    vs, fs, ps, off = [], [], [], 0
    for v, f, p in parts:
        vs.append(v)
        fs.append(f + off)
        ps.append(np.full(len(f), p, np.uint8))
        off += len(v)
    if not vs:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.uint8)
    return np.concatenate(vs), np.concatenate(fs), np.concatenate(ps)


def glasses(acc: Accessories, eye_l: np.ndarray, eye_r: np.ndarray, ear_top_l: np.ndarray) -> Mesh:
    """``eye_*``: deformed eyeball front centres; ``ear_top_l``: top of the left ear (x > 0)."""
    parts: list[tuple[np.ndarray, np.ndarray, int]] = []
    seg = 28
    ang = np.linspace(0, 2 * np.pi, seg, endpoint=False)
    a, b, w = acc.frame_a, acc.frame_b, 0.0028
    z = min(eye_l[2], eye_r[2]) - 0.014
    y = 0.5 * (eye_l[1] + eye_r[1]) + 0.001
    for s, eye in ((1.0, eye_l), (-1.0, eye_r)):
        cx = s * max(abs(eye[0]), a + 0.006)
        outer = np.stack([cx + a * np.cos(ang), y + b * np.sin(ang), np.full(seg, z)], 1)
        inner = np.stack([cx + (a - w) * np.cos(ang), y + (b - w) * np.sin(ang), np.full(seg, z)], 1)
        # Wrap slightly around the face: the outer side of each rim sits further back.
        bend = 0.006 * np.clip(s * (outer[:, 0] - cx) / a, 0, 1) ** 2
        outer[:, 2] += bend
        inner[:, 2] += 0.006 * np.clip(s * (inner[:, 0] - cx) / a, 0, 1) ** 2
        v = np.concatenate([outer, inner])
        f = []
        for k in range(seg):
            k1 = (k + 1) % seg
            f += [[k, k1, seg + k1], [k, seg + k1, seg + k]]
        parts.append((v, np.asarray(f), PART_GLASSES))
        if acc.glasses == "sun":
            lens = np.concatenate([inner, [[cx, y, z]]])
            lf = np.array([[seg, (k + 1) % seg, k] for k in range(seg)])
            parts.append((lens, lf, PART_LENS))
        # Temple arm: from the rim's outer edge back to the top of the ear.
        start = np.array([cx + s * a, y, z + 0.006])
        end = np.array([s * abs(ear_top_l[0]) + s * 0.004, ear_top_l[1] - 0.002, ear_top_l[2] + 0.01])
        v, f = _strip(start, end, np.array([0.0, 1.0, 0.0]), 0.0022)
        parts.append((v, f, PART_GLASSES))
    br_l = np.array([max(abs(eye_l[0]), a + 0.006) - a, y - 0.004, z])
    br_r = br_l * np.array([-1.0, 1.0, 1.0])
    v, f = _strip(br_r, br_l, np.array([0.0, 1.0, 0.0]), 0.0018)
    parts.append((v, f, PART_GLASSES))
    return _join(parts)


def earrings(acc: Accessories, lobe_l: np.ndarray) -> Mesh:
    """``lobe_l``: lowest point of the left earlobe (x > 0); mirrored for the right."""
    parts = []
    for s in (1.0, -1.0):
        c = lobe_l * np.array([s, 1.0, 1.0])
        if acc.earrings == "hoop":
            t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
            r = 0.009
            path = np.stack([np.full(16, c[0]), c[1] + 0.001 + r * (1 - np.cos(t)), c[2] + r * np.sin(t)], 1)
            v, f = _tube(path, 0.0012, closed=True, sides=5)
        else:
            v, f = _sphere(c + np.array([0.0, 0.003, 0.0]), 0.0032)
        parts.append((v, f, PART_EARRING))
    return _join(parts)


def necklace(neck_ring: np.ndarray) -> Mesh:
    """``neck_ring``: (n, 3) closed loop around the neck (already offset from the skin)."""
    v, f = _tube(neck_ring, 0.0018, closed=True, sides=5)
    return _join([(v, f, PART_NECKLACE)])
