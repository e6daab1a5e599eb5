"""Find the head in a large frame before the head frame is known, so the parser can look at it properly.

A face parser expects the head to fill its input. In a studio rig's full frame the head is a small part of
the picture, and the parser's first look takes the whole bust for a face (the shirt labelled skin and lips):
its face parts then cannot place the head frame. Here each large view's head is found from the first look's
silhouette (the head is the part above the narrowest row, the neck, of an upright person), the parser looks
again at that square, and once more at the square its head classes then fill. The masks returned hold the
crops' labels and background elsewhere: they feed the head-frame estimate only (the fits use their own crops,
``inputs.frame_box``). Cameras are assumed upright (image up is the person's up); when they are not, the
estimate still refuses in one line rather than guess.
"""

from __future__ import annotations

import numpy as np

from facebench.headframe import HEAD_CLASSES
from facebench.labels import IGNORE
from facebench.parsing import Parser
from generators.refine.inputs import SubjectView, mask_box, parser_masks, square_in_image

# A head fills this fraction of a face parser's frame (0.25 m of head in 0.33 m).
HEAD_FILL = 0.75
MIN_SILHOUETTE_PX = 200


def silhouette_head_box(mask: np.ndarray) -> tuple[float, float, float] | None:
    """Centre and side of a square around the head of an upright person's silhouette (any non-background
    label), or None: the head runs from the silhouette's top row to its narrowest row (the neck) in the
    upper part of the silhouette."""
    fg = (mask != 0) & (mask != IGNORE)
    rows = np.flatnonzero(fg.any(1))
    if fg.sum() < MIN_SILHOUETTE_PX or len(rows) < 8:
        return None
    top, bottom = rows[0], rows[-1]
    width = fg[top : bottom + 1].sum(1).astype(np.float64)
    height = bottom - top + 1
    lo, hi = int(0.15 * height), max(int(0.75 * height), int(0.15 * height) + 2)
    neck = lo + int(np.argmin(width[lo:hi]))  # rows below the top
    _, xs = np.nonzero(fg[top : top + neck + 1])
    side = max(neck, width[: neck + 1].max()) / HEAD_FILL
    return float(xs.mean()) + 0.5, top + neck / 2 + 0.5, float(side)


def localised_masks(views: list[SubjectView], parser: Parser, size: int, rounds: int = 2) -> list[np.ndarray]:
    """Full-frame masks for the head-frame estimate: for views larger than ``size``, the parser's labels of
    the square around the head (found from the silhouette, then from the head classes of the last look),
    background elsewhere; smaller views keep their first-look mask."""
    out = [v.mask for v in views]
    large = [i for i, v in enumerate(views) if max(v.mask.shape) > size]
    boxes = {i: silhouette_head_box(views[i].mask) for i in large}
    for r in range(rounds):
        todo = [i for i in large if boxes.get(i) is not None]
        if not todo:
            break
        squares = {i: square_in_image(boxes[i], *views[i].mask.shape, min_side=32) for i in todo}
        crops = []
        for i in todo:
            x0, y0, s = squares[i]
            crops.append(views[i].image[y0 : y0 + s, x0 : x0 + s])
        masks = parser_masks(parser, crops, [views[i].id for i in todo])
        for i, m in zip(todo, masks, strict=True):
            x0, y0, s = squares[i]
            full = np.zeros_like(views[i].mask)
            full[y0 : y0 + s, x0 : x0 + s] = m
            full[views[i].mask == IGNORE] = IGNORE
            out[i] = full
            if r + 1 < rounds:
                found = np.isin(m, HEAD_CLASSES).any()
                boxes[i] = mask_box(full, margin=(1 / HEAD_FILL - 1) / 2) if found else None
    return out
