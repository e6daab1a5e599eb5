"""Hair as a volume: a shell offset from the scalp along the normals, thickest on top, fading to zero
at a seeded hairline.

The scalp is defined on the *template* surface (rest coordinates), so a style sits on any identity
like a wig fitted to the head. With ``c`` near the skull centre, a rest point has an azimuth ``az``
(0 = face, ±180° = back) and an elevation ``el``; the hairline is a curve ``E(|az|)`` through
five control elevations (forehead, temple, above the ear, behind the ear, nape), and the scalp score
is ``s = el - E(|az|)`` in degrees. The shell is built over every template face that touches s > 0;
its thickness is ``T(az, el) · smoothstep(0, ramp, s)`` plus low-frequency lumps, and it is reduced near
the ears so they stay visible. Per pixel, a hair triangle is labelled ``hair`` where the interpolated
score is >= 0 and falls back to the skin rules elsewhere (there the shell lies on the skin), so the
hairline is a smooth curve rather than a staircase of mesh edges. Styles are symmetric in x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STYLES = ("bald", "buzz", "short", "medium", "long")
_CENTRE = np.array([0.0, -0.01, -0.005])
_CONTROL_AZ = np.array([0.0, 45.0, 85.0, 115.0, 150.0, 180.0])


@dataclass(frozen=True)
class HairStyle:
    """A hair volume. Elevations in degrees above the horizontal through the skull centre."""

    kind: str = "short"
    hairline: tuple[float, float, float, float, float, float] = (40.0, 30.0, 26.0, 10.0, -25.0, -32.0)
    thickness_top: float = 0.012  # metres
    thickness_side: float = 0.006
    thickness_back: float = 0.009
    drop: float = 0.0  # long hair: extra thickness growing down the back of the neck
    length: float = 0.0  # long hair: head-frame y (metres below the ears) where the hanging curtain ends
    ramp: float = 6.0  # degrees over which thickness fades in from the hairline
    lumps: float = 0.25  # relative amplitude of low-frequency thickness noise
    phases: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)

    @property
    def present(self) -> bool:
        return self.kind != "bald"


def sample_hair_style(rng: np.random.Generator, gender: float, age: float, kind: str | None = None) -> HairStyle:
    """A plausible style: men more often short/buzz/bald, women more often medium/long.
    ``kind`` forces the style (its shape parameters are still drawn)."""
    male = gender > 0.5
    p = np.array([0.03 + 0.15 * age, 0.2, 0.45, 0.22, 0.10]) if male else np.array([0.0, 0.03, 0.17, 0.40, 0.40])
    drawn = STYLES[int(rng.choice(len(STYLES), p=p / p.sum()))]
    kind = kind or drawn
    recede = rng.uniform(0, 12) * (age if male else 0.3 * age)
    front = rng.uniform(34, 44) + recede
    temple = front - rng.uniform(2, 10) + (recede * 0.8 if male else 0)
    side = rng.uniform(20, 28)
    behind = rng.uniform(5, 14)
    back = rng.uniform(-30, -20)
    nape = rng.uniform(-38, -30)
    drop = length = 0.0
    if kind == "buzz":
        t = (rng.uniform(0.002, 0.004),) * 3
    elif kind == "short":
        t = (rng.uniform(0.008, 0.02), rng.uniform(0.004, 0.008), rng.uniform(0.006, 0.012))
    elif kind == "medium":
        t = (rng.uniform(0.015, 0.03), rng.uniform(0.012, 0.02), rng.uniform(0.014, 0.025))
        side, behind, back, nape = side - 14, behind - 25, back - 15, nape - 12
        if rng.random() < 0.5:  # a fringe
            front = rng.uniform(18, 28)
    elif kind == "long":
        t = (rng.uniform(0.015, 0.03), rng.uniform(0.015, 0.025), rng.uniform(0.02, 0.03))
        side, behind, back, nape = side - 20, behind - 35, back - 22, nape - 20
        drop = rng.uniform(0.01, 0.03)
        length = rng.uniform(0.14, 0.22)
        if rng.random() < 0.4:
            front = rng.uniform(18, 28)
    else:
        t = (0.0, 0.0, 0.0)
    return HairStyle(
        kind=kind,
        hairline=(front, temple, side, behind, back, nape),
        thickness_top=float(t[0]), thickness_side=float(t[1]), thickness_back=float(t[2]),
        drop=float(drop), length=float(length), ramp=float(rng.uniform(4, 9)), lumps=float(rng.uniform(0.1, 0.35)),
        phases=tuple(float(x) for x in rng.uniform(0, 2 * np.pi, 4)),
    )  # fmt: skip


def angles(rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|azimuth|, elevation) in degrees of rest points around the skull centre (x symmetric)."""
    d = rest - _CENTRE
    az = np.degrees(np.arctan2(np.abs(d[:, 0]), -d[:, 2]))
    el = np.degrees(np.arctan2(-d[:, 1], np.hypot(d[:, 0], d[:, 2])))
    return az, el


