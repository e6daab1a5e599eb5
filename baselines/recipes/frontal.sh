#!/usr/bin/env bash
# The frontal baseline: BiSeNet trained on synthetic heads seen only near-frontally
# (|yaw| < 30°, |pitch| < 20°), like a parser trained on CelebAMask-HQ; then evaluated on the
# held-out synthetic test split over every pose. Usage: baselines/recipes/frontal.sh [WORK_DIR]
# This is the recipe of baselines/weights/bisenet-frontal (issue #22). Every step resumes: rerun the
# script after an interruption. Times are what the shipped run took on 2 shared cores (BENCHMARKS.md).
#
# What changed from the first recipe (0.492 frontal mean F1 fg), and why:
#   framing   the heads' default rig frames the head, not head and shoulders (22° at 0.85 m: 0.33 m at the
#             head origin), so eyes and brows are resolvable;
#   input     256² training crops and inference (was 192²);
#   schedule  one run from scratch on one seed's subjects (was two runs over two subject sets).
# Loss and augmentation are the reference recipe's (baselines/train.py): OHEM cross-entropy on the main and
# both auxiliary heads, SGD + poly decay with warm-up, random scale/crop/rotation, colour jitter, and
# horizontal flips with the l_/r_ labels swapped.
set -euo pipefail
WORK=${1:-work/frontal}
FB=${FACEBENCH:-facebench}
PY=${PYTHON:-python}
RANGE=(--yaw-min -30 --yaw-max 30 --pitch-min -20 --pitch-max 20 --rig random --workers 2)

# 1. Near-frontal training captures (train-split subject stream, seed 0), a dataset split by subject.
[ -f "$WORK/data/id2label.json" ] || {
  $FB heads --out "$WORK/captures" --subjects 240 --views 12 --seed 0 "${RANGE[@]}"
  $PY -m baselines.captures "$WORK/captures" --out "$WORK/data" --validation-subjects 16 --overwrite
}

# 2. Held-out test subjects over the whole pose sphere (test-split subject stream).
[ -f "$WORK/test/id2label.json" ] ||
  $FB heads --test-split --out "$WORK/test" --subjects 40 --views 24 --seed 0 --workers 2 --overwrite

# 3. Train from scratch at 256² (the pose filter repeats the rig's ranges and is recorded in the checkpoint).
$FB train bisenet --data "$WORK/data" --out "$WORK/bisenet-frontal" --frontal --width 0.5 --size 256 \
    --batch-size 8 --steps 4000 --seed 0 --save-every 100 --val-every 1000 --threads 2

# 4. Ship an fp16 copy (≤ 15 MB), then predict and evaluate by pose bin.
$PY -c "import sys; from baselines.checkpoint import convert; convert(sys.argv[1], sys.argv[2])" \
    "$WORK/bisenet-frontal" "$WORK/bisenet-frontal-fp16"
$FB evaluate "$WORK/bisenet-frontal-fp16" --data "$WORK/test" --split test --out "$WORK/report"
