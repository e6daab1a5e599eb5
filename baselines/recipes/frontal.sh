#!/usr/bin/env bash
# The frontal baseline: BiSeNet trained on synthetic heads seen only near-frontally
# (|yaw| < 30°, |pitch| < 20°), like a parser trained on CelebAMask-HQ; then evaluated on the
# held-out synthetic test split over every pose. Usage: baselines/recipes/frontal.sh [WORK_DIR]
set -euo pipefail
WORK=${1:-work/frontal}
STEPS=${STEPS:-1500}

# 1. Near-frontal training captures (train-split subject stream), then a dataset split by subject.
facebench heads --out "$WORK/captures" --subjects 160 --views 16 --yaw-min -30 --yaw-max 30 \
    --pitch-min -20 --pitch-max 20 --rig random --seed 0 --workers 2
python -m baselines.captures "$WORK/captures" --out "$WORK/data" --validation-subjects 16 --overwrite

# 2. Held-out test subjects over the whole pose sphere (test-split subject stream).
facebench heads --test-split --out "$WORK/test" --subjects 40 --views 24 --seed 0 --workers 2 --overwrite

# 3. Train (the pose filter is redundant with the rig's ranges, and recorded in the checkpoint).
facebench train bisenet --data "$WORK/data" --out "$WORK/bisenet-frontal" --frontal --width 0.5 \
    --size 256 --batch-size 8 --steps "$STEPS" --seed 0 --save-every 100

# 4. Ship: fp16 copy of the weights (≤ 12 MB), then predict and evaluate by pose bin.
python -c "import sys; from baselines.checkpoint import convert; convert(sys.argv[1], sys.argv[2])" \
    "$WORK/bisenet-frontal" baselines/weights/bisenet_frontal.safetensors
facebench predict baselines/weights/bisenet_frontal.safetensors --data "$WORK/test" --split test \
    --out "$WORK/masks"
facebench evaluate "$WORK/masks" --data "$WORK/test" --split test --out "$WORK/report"