def scalp_score(rest: np.ndarray, style: HairStyle) -> np.ndarray:
    """Degrees above the hairline (>= 0 is under hair)."""
    az, el = angles(rest)
    return el - np.interp(az, _CONTROL_AZ, np.asarray(style.hairline))


def thickness(rest: np.ndarray, score: np.ndarray, ear_weight: np.ndarray, style: HairStyle) -> np.ndarray:
    az, el = angles(rest)
    front_w = np.cos(np.radians(az)) * 0.5 + 0.5  # 1 at the face, 0 at the back
    top_w = np.clip((el - 10.0) / 50.0, 0.0, 1.0)
    side = style.thickness_side * front_w + style.thickness_back * (1.0 - front_w)
    t = side + (style.thickness_top - side) * top_w
    if style.drop > 0:
        below = np.clip((rest[:, 1] + 0.02) / 0.12, 0.0, 1.0) * (1.0 - front_w) ** 2
        t = t + style.drop * below
    x = np.clip(score / style.ramp, 0.0, 1.0)
    t = t * x * x * (3.0 - 2.0 * x)
    p = style.phases
    ax = np.abs(rest[:, 0])
    lump = (np.sin(37.0 * ax + 23.0 * rest[:, 1] + p[0]) * np.sin(29.0 * rest[:, 2] - 31.0 * rest[:, 1] + p[1])
            + 0.5 * np.sin(71.0 * ax + 53.0 * rest[:, 2] + p[2]))
    t = t * (1.0 + style.lumps * lump / 1.5)
    t = t * np.clip(1.0 - 2.5 * ear_weight, 0.0, 1.0)
    return np.maximum(t, 0.0)


