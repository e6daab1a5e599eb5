"""Seeded appearance: colours (skin, hair, brows, lips, eyes, clothes), lighting and backgrounds.

Colours are drawn in sRGB from ranges that real people span and converted to linear light for
shading. Skin tone walks a curve through measured-looking swatches from very light to very dark
(so every tone in between is reachable) with a small random undertone shift. Lighting is fixed in
the head frame per subject (a multiview capture must be photometrically consistent for 3DGS):
one directional key light, a weaker fill from the other side, ambient, and a faint specular sheen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facebench.errors import InvalidConfig

_SKIN = np.array([
    (255, 226, 204), (241, 198, 170), (226, 176, 138), (205, 146, 106), (175, 118, 80),
    (140, 92, 62), (110, 70, 48), (82, 54, 38), (60, 40, 30),
], dtype=np.float64)  # fmt: skip
_HAIR = {
    "black": (22, 18, 16), "dark_brown": (48, 32, 24), "brown": (90, 60, 38), "light_brown": (135, 100, 65),
    "blonde": (205, 170, 110), "auburn": (125, 55, 30), "grey": (150, 148, 145), "white": (218, 214, 206),
}  # fmt: skip
_EYES = {
    "dark": (45, 28, 18), "brown": (88, 52, 26), "hazel": (115, 85, 45), "green": (85, 112, 66),
    "blue": (72, 112, 165), "grey": (112, 122, 132),
}  # fmt: skip
BACKGROUNDS = ("solid", "gradient", "noise")


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb_u8(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    s = np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)
    return np.round(s * 255.0).astype(np.uint8)


@dataclass(frozen=True)
class AppearanceConfig:
    """Which backgrounds to draw from; ``background`` is "random" or one of BACKGROUNDS."""

    background: str = "random"

    def __post_init__(self) -> None:
        if self.background != "random" and self.background not in BACKGROUNDS:
            raise InvalidConfig(f"unknown background {self.background!r}",
                                hint="use random, " + ", ".join(BACKGROUNDS))


@dataclass(frozen=True)
class Appearance:
    """Linear-light colours (RGB floats in [0, 1]) and lighting, all fixed per subject."""

    skin_tone: float  # 0 very light .. 1 very dark
    skin: tuple[float, float, float]
    lips: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_name: str
    brows: tuple[float, float, float]
    iris: tuple[float, float, float]
    eye_name: str
    cloth: tuple[float, float, float]
    cloth_stripes: float  # 0 plain, else stripe contrast
    frame: tuple[float, float, float]  # glasses frame
    metal: tuple[float, float, float]  # earrings, necklace
    light_dir: tuple[float, float, float]  # head frame, pointing from the surface to the light
    light: float
    fill: float
    ambient: float
    specular: float
    tint: tuple[float, float, float]  # light colour
    background: str
    bg_colours: tuple[tuple[float, float, float], tuple[float, float, float]]
    noise_phase: tuple[float, ...]

    def to_json(self) -> dict:
        u8 = lambda c: [int(v) for v in linear_to_srgb_u8(np.asarray(c))]  # noqa: E731
        return {
            "skin_tone": round(self.skin_tone, 4), "skin_srgb": u8(self.skin), "hair": self.hair_name,
            "hair_srgb": u8(self.hair), "eyes": self.eye_name, "cloth_srgb": u8(self.cloth),
            "light_dir": [round(v, 4) for v in self.light_dir], "background": self.background,
        }  # fmt: skip


def _skin_colour(tone: float) -> np.ndarray:
    x = tone * (len(_SKIN) - 1)
    i = min(int(x), len(_SKIN) - 2)
    f = x - i
    return _SKIN[i] * (1 - f) + _SKIN[i + 1] * f


def sample_appearance(
    rng: np.random.Generator, age: float, config: AppearanceConfig | None = None
) -> Appearance:
    cfg = config or AppearanceConfig()
    tone = float(rng.random())
    skin = _skin_colour(tone) * (1.0 + rng.normal(0, 0.03, 3)) + np.array([rng.normal(0, 4), 0, rng.normal(0, 4)])
    grey_p = max(0.0, age - 0.45) * 1.6
    names = list(_HAIR)
    p = np.array([0.30, 0.25, 0.17, 0.10, 0.08, 0.05, 0.0, 0.0])
    if tone > 0.5:
        p = np.array([0.6, 0.3, 0.08, 0.02, 0.0, 0.0, 0.0, 0.0])
    p = p * (1 - grey_p) + np.array([0, 0, 0, 0, 0, 0, 0.6, 0.4]) * grey_p
    hair_name = names[int(rng.choice(len(names), p=p / p.sum()))]
    hair = np.array(_HAIR[hair_name]) * rng.uniform(0.85, 1.15)
    brows = np.minimum(hair, np.array(_HAIR["dark_brown"]) * 1.3) if hair_name in ("grey", "white", "blonde") \
        else hair * 0.8
    eye_names = list(_EYES)
    pe = np.array([0.3, 0.3, 0.12, 0.08, 0.12, 0.08]) if tone < 0.4 else np.array([0.55, 0.4, 0.05, 0, 0, 0])
    eye_name = eye_names[int(rng.choice(len(eye_names), p=pe / pe.sum()))]
    lips = skin * np.array([0.86, 0.58, 0.6]) * rng.uniform(0.85, 1.0)
    if rng.random() < 0.15:  # lipstick
        lips = np.array([rng.uniform(120, 200), rng.uniform(20, 60), rng.uniform(40, 80)])
    hue = rng.random()
    sat = rng.uniform(0.1, 0.8)
    val = rng.uniform(0.2, 0.95)
    cloth = np.array(_hsv_to_rgb(hue, sat, val)) * 255.0
    # Key light from the front hemisphere and above, in the head frame (x left, y down, z into head).
    az = rng.uniform(-70, 70)
    el = rng.uniform(10, 60)
    d = np.array([np.sin(np.radians(az)) * np.cos(np.radians(el)), -np.sin(np.radians(el)),
                  -np.cos(np.radians(az)) * np.cos(np.radians(el))])
    warm = rng.uniform(-0.08, 0.08)
    frame = np.array([(20, 20, 22), (60, 35, 20), (120, 90, 60), (150, 150, 155), (90, 20, 30)][int(rng.integers(5))])
    metal = np.array([(212, 175, 55), (192, 192, 198), (230, 225, 210)][int(rng.integers(3))])
    bg_kind = cfg.background if cfg.background != "random" else BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    bg = tuple(tuple(srgb_to_linear(rng.uniform(20, 235, 3)).tolist()) for _ in range(2))
    return Appearance(
        skin_tone=tone, skin=_lin(skin), lips=_lin(lips), hair=_lin(hair), hair_name=hair_name,
        brows=_lin(brows), iris=_lin(np.array(_EYES[eye_name]) * rng.uniform(0.85, 1.15)), eye_name=eye_name,
        cloth=_lin(cloth), cloth_stripes=float(rng.uniform(0.2, 0.5) if rng.random() < 0.3 else 0.0),
        frame=_lin(frame), metal=_lin(metal),
        light_dir=tuple(float(v) for v in d), light=float(rng.uniform(0.75, 1.05)),
        fill=float(rng.uniform(0.1, 0.3)), ambient=float(rng.uniform(0.25, 0.45)),
        specular=float(rng.uniform(0.03, 0.12)), tint=(1.0 + warm, 1.0, 1.0 - warm),
        background=bg_kind, bg_colours=bg,  # type: ignore[arg-type]
        noise_phase=tuple(float(v) for v in rng.uniform(0, 2 * np.pi, 6)),
    )  # fmt: skip


def _lin(c: np.ndarray) -> tuple[float, float, float]:
    v = srgb_to_linear(np.clip(c, 0, 255))
    return (float(v[0]), float(v[1]), float(v[2]))


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def background(app: Appearance, height: int, width: int, seed: int) -> np.ndarray:
    """H×W×3 linear background: solid, vertical/diagonal gradient, or smooth noise."""
    c0, c1 = np.asarray(app.bg_colours[0]), np.asarray(app.bg_colours[1])
    if app.background == "solid":
        return np.broadcast_to(c0, (height, width, 3)).copy()
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    if app.background == "gradient":
        a = app.noise_phase[0]
        t = np.clip(0.5 + (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)), 0, 1)[..., None]
        return c0 * (1 - t) + c1 * t
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xB6]))
    small = rng.random((8, 8, 3))
    from PIL import Image

    up = np.stack([np.asarray(Image.fromarray((small[..., k] * 255).astype(np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC), dtype=np.float64) / 255.0 for k in range(3)], -1)
    fine = rng.random((height, width, 1)) * 0.08
    t = np.clip(up * 0.9 + fine, 0, 1)
    return c0 * (1 - t) + c1 * t
