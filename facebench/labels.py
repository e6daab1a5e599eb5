"""The label vocabulary: 19 face-parsing classes, palette, remapping by name, flips.

The order is the one of the widely used BiSeNet face parser (CelebAMask-HQ classes).
``l_``/``r_`` are the *subject's* anatomical sides, so a label belongs to the geometry
and survives any viewpoint; a horizontal image flip therefore swaps the pairs.
Other datasets' orders are remapped by class *name*, never by index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from facebench.errors import InvalidMask

IGNORE = 255

FACEBENCH_CLASSES: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)  # fmt: skip

# Colours chosen for telling neighbours apart in overlays (left/right pairs are hue-shifted twins).
FACEBENCH_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (204, 153, 128), (128, 64, 0), (192, 96, 32), (0, 96, 255), (0, 192, 255),
    (255, 255, 0), (255, 0, 128), (255, 96, 192), (0, 255, 128), (255, 128, 0), (128, 0, 128),
    (255, 0, 0), (160, 0, 32), (230, 200, 160), (64, 255, 255), (64, 96, 192), (96, 48, 16),
    (128, 128, 128),
)  # fmt: skip

# Other names for the same classes, as spelled by other projects (FaRL/facer, LaPa, Helen) and by the id2label
# of models on the Hugging Face Hub (CelebAMask-HQ face parsers, human parsers such as ATR/LIP: "Face",
# "Sunglasses", "Upper-clothes"). Keys are lower case with "_" for spaces and hyphens (see canonical_name).
ALIASES: dict[str, str] = {
    "bg": "background", "face": "skin",
    "lb": "l_brow", "rb": "r_brow", "left_eyebrow": "l_brow", "right_eyebrow": "r_brow",
    "le": "l_eye", "re": "r_eye", "left_eye": "l_eye", "right_eye": "r_eye",
    "eyeg": "eye_g", "eyeglasses": "eye_g", "eye_glasses": "eye_g", "glasses": "eye_g", "sunglasses": "eye_g",
    "lr": "l_ear", "rr": "r_ear", "left_ear": "l_ear", "right_ear": "r_ear",
    "earr": "ear_r", "earring": "ear_r", "earrings": "ear_r", "ear_ring": "ear_r",
    "imouth": "mouth", "inner_mouth": "mouth", "teeth": "mouth",
    "ulip": "u_lip", "llip": "l_lip", "upper_lip": "u_lip", "lower_lip": "l_lip",
    "necklace": "neck_l", "neck_lace": "neck_l",
    "clothes": "cloth", "clothing": "cloth", "upper_clothes": "cloth",
}  # fmt: skip

_PAIRS = (("l_brow", "r_brow"), ("l_eye", "r_eye"), ("l_ear", "r_ear"))


def canonical_name(name: str) -> str:
    """Map another project's spelling of a class to facebench's ("Left-Eye", "left eye" and "le" are l_eye)."""
    key = "_".join(name.strip().lower().replace("-", " ").split())
    return ALIASES.get(key, key)


@dataclass(frozen=True)
class LabelSet:
    """An ordered list of class names (index = class id) with a colour per class."""

    names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...] = field(default=())
    name: str = "custom"

    def __post_init__(self) -> None:
        if len(self.names) > IGNORE:
            raise ValueError("at most 255 classes; 255 is reserved for 'ignore'")
        if not self.palette:
            rng = np.random.default_rng(len(self.names))
            colours = rng.integers(0, 256, size=(len(self.names), 3))
            object.__setattr__(self, "palette", tuple(tuple(int(v) for v in c) for c in colours))

    def __len__(self) -> int:
        return len(self.names)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Class id of ``name`` (any known spelling)."""
        canon = [canonical_name(n) for n in self.names]
        return canon.index(canonical_name(name))

    @cached_property
    def palette_array(self) -> np.ndarray:
        """(num_classes, 3) uint8 colours."""
        return np.asarray(self.palette, dtype=np.uint8)

    @cached_property
    def flip_lut(self) -> np.ndarray:
        """256-entry LUT that swaps left/right pairs: apply after a horizontal image flip."""
        lut = np.arange(256, dtype=np.uint8)
        canon = [canonical_name(n) for n in self.names]
        for left, right in _PAIRS:
            if left in canon and right in canon:
                i, j = canon.index(left), canon.index(right)
                lut[i], lut[j] = j, i
        return lut

    @cached_property
    def merged(self) -> tuple[LabelSet, np.ndarray]:
        """A view with each left/right pair merged into one class, plus the 256-entry LUT to it."""
        canon = [canonical_name(n) for n in self.names]
        pair_of = {}
        for left, right in _PAIRS:
            pair_of[left] = pair_of[right] = left[2:]
        new_names: list[str] = []
        lut = np.full(256, IGNORE, dtype=np.uint8)
        for i, n in enumerate(canon):
            merged_name = pair_of.get(n, n)
            if merged_name not in new_names:
                new_names.append(merged_name)
            lut[i] = new_names.index(merged_name)
        palette = tuple(self.palette[canon.index(n)] if n in canon else self.palette[canon.index("l_" + n)]
                        for n in new_names)
        return LabelSet(tuple(new_names), palette, name=f"{self.name}-merged"), lut

    def flip(self, mask: np.ndarray) -> np.ndarray:
        """Horizontally flip an H×W mask and swap left/right classes."""
        return self.flip_lut[np.ascontiguousarray(mask[:, ::-1])]

    def lut_from(self, source: LabelSet, missing: int = IGNORE) -> np.ndarray:
        """256-entry LUT mapping ``source`` ids to ours by name; unknown names become ``missing``."""
        ours = {canonical_name(n): i for i, n in enumerate(self.names)}
        lut = np.full(256, IGNORE, dtype=np.uint8)
        for i, n in enumerate(source.names):
            lut[i] = ours.get(canonical_name(n), missing)
        return lut

    def remap_from(self, mask: np.ndarray, source: LabelSet, missing: int = IGNORE) -> np.ndarray:
        """Re-express a ``source``-labelled mask in this label set, matching classes by name."""
        return self.lut_from(source, missing)[mask]

    def validate(self, mask: np.ndarray, path: str | Path | None = None) -> np.ndarray:
        """Check dtype, rank and values; return the mask or raise InvalidMask naming ``path``."""
        if mask.ndim != 2:
            raise InvalidMask(f"mask must be H×W class ids, got shape {mask.shape}", path)
        if mask.dtype != np.uint8:
            raise InvalidMask(f"mask must be uint8, got {mask.dtype}", path)
        counts = np.bincount(mask.ravel(), minlength=256)
        bad = np.flatnonzero(counts[self.num_classes:IGNORE])
        if bad.size:
            vals = ", ".join(str(v + self.num_classes) for v in bad[:5])
            raise InvalidMask(
                f"illegal label values {vals} (allowed 0..{self.num_classes - 1} and 255)", path
            )
        return mask

    def colorize(self, mask: np.ndarray) -> np.ndarray:
        """H×W ids -> H×W×3 uint8 colours; ignore (255) is drawn white."""
        table = np.full((256, 3), 255, dtype=np.uint8)
        table[: self.num_classes] = self.palette_array
        return table[mask]

    def overlay(self, image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
        """Blend the colourised mask over an RGB image (background left untouched)."""
        colour = self.colorize(mask).astype(np.float32)
        out = image.astype(np.float32)
        fg = (mask != 0)[..., None]
        out = np.where(fg, (1 - alpha) * out + alpha * colour, out)
        return out.round().clip(0, 255).astype(np.uint8)


FACEBENCH = LabelSet(FACEBENCH_CLASSES, FACEBENCH_PALETTE, name="facebench")

# The official CelebAMask-HQ order (its g_mask.py), background first.
CELEBAMASK_HQ = LabelSet(
    ("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
     "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"),
    name="celebamask-hq",
)  # fmt: skip

# LaPa's 11 classes.
LAPA = LabelSet(
    ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "u_lip", "mouth", "l_lip", "hair"),
    name="lapa",
)

