"""The three budgets of ``facebench reproduce``: one frozen dataclass each, nothing else decides sizes.

Figures behind the estimates. Measured 2026-11-26 on the shared 2-core box at load ≈ 3.8 (so about one
core's worth): a 256² synthetic test view renders in 0.12 s (48 views + 2 heads: 5.8 s); the BiSeNet
fine-tune (width 0.5, 192², batch 8, bf16 path) ran at 7.6 images/s; ``facebench evaluate``'s path scored
256² test images at 4.8 images/s (decode, predict fp32, confusion) plus ~6 s of report figures.
Assumed for 2 idle cores: about twice those rates (training ~15 images/s; the brief's 20–35 would be
faster still), and ``generate`` at ~41 s per subject for 32 views 128² → 64 new views 256² with 400 + 150
fit steps (BENCHMARKS.md; 40–60 s on a busy box).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from facebench.errors import InvalidConfig


@dataclass(frozen=True)
class Scale:
    """Everything that sizes a run. All four fine-tunes share steps, batch_size, lr, size and seed."""

    name: str
    # refined data (stage `generate`): synthetic training subjects, their capture, the new views
    train_subjects: int
    input_views: int
    input_size: int
    new_views: int
    size: int
    rgb_steps: int
    label_steps: int
    num_init: int  # Gaussians at initialisation
    # the baseline's own frontal training data, mixed into (a), (b) and (c): the first ``frontal_subjects``
    # subjects of baselines/recipes/frontal.sh's stream, re-rendered (12 views each, |yaw| < 30°, |pitch| < 20°)
    frontal_subjects: int
    # fine-tuning (identical for (a)–(d)): SGD + poly decay + warm-up of steps/10 (the BiSeNet recipe), at
    # lr 1e-3 (a tenth of the from-scratch 1e-2, the usual fine-tuning choice), fixed before any default-scale
    # run and never tuned on the test split (docs/reproduce.md)
    steps: int
    batch_size: int
    # held-out benchmark test split (test subject stream, every pose)
    test_subjects: int
    test_views: int
    test_size: int
    lr: float = 1e-3
    n_boot: int = 1000
    seed: int = 0  # fine-tune and bootstrap seed
    data_seed: int = 2  # training-subject stream: not 0 or 1, the streams the frontal baseline was trained on
    test_seed: int = 0  # the test split of BENCHMARKS.md's baseline table
    workers: int = 2  # processes for subject refinement and test rendering
    threads: int = 2  # torch threads for fine-tuning and prediction

    def as_dict(self) -> dict:
        return asdict(self)

    def generate_config(self):
        """``generate``'s own defaults (variant, fits, no post-processing, coverage) at this scale's sizes and
        seeds, with the synthetic heads' declared frame."""
        from dataclasses import replace

        from generators.refine.config import SyntheticInput
        from generators.refine.generate_config import GenerateConfig

        d = GenerateConfig()
        # The synthetic training heads declare their frame exactly: the loop measures the labels, not how well
        # a head frame is estimated (benchmarks/bench_headframe.py does that; the small scale is too coarse to).
        refine = replace(d.refine, out_size=self.size, views=replace(d.refine.views, n_views=self.new_views),
                         lift=replace(d.refine.lift, rgb_steps=self.rgb_steps, label_steps=self.label_steps,
                                      num_init=self.num_init),
                         head_frame="capture")
        return replace(d, refine=refine, seed=self.data_seed, workers=self.workers,
                       synthetic=SyntheticInput(self.train_subjects, self.input_views, self.input_size))


SCALES: dict[str, Scale] = {
    # CI smoke test: tiny but real (real heads, real Gaussian fits, real fine-tunes); its numbers mean nothing
    # (one subject, blurry 64² captures, 30 steps). Target ≤ 3 min on 2 cores.
    "small": Scale(
        name="small", train_subjects=1, input_views=16, input_size=64, new_views=24, size=128, rgb_steps=80,
        label_steps=30, num_init=4000, frontal_subjects=2, steps=30, batch_size=4, test_subjects=4, test_views=8,
        test_size=128, n_boot=300, workers=1,
    ),
    # The measured scale, ≤ 90 min on 2 idle cores. Estimate per stage (idle; ×2 on a box as busy as above):
    #   test split   40 subjects × 24 views at 256²: 960 × 0.06 s + 40 heads, 2 workers      ≈ 1–2 min
    #   generate     16 subjects × ~65 s, 2 workers of 1 thread (≈ 1.6× speed-up)           ≈ 11 min
    #   frontal      80 recipe subjects × 12 views at 256², 2 workers                          ≈ 1 min
    #   variants     parser on 1024 views + 16 × 64 truth renders + encoding 3 × ~1,950 samples ≈ 3 min
    #   fine-tunes   4 × 800 steps × 8 images = 25,600 images at ~15 img/s (25 img/s: 17 min) ≈ 28 min
    #   evaluate     5 × (960 images at ~10 img/s + ~15 s of report)                          ≈ 9 min
    #   report       bootstraps, figures, the qualitative grid (5 checkpoints × 5 images)       ≈ 1 min
    #   total ≈ 50 min idle; on a box as busy as the measurement above it would exceed 90 min.
    #   Measured (docs/reproduce.md): 47 min with 8,000 Gaussians and 600 steps (45 min with 4,000 and 400),
    #   beside a niced test run (fine-tunes 7–9 min each at 12–15 img/s); 23.5 min with the first, 192²
    #   baseline and no mix.
    "default": Scale(
        name="default", train_subjects=16, input_views=32, input_size=128, new_views=64, size=256, rgb_steps=600,
        label_steps=150, num_init=8000, frontal_subjects=80, steps=800, batch_size=8, test_subjects=40, test_views=24,
        test_size=256,
    ),
    # More subjects and steps, for a GPU (gsplat) or a long CPU run; not timed.
    "large": Scale(
        name="large", train_subjects=64, input_views=48, input_size=128, new_views=96, size=256, rgb_steps=800,
        label_steps=200, num_init=8000, frontal_subjects=200, steps=4000, batch_size=8, test_subjects=100,
        test_views=24, test_size=256,
    ),
}


def get_scale(name: str) -> Scale:
    """The named scale, or a one-line error listing the known ones."""
    try:
        return SCALES[name]
    except KeyError:
        raise InvalidConfig(f"unknown --scale {name!r}", hint="use " + ", ".join(SCALES)) from None
