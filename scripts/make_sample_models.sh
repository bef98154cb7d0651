#!/usr/bin/env bash
# Rebuilds the trained sample models in sample_models/ from the bundled MNIST
# training set (55,000 images to train on, 5,000 held out for validation; the
# 10,000 test images are only used for the final figure). Deterministic: the same
# seed gives the same weights on CPU. Takes about 4 minutes on two cores.
# Usage: scripts/make_sample_models.sh   (with nnviz installed, e.g. pip install -e .)
set -euo pipefail
cd "$(dirname "$0")/.."
nnviz train --model mlp-3b1b --optimizer adam --lr 0.001 --batch-size 16 --epochs 25 --seed 0 --device cpu --quiet --out sample_models/mlp-3b1b.nnviz
nnviz train --model mlp      --optimizer sgd  --lr 0.05  --batch-size 64 --epochs 20 --seed 0 --device cpu --quiet --out sample_models/mlp.nnviz
nnviz train --model lenet    --optimizer adam --lr 0.001 --batch-size 32 --epochs 12 --seed 0 --device cpu --quiet --out sample_models/lenet.nnviz