# FaRL / facer's CelebAMask-HQ order, with its short names.
FARL = LabelSet(
    ("background", "neck", "face", "cloth", "rr", "lr", "rb", "lb", "re", "le", "nose", "imouth",
     "llip", "ulip", "hair", "eyeg", "hat", "earr", "neck_l"),
    name="farl",
)  # fmt: skip

LABEL_SETS: dict[str, LabelSet] = {ls.name: ls for ls in (FACEBENCH, CELEBAMASK_HQ, LAPA, FARL)}
# Label orders as users name them: "bisenet" is facebench's (the widely used BiSeNet face parser's); Helen
# and iBugMask share LaPa's eleven classes in LaPa's order.
ORDERS: dict[str, LabelSet] = {**LABEL_SETS, "bisenet": FACEBENCH, "helen": LAPA, "ibugmask": LAPA}


def label_order(spec: str) -> LabelSet:
    """A declared label order: a known name (``ORDERS``) or an ``id2label.json`` ({"0": "background", ...})."""
    from facebench.errors import InvalidConfig

    if spec.lower() in ORDERS:
        return ORDERS[spec.lower()]
    path = Path(spec)
    if not path.is_file():
        raise InvalidConfig(f"--labels: unknown label order {spec!r}",
                            hint=f"use one of {', '.join(sorted(ORDERS))} or a path to an id2label.json")
    labels = read_id2label(path, InvalidConfig)
    unknown = [n for n in labels.names if canonical_name(n) not in FACEBENCH_CLASSES]
    if unknown:
        raise InvalidConfig(f"classes facebench does not know: {', '.join(unknown[:5])}", path,
                            hint="rename them to facebench's names (labels.py) or their known aliases")
    return labels


ID2LABEL_FORM = '{"0": "background", "1": "skin", ...}'


def read_id2label(path: str | Path, error: type[Exception] | None = None, name: str | None = None) -> LabelSet:
    """An ``id2label.json`` as a LabelSet (``name``, default the file's stem; FACEBENCH for facebench's order): ids
    0..N-1 without gaps, distinct non-empty names, 1 <= N <= 255. The one reader of this format (datasets,
    ``--labels``); anything else raises ``error`` (a FacebenchError class) in one line naming the file."""
    import json

    from facebench.errors import InvalidConfig

    error = error or InvalidConfig
    path = Path(path)

    def no_constant(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        doc = json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constant)
    except (OSError, ValueError, RecursionError):  # unreadable, a folder, not UTF-8, not JSON, nested too deep
        raise error(f"not a readable id2label.json (JSON {ID2LABEL_FORM})", path) from None
    if not isinstance(doc, dict) or not doc:
        raise error(f"not an id2label.json: it must be a JSON object {ID2LABEL_FORM}", path)
    if len(doc) > IGNORE or set(doc) != {str(i) for i in range(len(doc))}:
        raise error(f"id2label ids must be 0..N-1 without gaps, N <= {IGNORE} (got {len(doc)} keys)", path)
    names = tuple(doc[str(i)] for i in range(len(doc)))
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise error(f"class names must be non-empty strings ({ID2LABEL_FORM})", path)
    if len({canonical_name(n) for n in names}) != len(names):
        raise error("class names must be distinct", path)
    return FACEBENCH if names == FACEBENCH.names else LabelSet(names, name=name or path.stem)


FOREGROUND: tuple[int, ...] = tuple(range(1, len(FACEBENCH_CLASSES)))
