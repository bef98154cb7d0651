"""Optimizer steps without torch's compiler: the same numbers, without its import."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from nnviz.core import lean_optim
from nnviz.core.training import OPTIMIZERS, TrainConfig, make_optimizer


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(2704, 10)
    )


def _train(name: str, step, weight_decay: float = 0.0) -> torch.Tensor:  # noqa: ANN001
    model = _model()
    optimizer = make_optimizer(
        TrainConfig(optimizer=name, weight_decay=weight_decay), model.parameters()
    )
    torch.manual_seed(1)
    for _ in range(6):
        x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        step(optimizer)
    optimizer.load_state_dict(optimizer.state_dict())
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_the_same_weights_as_torchs_own_step(name, weight_decay):
    lean = _train(name, lean_optim.step, weight_decay)
    own = _train(name, lambda optimizer: optimizer.step(), weight_decay)
    assert torch.equal(lean, own)
    assert not torch.equal(lean, torch.cat([p.flatten() for p in _model().parameters()]))


def test_a_registered_hook_takes_torchs_own_path():
    model = _model()
    optimizer = make_optimizer(TrainConfig(optimizer="sgd"), model.parameters())
    calls = []
    optimizer.register_step_post_hook(lambda *_: calls.append(1))
    model(torch.rand(2, 1, 28, 28)).sum().backward()
    lean_optim.step(optimizer)
    assert calls == [1]


def test_training_never_imports_torchs_compiler(tmp_path):
    # In a fresh interpreter: four optimizers, real MNIST, saving and loading their state.
    code = """
import sys
from nnviz.core.data import load_splits
from nnviz.core.models import build_model, get_spec
from nnviz.core.training import OPTIMIZERS, TrainConfig, Trainer
data = load_splits("mnist", n_val=50, limit=200)
for name in OPTIMIZERS:
    config = TrainConfig(optimizer=name, epochs=1)
    trainer = Trainer(build_model(get_spec("lenet"), seed=0), data, config)
    trainer.run()
    trainer.optimizer.load_state_dict(trainer.optimizer.state_dict())
    assert trainer.finished.reason == "completed", trainer.finished
print(sorted(m for m in sys.modules if m.startswith(("torch._dynamo", "sympy")))[:3])
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,  # like a user anywhere: not the checkout, whose nnviz/ would shadow
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
