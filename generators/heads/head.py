"""A sampled subject: geometry in the head frame, with everything the renderer needs per vertex/face.

``sample_head(seed)`` is the one entry point: identity (shape + expression), hair style, brows,
neckline and appearance all come from child streams of one ``SeedSequence``, so the same seed gives
the same head bit for bit, and changing e.g. the appearance config leaves the geometry unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facebench.errors import InvalidConfig
from generators.heads.accessories import Accessories, earrings, glasses, necklace, sample_accessories
from generators.heads.appearance import Appearance, AppearanceConfig, sample_appearance
from generators.heads.assets import load_target
from generators.heads.hair import STYLES, HairStyle, build_curtain, build_hat, build_shell, sample_hair_style
from generators.heads.identity import Identity, IdentityConfig, identity_vertices, sample_identity
from generators.heads.mesh import (
    CUT_X,
    CUT_Y,
    MH_TO_HEAD,
    PART_GLASSES,
    PART_HAIR,
    PART_HAT,
    PART_SKIN,
    template,
    vertex_normals,
)
from generators.heads.occlusion import bake
from generators.heads.raster import single_thread
from generators.heads.regions import PART_CLASS, SURFACE, BrowStyle, CollarStyle, template_regions

HAIR_DEPTH_BIAS = 0.001  # metres: the shell wins the z-test against the scalp it hugs


@dataclass(frozen=True)
class HeadConfig:
    """Knobs for sampling subjects."""

    identity: IdentityConfig = field(default_factory=IdentityConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    hair: str = "random"  # "random" or one of hair.STYLES (bald, buzz, short, medium, long)
    p_glasses: float = 0.25
    p_earrings: float = 0.25  # scaled up for women, down for men
    p_necklace: float = 0.15
    p_hat: float = 0.08

    def __post_init__(self) -> None:
        if self.hair != "random" and self.hair not in STYLES:
            raise InvalidConfig(f"unknown hair style {self.hair!r}", hint="use random, " + ", ".join(STYLES))
        for name in ("p_glasses", "p_earrings", "p_necklace", "p_hat"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InvalidConfig(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")


@dataclass
class Head:
    """Renderable subject. Per vertex: ``verts`` (head frame, metres), ``rest`` (template position,
    drives per-pixel region rules and textures), ``normals``, ``neck_score``, ``scalp`` (hair score,
    +inf off the hair shell), ``noise`` (albedo multiplier: smooth variation, darker lash line). Per face:
    ``faces``, ``part``,
    ``face_class`` (a FACEBENCH id, or ``SURFACE`` for per-pixel rules), ``two_sided``, ``depth_bias``."""

    seed: int
    identity: Identity
    appearance: Appearance
    hair: HairStyle
    brows: BrowStyle
    collar: CollarStyle
    accessories: Accessories
    verts: np.ndarray
    rest: np.ndarray
    normals: np.ndarray
    neck_score: np.ndarray
    scalp: np.ndarray
    noise: np.ndarray
    faces: np.ndarray
    part: np.ndarray
    face_class: np.ndarray
    two_sided: np.ndarray
    depth_bias: np.ndarray
    eye_centres: np.ndarray  # (2, 3) rest-frame front centres of the left and right eyeballs
    key_light: np.ndarray  # (N,) key-light visibility (soft shadows), baked (occlusion.py)
    ambient_occlusion: np.ndarray  # (N,) in [0, 1]
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """What transforms.json records about the subject."""
        return {
            "seed": self.seed,
            "identity": self.identity.to_json(),
            "appearance": self.appearance.to_json(),
            "hair": self.hair.kind,
            "collar": self.collar.kind,
            "accessories": self.accessories.to_json(),
        }


def _sample_brows(rng: np.random.Generator, gender: float) -> BrowStyle:
    m = gender
    return BrowStyle(
        x_inner=float(rng.uniform(0.009, 0.014)),
        x_outer=float(rng.uniform(0.047, 0.056)),
        y_inner=float(rng.uniform(-0.039, -0.033)),
        arch=float(rng.uniform(0.003, 0.009)),
        drop=float(rng.uniform(-0.001, 0.004)),
        thick_inner=float(rng.uniform(0.006, 0.009) + 0.003 * m),
        thick_outer=float(rng.uniform(0.002, 0.004) + 0.001 * m),
        peak=float(rng.uniform(0.5, 0.75)),
    )


def _sample_collar(rng: np.random.Generator) -> CollarStyle:
    kind = ("crew", "v", "scoop", "high")[int(rng.choice(4, p=[0.4, 0.25, 0.25, 0.1]))]
    return CollarStyle(
        kind=kind,
        front=float(rng.uniform(0.165, 0.185)),
        back=float(rng.uniform(0.14, 0.16)),
        depth=float(rng.uniform(0.03, 0.07)),
        width=float(rng.uniform(0.04, 0.08)),
    )


def _lash_line(rest: np.ndarray, part: np.ndarray, faces: np.ndarray, t, reg) -> np.ndarray:
    """Albedo multiplier darkening the eyelid margins (lashes), strongest on the upper lid: skin
    vertices within 3.5 mm (rest) of the eye-socket faces. 1 elsewhere."""
    from scipy.spatial import cKDTree

    from generators.heads.regions import C

    sock = np.unique(t.faces[((reg.face_class == C["l_eye"]) | (reg.face_class == C["r_eye"]))
                             & (t.part == PART_SKIN)])
    out = np.ones(len(rest), np.float32)
    if sock.size == 0:
        return out
    skin_v = np.unique(faces[part == PART_SKIN])
    d, idx = cKDTree(t.rest[sock]).query(rest[skin_v])
    w = np.clip(1.0 - d / 0.0035, 0.0, 1.0)
    upper = rest[skin_v, 1] < t.rest[sock][idx, 1] + 0.001
    w = w * np.where(upper, 1.0, 0.45)
    out[skin_v] = 1.0 - 0.6 * w
    return out


def _albedo_noise(rest: np.ndarray, phase: tuple[float, ...]) -> np.ndarray:
    """Albedo multiplier around 1: smooth blotchy variation of ±7 % (a few sinusoids; symmetric in x)."""
    ax = np.abs(rest[:, 0])
    y, z = rest[:, 1], rest[:, 2]
    n = (np.sin(90 * ax + 70 * y + phase[0]) * np.sin(80 * z - 60 * y + phase[1])
         + 0.6 * np.sin(210 * ax - 170 * z + phase[2]) * np.sin(190 * y + phase[3])
         + 0.4 * np.sin(430 * y + 380 * ax + phase[4]) * np.sin(400 * z + phase[5]))
    return (1.0 + 0.07 * n / 2.0).astype(np.float32)


def _accessory_meshes(acc: Accessories, verts: np.ndarray, t, reg) -> list:
    """Glasses, earrings and necklace fitted to the deformed template ``verts``."""
    from generators.heads.mesh import PART_EYE_L, PART_EYE_R
    from generators.heads.regions import C

    out = []
    left_ear = np.unique(t.faces[reg.face_class == C["l_ear"]])
    ear = verts[left_ear]
    if acc.glasses != "none":
        fronts = []
        for p in (PART_EYE_L, PART_EYE_R):
            e = verts[np.unique(t.faces[t.part == p])]
            fronts.append(np.array([e[:, 0].mean(), e[:, 1].mean(), e[:, 2].min()]))
        top = ear[np.argmin(ear[:, 1])]
        out.append(glasses(acc, fronts[0], fronts[1], top))
    if acc.earrings != "none":
        lobe = ear[np.argmax(ear[:, 1])]
        out.append(earrings(acc, lobe + np.array([0.0, 0.002, 0.0])))
    if acc.necklace:
        skin = np.unique(t.faces[(t.part == PART_SKIN) & (reg.face_class == SURFACE)])
        out.append(necklace(_neck_ring(verts[skin], t.rest[skin])))
    return out


def _neck_ring(v: np.ndarray, rest: np.ndarray, n: int = 40) -> np.ndarray:
    """A closed loop hugging the base of the neck (3 mm off the skin), sagging 1.2 cm at the front.

    Per angle, the loop sits on the outermost skin vertex of a thin horizontal slice (in rest height)
    of the neck; the slice widens in height only if an angle bin is empty, never to the chin."""
    band = (rest[:, 1] > 0.1) & (rest[:, 1] < 0.16) & (np.abs(rest[:, 0]) < 0.09)
    v, r = v[band], rest[band]
    cz = float(np.median(v[:, 2]))
    theta = np.arctan2(v[:, 0], -(v[:, 2] - cz))  # 0 = front
    ring = []
    for k in range(n):
        a = -np.pi + 2 * np.pi * (k + 0.5) / n
        y0 = 0.125 + 0.012 * max(np.cos(a), 0.0) ** 2
        d = np.abs(((theta - a + np.pi) % (2 * np.pi)) - np.pi)
        for tol in (0.005, 0.01, 0.02):
            sel = (d < 1.5 * np.pi / n) & (np.abs(r[:, 1] - y0) < tol)
            if sel.any():
                break
        else:
            sel = d < 3 * np.pi / n
        rad = np.hypot(v[sel, 0], v[sel, 2] - cz).max() + 0.003
        y = float(np.median(v[sel, 1]))
        ring.append([rad * np.sin(a), y, cz - rad * np.cos(a)])
    return np.asarray(ring)


def sample_head(seed: int, config: HeadConfig | None = None) -> Head:
    """Draw a subject: same seed and config, same head (bit for bit)."""
    cfg = config or HeadConfig()
    seed = int(seed)
    ss = np.random.SeedSequence([seed, 0x4EAD])
    rng_hair, rng_brow, rng_collar, rng_app, rng_acc = (np.random.default_rng(s) for s in ss.spawn(5))
    ident = sample_identity(seed, cfg.identity)
    v_mh = identity_vertices(ident, symmetric=cfg.identity.symmetric)
    li, _ = load_target("ears/l-ear-scale-incr.target.gz")
    ri, _ = load_target("ears/r-ear-scale-incr.target.gz")
    origin = 0.5 * (v_mh[li].mean(0) + v_mh[ri].mean(0))
    if cfg.identity.symmetric:
        origin[0] = 0.0
    t = template()
    reg = template_regions()
    verts = (v_mh[t.base_ids] - origin) @ MH_TO_HEAD.T
    body = np.zeros(len(verts), bool)
    body[t.faces[t.part == PART_SKIN].ravel()] = True
    verts[body, 1] = np.minimum(verts[body, 1], CUT_Y)
    verts[body, 0] = np.clip(verts[body, 0], -CUT_X, CUT_X)
    normals = vertex_normals(verts, t.faces)
    rest = t.rest
    hair = sample_hair_style(rng_hair, ident.gender, ident.age, None if cfg.hair == "random" else cfg.hair)
    brows = _sample_brows(rng_brow, ident.gender)
    collar = _sample_collar(rng_collar)
    app = sample_appearance(rng_app, ident.age, cfg.appearance)
    acc = sample_accessories(rng_acc, ident.gender, cfg.p_glasses, cfg.p_earrings, cfg.p_necklace, cfg.p_hat)

    faces = [t.faces]
    part = [t.part]
    fclass = [reg.face_class]
    all_verts = [verts]
    all_rest = [rest]
    all_norm = [normals]
    neck = [reg.neck_score]
    scalp = [np.full(len(verts), np.inf, dtype=np.float32)]
    if hair.present:
        allowed = (t.part == PART_SKIN) & (reg.face_class == SURFACE)
        src, pos, sfaces, score = build_shell(verts, normals, rest, t.faces, allowed, reg.ear_weight, hair)
        cpos, crest, cfaces, hang = build_curtain(pos, rest[src], sfaces, hair)
        score = score.copy()
        score[hang] = np.maximum(score[hang], 2.0)
        shell_rest = np.concatenate([rest[src], crest])
        pos = np.concatenate([pos, cpos])
        n_shell_faces, n_curtain_faces = len(sfaces), len(cfaces)
        sfaces = np.concatenate([sfaces, cfaces])
        src_all = np.concatenate([src, np.full(len(cpos), -1)])
        score = np.concatenate([score, np.full(len(cpos), 90.0)])
        off = len(verts)
        shell_n = vertex_normals(pos, sfaces)
        all_verts.append(pos)
        all_rest.append(shell_rest)
        all_norm.append(shell_n)
        neck.append(np.where(src_all >= 0, reg.neck_score[np.maximum(src_all, 0)], -1.0).astype(np.float32))
        scalp.append(score.astype(np.float32))
        faces.append(sfaces + off)
        part.append(np.full(len(sfaces), PART_HAIR, np.uint8))
        fclass.append(np.full(len(sfaces), SURFACE, np.uint8))
    extra = _accessory_meshes(acc, verts, t, reg)
    if acc.hat:
        allowed = (t.part == PART_SKIN) & (reg.face_class == SURFACE)
        hsrc, hpos, hfaces = build_hat(verts, normals, rest, t.faces, allowed, reg.ear_weight, hair, rng_acc)
        extra.append((hpos, hfaces, np.full(len(hfaces), PART_HAT, np.uint8)))
    off = sum(len(v) for v in all_verts)
    for v, f, p in extra:
        if len(f) == 0:
            continue
        all_verts.append(v)
        all_rest.append(v)
        all_norm.append(vertex_normals(v, f))
        neck.append(np.full(len(v), -1.0, np.float32))
        scalp.append(np.full(len(v), np.inf, np.float32))
        faces.append(f + off)
        part.append(p)
        fclass.append(np.array([PART_CLASS[int(k)] for k in p], np.uint8))
        off += len(v)
    faces_a = np.concatenate(faces)
    part_a = np.concatenate(part)
    rest_a = np.concatenate(all_rest)
    # Torso faces are two-sided: the crop leaves a hole at the chest, through which one sees the
    # inside of the shirt. Hair too: its underside shows at the nape from below.
    # Two-sided where a back face can show: the torso (through the bust cut, from below, one sees the
    # inside of the shirt), hair (at grazing angles lumpy shell triangles flip while the scalp under
    # them does not; the curtain hangs free) and the thin accessories.
    torso = rest_a[faces_a].mean(1)[:, 1] > 0.12
    curtain = np.zeros(len(faces_a), bool)
    if hair.present:
        k = len(t.faces)
        curtain[k + n_shell_faces: k + n_shell_faces + n_curtain_faces] = True
    two_sided = curtain | (part_a == PART_HAIR) | ((part_a == PART_SKIN) & torso) | (part_a >= PART_GLASSES)
    bias = np.where(part_a == PART_HAIR, HAIR_DEPTH_BIAS, 0.0)
    from generators.heads.mesh import PART_EYE_L, PART_EYE_R

    eye_c = []
    for p in (PART_EYE_L, PART_EYE_R):
        vid = np.unique(t.faces[t.part == p])
        r = rest[vid]
        c = r.mean(0)
        front = r[np.argmin(r[:, 2])]
        eye_c.append(np.array([c[0], c[1], front[2]]))
    all_v = np.concatenate(all_verts)
    all_n = np.concatenate(all_norm)
    with single_thread():
        key, ao = bake(all_v, faces_a, all_n, np.asarray(app.light_dir), two_sided)
    return Head(
        seed=seed, identity=ident, appearance=app, hair=hair, brows=brows, collar=collar,
        verts=all_v, rest=rest_a, normals=all_n,
        neck_score=np.concatenate(neck), scalp=np.concatenate(scalp),
        noise=_albedo_noise(rest_a, app.noise_phase) * _lash_line(rest_a, part_a, faces_a, t, reg),
        faces=faces_a, part=part_a,
        face_class=np.concatenate(fclass), two_sided=two_sided, depth_bias=bias, accessories=acc,
        eye_centres=np.stack(eye_c), key_light=key, ambient_occlusion=ao,
    )  # fmt: skip