def build_shell(
    verts: np.ndarray,
    normals: np.ndarray,
    rest: np.ndarray,
    faces: np.ndarray,
    allowed: np.ndarray,
    ear_weight: np.ndarray,
    style: HairStyle,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hair shell over the scalp.

    ``allowed``: (m,) bool template faces hair may cover (skin surface, not ears/eyes/lips/nose).
    Returns (source vertex ids (k,), shell vertex positions (k, 3), shell faces (f, 3) in shell-local
    ids, per-vertex scalp score (k,)).
    """
    score = scalp_score(rest, style)
    touch = allowed & (score[faces] > 0).any(1)
    sel = faces[touch]
    src = np.unique(sel)
    local = np.full(len(verts), -1, dtype=np.int64)
    local[src] = np.arange(len(src))
    t = thickness(rest[src], score[src], ear_weight[src], style)
    pos = verts[src] + normals[src] * (t[:, None] + 0.0004)
    return src, pos, local[sel], score[src]


def build_curtain(
    pos: np.ndarray, rest: np.ndarray, faces: np.ndarray, style: HairStyle
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Long hair: a two-segment strip hanging from the shell's lower back edge down to ``style.length``.

    ``pos``/``rest``/``faces``: the shell (local ids). Returns (positions (k, 3), rest (k, 3), faces
    (f, 3) indexing [shell vertices, then the k new ones], shell vertex ids the strip hangs from —
    the caller marks those as hair so no band of scalp shows between shell and strip)."""
    none = np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
    if style.length <= 0 or len(faces) == 0:
        return none
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = np.sort(e, 1)
    uniq, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    boundary = e[cnt[inv.ravel()] == 1]  # keep the faces' orientation
    az, el = angles(rest)
    hang = (az[boundary] > 118).all(1) & (el[boundary] < 0).all(1)
    edges = boundary[hang]
    if len(edges) == 0:
        return none
    verts = np.unique(edges)
    n = len(pos)
    slot = np.full(n, -1, dtype=np.int64)
    slot[verts] = np.arange(len(verts))
    p = pos[verts]
    out = np.stack([p[:, 0], np.zeros(len(p)), p[:, 2] - _CENTRE[2]], 1)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    length = np.maximum(style.length - p[:, 1], 0.02)
    # Flare outward with length so the strip clears the back and shoulders it falls on.
    flare = 0.025 + 0.3 * length
    mid = p + np.array([0, 1, 0]) * (0.5 * length)[:, None] + out * (0.7 * flare)[:, None]
    end = p + np.array([0, 1, 0]) * length[:, None] + out * flare[:, None]
    r = rest[verts]
    r_mid = r + np.array([0, 1, 0]) * (0.5 * length)[:, None]
    r_end = r + np.array([0, 1, 0]) * length[:, None]
    k = len(verts)
    a, b = edges[:, 0], edges[:, 1]
    am, bm = n + slot[a], n + slot[b]
    ae, be = n + k + slot[a], n + k + slot[b]
    # The shell edge a->b runs along a face; the strip continues that face's orientation downward.
    f = np.concatenate([np.stack([b, a, am], 1), np.stack([b, am, bm], 1),
                        np.stack([bm, am, ae], 1), np.stack([bm, ae, be], 1)])
    return np.concatenate([mid, end]), np.concatenate([r_mid, r_end]), f, verts


def build_hat(
    verts: np.ndarray,
    normals: np.ndarray,
    rest: np.ndarray,
    faces: np.ndarray,
    allowed: np.ndarray,
    ear_weight: np.ndarray,
    hair: HairStyle,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A knit cap: a thick shell over the crown (rest elevation above a seeded rim line), sitting on top
    of the hair shell, cut exactly along the rim line (``clip_mesh``); the rim is an open edge whose
    underside shows from below (the shell is two-sided). Returns (source ids, positions, faces)."""
    rim = rng.uniform(24, 34)
    back = rng.uniform(-5, 12)
    style = HairStyle(kind="hat", hairline=(rim, rim - 2, rim - 6, (rim + back) / 2, back, back),
                      thickness_top=float(rng.uniform(0.012, 0.02)), thickness_side=0.01, thickness_back=0.012,
                      ramp=1.0, lumps=0.05)
    score = scalp_score(rest, style)
    touch = allowed & (score[faces] > 0).any(1)
    sel = faces[touch]
    src = np.unique(sel)
    local = np.full(len(verts), -1, dtype=np.int64)
    local[src] = np.arange(len(src))
    under = np.zeros(len(src))
    if hair.present:
        under = thickness(rest[src], scalp_score(rest[src], hair), ear_weight[src], hair)
    t = under + style.thickness_top * 0.8 + 0.002
    pos = verts[src] + normals[src] * t[:, None]
    # Cut the rim exactly along the rest-space line score = 0, so it is a smooth curve.
    pos, faces_c = clip_mesh(pos, local[sel], score[src])
    return src, pos, faces_c


def clip_mesh(verts: np.ndarray, faces: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the part of a triangle mesh where the per-vertex ``value`` (linearly interpolated) is >= 0.

    Triangles that straddle the zero line are cut along it (one triangle or a quad as two), windings
    kept. Cut points are computed per undirected edge, so neighbours share them exactly (no cracks).
    Returns (vertices (original + cut points), faces)."""
    inside = value[faces] >= 0
    n_in = inside.sum(1)
    keep = faces[n_in == 3]
    mixed = faces[(n_in == 1) | (n_in == 2)]
    if len(mixed) == 0:
        return verts, keep
    m_in = value[mixed] >= 0
    # Rotate each mixed triangle so that its odd vertex (the lone inside, or the lone outside) is first.
    lone = np.where(m_in.sum(1) == 1, np.argmax(m_in, 1), np.argmax(~m_in, 1))
    idx = (lone[:, None] + np.arange(3)[None, :]) % 3
    tri = np.take_along_axis(mixed, idx, 1)
    one_in = m_in.sum(1) == 1
    # Cut points on edges (0,1) and (0,2).
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [0, 2]]])
    key = np.sort(edges, 1)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.ravel()
    a, b = uniq[:, 0], uniq[:, 1]
    w = value[a] / (value[a] - value[b])
    pts = verts[a] + w[:, None] * (verts[b] - verts[a])
    base = len(verts)
    e01 = base + inv[: len(tri)]
    e02 = base + inv[len(tri):]
    v0, v1, v2 = tri[:, 0], tri[:, 1], tri[:, 2]
    out = [keep]
    # Lone vertex inside: triangle (v0, e01, e02).
    out.append(np.stack([v0, e01, e02], 1)[one_in])
    # Lone vertex outside: quad (e01, v1, v2, e02).
    q = ~one_in
    out.append(np.stack([e01, v1, v2], 1)[q])
    out.append(np.stack([e01, v2, e02], 1)[q])
    return np.concatenate([verts, pts]), np.concatenate(out)
