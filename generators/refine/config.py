"""The options of each refinement stage, written once: frozen dataclasses with their defaults and checks.

Plain data (no torch), imported by the stages themselves; the whole job's config (``RefineConfig``,
``GenerateConfig``) composes these with a label-lifting variant in ``generate_config.py``.
Defaults are the measured ones (BENCHMARKS.md): 8,000 Gaussians, 600 + 150 fit steps, no post-processing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from facebench.errors import InvalidConfig
from generators.gaussians.densify_config import DensifyConfig

RENDERERS = ("auto", "gsplat", "cpp", "torch")
BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class LiftConfig:
    """How the Gaussian models are fitted (stage 1 RGB, stage 2 labels); every variant reads these."""

    rgb_steps: int = 600  # stage-1 optimisation steps (joint: the only stage); chosen on tuning subjects
    label_steps: int = 150  # stage-2 optimisation steps on the frozen geometry
    num_init: int = 8000  # Gaussians at initialisation (BENCHMARKS.md: 4000 → 8000 with 600 steps)
    sh_degree: int | None = 0  # None: plain RGB colours
    alpha_weight: float = 0.5  # L1 between rendered coverage and the parser's foreground
    view_weighting: bool = True  # trust frontal input views more: the parser was trained on them
    confidence_weighting: bool = True  # weight pixels by the parser's confidence, when it gives one
    # "pixels": a view's weighted CE is divided by its pixel count, so view weights scale whole views;
    # "weights": divided by the weights' sum, which cancels any weight constant over a view. Chosen by
    # benchmarks/tune_generate.py (BENCHMARKS.md).
    ce_normalise: Literal["pixels", "weights"] = "pixels"
    class_balance: float = 0.5  # CE weight ∝ class frequency^-power over the input masks (0 = off); tuned
    densify: DensifyConfig | None = field(default_factory=DensifyConfig)  # None: a fixed set of Gaussians
    renderer: str = "auto"  # the Gaussian rasterizer: auto | gsplat (CUDA) | cpp | torch
    device: str = "auto"  # where the fits run; auto: CUDA when present and the renderer allows it
    progress: bool = False  # a progress bar per fit

    def __post_init__(self) -> None:
        if self.rgb_steps < 1 or self.label_steps < 0:
            raise InvalidConfig(f"rgb_steps must be ≥ 1 and label_steps ≥ 0, got {self.rgb_steps}, "
                                f"{self.label_steps}")
        if self.renderer not in RENDERERS:
            raise InvalidConfig(f"unknown renderer {self.renderer!r}", hint=f"use {', '.join(RENDERERS)}")
        if self.ce_normalise not in ("pixels", "weights"):
            raise InvalidConfig(f"unknown ce_normalise {self.ce_normalise!r}", hint="use pixels or weights")
        if self.class_balance < 0 or self.num_init < 1:
            raise InvalidConfig("class_balance must be ≥ 0 and num_init ≥ 1")


@dataclass(frozen=True)
class ViewSampling:
    """New viewpoints around a head.

    Yaw is stratified over its range so every pose bin gets views even for small counts; pitch and
    roll are uniform. Distance and focal length jitter multiplicatively around their centres: the input
    rig's distance, and the focal length at which ``frame_height`` metres at the head origin fill the image
    height (the head fills the frame, as in face-parsing datasets), or the input rig's when it is None.
    """

    n_views: int = 32
    yaw_range: tuple[float, float] = (-180.0, 180.0)
    pitch_range: tuple[float, float] = (-60.0, 60.0)
    roll_range: tuple[float, float] = (-10.0, 10.0)
    distance_jitter: float = 0.08
    focal_jitter: float = 0.08
    frame_height: float | None = 0.33
    # Coverage: new poses only where the input views looked from (their yaws and pitches, ± the margin),
    # so no new view shows what no input camera saw (a scan without the back of the head gets no rear views).
    within_coverage: bool = True
    coverage_margin: float = 30.0
    # A rendered pixel whose surface no input view saw becomes 255 (ignored); a new view with more than this
    # fraction of its head unseen is not written at all.
    max_unseen: float = 0.25

    def __post_init__(self) -> None:
        if self.n_views < 1:
            raise InvalidConfig(f"n_views must be ≥ 1, got {self.n_views}")
        for name, (lo, hi), lim in (("yaw", self.yaw_range, 180), ("pitch", self.pitch_range, 89),
                                    ("roll", self.roll_range, 180)):
            if not (-lim <= lo <= hi <= lim):
                raise InvalidConfig(f"{name} range {lo}..{hi} must lie within ±{lim} and be ordered")
        if not (0 <= self.distance_jitter < 0.5 and 0 <= self.focal_jitter < 0.5):
            raise InvalidConfig("distance/focal jitter must be in [0, 0.5)")
        if self.frame_height is not None and not 0.1 <= self.frame_height <= 2.0:
            raise InvalidConfig(f"frame_height must be in [0.1, 2] metres (or None), got {self.frame_height}")
        if not (0 <= self.coverage_margin <= 180 and 0 <= self.max_unseen <= 1):
            raise InvalidConfig("coverage_margin must be in [0, 180] and max_unseen in [0, 1]")


@dataclass(frozen=True)
class CleanupConfig:
    """2D post-processing of rendered labels. Off by default: it cost F1 when measured (BENCHMARKS.md).

    Sizes are fractions of the image area, so they scale. The switches below choose the steps once enabled.
    """

    enabled: bool = False
    remove_small: bool = True
    min_component_frac: float = 2e-4
    fill_holes: bool = True
    smooth: bool = True
    smooth_radius: int = 1
    sides_from_3d: bool = True  # per-Gaussian left/right consistency from the head frame (3D, before rendering)
    confidence: bool = True  # low-confidence foreground becomes 255 (ignored)
    min_confidence: float = 0.5


@dataclass(frozen=True)
class SyntheticInput:
    """The built-in input: seeded synthetic heads seen by a ring of cameras (used when no capture is given)."""

    subjects: int = 2
    views: int = 24  # input views per subject
    size: int = 128  # input images are size² pixels

    def __post_init__(self) -> None:
        if self.subjects < 1 or self.views < 4 or self.size < 16:
            raise InvalidConfig("synthetic input needs ≥ 1 subject, ≥ 4 views and size ≥ 16")


@dataclass(frozen=True)
class RayOptions:
    """Where and how to run on Ray. ``address`` None starts a local cluster; "auto" or "ray://head:10001" joins one."""

    address: str | None = None
    cpus_per_subject: int = 1  # CPUs reserved by each task
    max_retries: int = 2  # retries of a subject whose worker died or raised
    object_store_memory: int | None = None  # local cluster only: cap the object store (bytes); None: Ray's 30%

    def __post_init__(self) -> None:
        if self.cpus_per_subject < 1 or self.max_retries < 0:
            raise InvalidConfig("cpus_per_subject must be ≥ 1 and max_retries ≥ 0")


