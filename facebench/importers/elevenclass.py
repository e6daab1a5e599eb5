"""The 11-class scheme shared by LaPa, Helen (Smith et al. 2013) and iBugMask, and its default merges.

All three label: background, skin, left/right eyebrow, left/right eye, nose, upper lip, inner mouth,
lower lip, hair, in that id order. None labels eyeglasses, ears, earrings, neck, necklace, cloth or
hat; those pixels carry whatever class surrounds them in the dataset's annotation. The defaults
below say what a facebench prediction of each absent class is scored as; they are our reading of
the datasets' label images (neck, clothes, hats and earrings are background; glasses frames lie on
skin) and can be changed with ``--merge CLASS=TARGET``.
"""

from __future__ import annotations

from facebench.labels import LabelSet

ELEVEN = ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "u_lip", "mouth", "l_lip", "hair")

MERGE_ELEVEN: dict[str, str] = {
    "eye_g": "skin", "ear_r": "background", "neck": "background", "neck_l": "background",
    "cloth": "background", "hat": "background",
}  # fmt: skip


def eleven(name: str) -> LabelSet:
    return LabelSet(ELEVEN, name=name)
