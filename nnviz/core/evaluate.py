"""Accuracy, loss and confusion matrix of a model on a dataset, and class probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nnviz.core.data import Dataset
from nnviz.core.errors import NnvizError


@dataclass(frozen=True)
class EvalResult:
    accuracy: float
    loss: float
    n: int
    confusion: np.ndarray  # (classes, classes) counts: row = true label, column = prediction

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "n": self.n,
            "confusion": self.confusion.tolist(),
        }


def _eval_mode(model: nn.Module) -> bool:
    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()
    return was_training


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 256,  # larger batches cost memory and were no faster on 2 cores
) -> EvalResult:
    """Evaluate in eval mode without gradients; the model's train/eval mode is restored."""
    if len(dataset) == 0:
        raise NnvizError(f"{dataset.name} has no images to evaluate on")
    k = len(dataset.classes)
    confusion = np.zeros((k, k), dtype=np.int64)
    total_loss = 0.0
    was_training = _eval_mode(model)
    try:
        with torch.no_grad():
            for start in range(0, len(dataset), batch_size):
                xb = dataset.images[start : start + batch_size]
                yb = torch.from_numpy(dataset.labels[start : start + batch_size].astype("int64"))
                # An owned copy: the dataset's arrays may be read-only.
                x = torch.from_numpy(np.array(xb)).to(device, torch.float32)
                logits = model(x.div_(255).unsqueeze_(1))
                if logits.ndim != 2 or logits.shape[1] != k:
                    raise NnvizError(
                        f"the model gives outputs of shape {tuple(logits.shape)}, "
                        f"but {dataset.name} has {k} classes"
                    )
                yb = yb.to(device)
                total_loss += F.cross_entropy(logits, yb, reduction="sum").item()
                pred = logits.argmax(1).cpu().numpy()
                np.add.at(confusion, (yb.cpu().numpy(), pred), 1)
    finally:
        if was_training:
            model.train()
    n = len(dataset)
    return EvalResult(float(np.trace(confusion) / n), total_loss / n, n, confusion)


def predict_probabilities(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    """Softmax probabilities for a batch of model inputs (N, C, H, W), shape (N, classes)."""
    was_training = _eval_mode(model)
    try:
        with torch.inference_mode():
            return torch.softmax(model(images), dim=1).cpu().numpy()
    finally:
        if was_training:
            model.train()
