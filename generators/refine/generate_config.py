"""Every option of ``facebench generate``, written once: the stage configs composed with a variant.

The CLI builds its options and their defaults from these classes; benchmarks and library callers change
them with ``dataclasses.replace``. Nothing here imports torch, so ``facebench generate --help`` stays quick.
Defaults are the measured ones (BENCHMARKS.md): the logits variant, 400 + 150 fit steps, no post-processing.

    GenerateConfig                      one run: input, refinement, seed, where it runs
    ├── synthetic: SyntheticInput       the built-in input when no capture is given
    ├── refine: RefineConfig            one subject's refinement
    │   ├── variant: LabelLifting       how labels go onto Gaussians and come back (variants.py registry)
    │   ├── lift: LiftConfig            the Gaussian fits every variant shares
    │   ├── views: ViewSampling         where the new viewpoints are
    │   └── cleanup: CleanupConfig      post-processing of the labels
    └── ray: RayOptions                 the Ray cluster, when backend == "ray"
"""

from __future__ import annotations

from dataclasses import dataclass, field

from facebench.errors import InvalidConfig
from generators.refine.config import (
    BACKENDS,
    CleanupConfig,
    LiftConfig,
    RayOptions,
    SyntheticInput,
    ViewSampling,
)
from generators.refine.variants import DEFAULT_VARIANT, LabelLifting, make_variant

HEAD_FRAMES = ("auto", "capture")


@dataclass(frozen=True)
class RefineConfig:
    """The whole refinement of one subject (seeded by the caller)."""

    variant: LabelLifting = field(default_factory=lambda: make_variant(DEFAULT_VARIANT))
    lift: LiftConfig = field(default_factory=LiftConfig)
    views: ViewSampling = field(default_factory=ViewSampling)
    cleanup: CleanupConfig = field(default_factory=CleanupConfig)
    out_size: int = 256  # new views are out_size² pixels
    # Where the head is in the capture's world: "auto" estimates it from the parser's masks of each capture
    # (facebench/headframe.py); "capture" takes the one the capture declares (or a --head-frame FILE).
    head_frame: str = "auto"
    # Input views larger than this are cropped to the head and resized to work_size² for the fits (real
    # captures are 1–6 K pixels); smaller ones are used as they are.
    work_size: int = 256
    # Run the parser again on each head crop (it then sees the head filling its input, as it was trained),
    # instead of keeping its first-pass mask of the whole frame cut down to the crop.
    relabel_crops: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.variant, LabelLifting):
            raise InvalidConfig(f"variant must be a registered LabelLifting, got {self.variant!r}")
        if self.head_frame not in HEAD_FRAMES:
            raise InvalidConfig(f"unknown head_frame {self.head_frame!r}", hint="use auto or capture (or a file)")
        if self.work_size < 32:
            raise InvalidConfig(f"work_size must be ≥ 32, got {self.work_size}")
        if self.out_size < 16:
            raise InvalidConfig(f"out_size must be ≥ 16, got {self.out_size}")


@dataclass(frozen=True)
class GenerateConfig:
    """One ``generate`` run. The same config and seed give the same dataset bytes, whatever ``workers``."""

    refine: RefineConfig = field(default_factory=RefineConfig)
    synthetic: SyntheticInput = field(default_factory=SyntheticInput)
    seed: int = 0  # synthetic subjects, the fits and view sampling
    workers: int = 1  # subjects refined in parallel (processes; local backend)
    backend: str = "local"  # local: processes on this machine | ray: one task per subject on a cluster
    ray: RayOptions = field(default_factory=RayOptions)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InvalidConfig(f"unknown backend {self.backend!r}", hint="use local or ray")
        if self.workers < 1:
            raise InvalidConfig(f"workers must be ≥ 1, got {self.workers}")
        if self.seed < 0:  # numpy's SeedSequence takes none below 0; found in a worker, after the work began
            raise InvalidConfig(f"seed must be ≥ 0, got {self.seed}")
        if self.backend == "local" and self.ray != RayOptions():
            raise InvalidConfig("Ray options (address, cpus_per_subject, max_retries) need backend 'ray'",
                                hint="--backend ray")
