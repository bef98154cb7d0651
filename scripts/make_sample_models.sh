#!/usr/bin/env bash
# Rebuilds the trained sample models in sample_models/ from the bundled MNIST
# training set (55,000 images to train on, 5,000 held out for validation; the
# 10,000 test images are only used for the final figure). Deterministic: the same
# seed gives the same weights on CPU. Takes about 5 minutes on two cores.
# Usage: scripts/make_sample_models.sh   (with nnviz installed, e.g. pip install -e .)
set -euo pipefail
cd "$(dirname "$0")/.."
nnviz train --model mlp-3b1b --optimizer adam --lr 0.005 --epochs 20 --batch-size 64 --seed 0 --device cpu --out sample_models/mlp-3b1b.nnviz
nnviz train --model mlp      --optimizer adam --lr 0.001 --epochs 10 --batch-size 64 --seed 0 --device cpu --out sample_models/mlp.nnviz
nnviz train --model lenet    --optimizer adam --lr 0.002 --epochs 10 --batch-size 64 --seed 0 --device cpu --out sample_models/lenet.nnviz
