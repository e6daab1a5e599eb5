"""2D landmark files (iBUG ``.pts``, LaPa ``.txt``) and the mean 3D face they are matched against.

Layouts. iBUG-68 (300-W, iBugMask, Helen via 300-W) is anatomical: points 0-16 run along the jaw
from the subject's right to their left, 36-41 are the subject's right eye, and so on, so in a
frontal photo point 0 is at the image's left. LaPa's 106 points (the JD-landmark layout) follow the
same order; ``LAPA106_TO_68`` maps the 60 of them whose iBUG counterpart is unambiguous (jaw every
other point, brows' upper edges, nose, eye corners, both lip contours). Eye-lid points are left out
because the two layouts place them differently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np

from facebench.errors import FacebenchError, require_exists


class InvalidLandmarks(FacebenchError):
    """A landmark file is malformed or has the wrong number of points."""


@dataclass(frozen=True)
class MeanFace:
    """Mean 3D landmarks in the facebench head frame (metres), from the MakeHuman template."""

    points: np.ndarray  # (68, 3)
    mirror: np.ndarray  # (68,) index of each point's left/right partner

    def subset(self, idx: np.ndarray) -> np.ndarray:
        return self.points[idx]


@lru_cache(maxsize=1)
def mean_face() -> MeanFace:
    """The shipped ``mean_face_68.json`` (made by ``make_mean_face.py``)."""
    doc = json.loads(files("facebench.importers").joinpath("mean_face_68.json").read_text())
    return MeanFace(points=np.asarray(doc["points"], dtype=np.float64), mirror=np.asarray(doc["mirror"]))


# (iBUG-68 index, LaPa-106 index) pairs.
LAPA106_TO_68: np.ndarray = np.array(
    [(i, 2 * i) for i in range(17)]  # jaw: 33 contour points -> every other one
    + [(17 + i, 33 + i) for i in range(5)] + [(22 + i, 38 + i) for i in range(5)]  # brows, upper edge
    + [(27 + i, 43 + i) for i in range(4)] + [(31 + i, 47 + i) for i in range(5)]  # bridge, nostrils
    + [(36, 52), (39, 55), (42, 58), (45, 61)]  # eye corners
    + [(48 + i, 84 + i) for i in range(12)] + [(60 + i, 96 + i) for i in range(8)]  # lips
)  # fmt: skip


def read_pts(path: str | Path, n_points: int = 68) -> np.ndarray:
    """An iBUG ``.pts`` file (``version: 1`` / ``n_points: N`` / ``{`` x y lines ``}``) -> (N, 2)."""
    text = _text(path)
    try:
        head, body = text.split("{", 1)
        body = body.split("}", 1)[0]
        declared = int(head.split("n_points:")[1].split()[0])
        xy = np.array(body.split(), dtype=np.float64).reshape(-1, 2)
    except (IndexError, ValueError):
        raise InvalidLandmarks("not an iBUG .pts file (expected 'n_points: N' and '{ x y ... }')", path) from None
    if declared != len(xy):
        raise InvalidLandmarks(f"declares {declared} points but lists {len(xy)}", path)
    return _checked(xy, n_points, path)


def read_lapa_txt(path: str | Path, n_points: int = 106) -> np.ndarray:
    """A LaPa landmark file (first line the count, then one ``x y`` line per point) -> (N, 2)."""
    lines = [ln for ln in _text(path).split("\n") if ln.strip()]
    try:
        declared = int(lines[0].split()[0])
        xy = np.array([ln.split()[:2] for ln in lines[1:]], dtype=np.float64).reshape(-1, 2)
    except (IndexError, ValueError):
        raise InvalidLandmarks("not a LaPa landmark file (expected a count line, then 'x y' lines)", path) from None
    if declared != len(xy):
        raise InvalidLandmarks(f"declares {declared} points but lists {len(xy)}", path)
    return _checked(xy, n_points, path)


def _text(path: str | Path) -> str:
    path = require_exists(path, "landmark file")
    try:
        return Path(path).read_text(errors="replace")
    except OSError as e:  # a folder, no permission
        raise InvalidLandmarks(f"cannot read the landmark file ({e.strerror or e})", path) from None


def _checked(xy: np.ndarray, n_points: int, path: str | Path) -> np.ndarray:
    """The points, if there are ``n_points`` of them and all are finite (a NaN reached the pose fit's bounds
    check as 'Initial guess is outside of provided bounds')."""
    if len(xy) != n_points:
        raise InvalidLandmarks(f"has {len(xy)} points, expected {n_points}", path)
    if not np.isfinite(xy).all():
        k = int(np.flatnonzero(~np.isfinite(xy).all(axis=1))[0])
        raise InvalidLandmarks(f"point {k + 1} is not finite ({xy[k, 0]} {xy[k, 1]})", path)
    return xy


def write_pts(path: str | Path, xy: np.ndarray) -> Path:
    """Write an iBUG ``.pts`` file (for fixtures and exports)."""
    path = Path(path)
    rows = "\n".join(f"{x:.3f} {y:.3f}" for x, y in np.asarray(xy))
    path.write_text(f"version: 1\nn_points: {len(xy)}\n{{\n{rows}\n}}\n")
    return path


def write_lapa_txt(path: str | Path, xy: np.ndarray) -> Path:
    path = Path(path)
    rows = "\n".join(f"{x:.4f} {y:.4f}" for x, y in np.asarray(xy))
    path.write_text(f"{len(xy)}\n{rows}\n")
    return path
