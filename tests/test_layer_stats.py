"""Per-layer statistics on real MNIST digits: percentiles, dead ReLUs, update ratios,
vanishing gradients in a deep sigmoid network, and the trainer's low-rate reports."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nnviz.core.errors import NnvizError
from nnviz.core.layer_stats import (
    BAND_PERCENTS,
    MAX_PERCENTILE_SAMPLE,
    LayerStatsCollector,
    dead_fractions,
    describe_sizes,
    health_warnings,
    histogram,
    percentile_bands,
    probe_batch,
    update_ratio,
)
from nnviz.core.models import ArchSpec, build_model, get_spec
from nnviz.core.snapshot import LayerStats, StepReport
from nnviz.core.training import TrainConfig, Trainer

CPU = torch.device("cpu")


def _deep(activation: str) -> ArchSpec:
    return ArchSpec(layers=[{"type": "dense", "units": 32, "activation": activation}] * 6)


def _backward_on_digits(model, data, n=64):
    x = probe_batch(data, CPU, size=n)
    y = torch.from_numpy(data.val.labels[:n])
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()


# ----- distributions -----------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1,), (7,), (16, 16), (6, 1, 5, 5), (64, 64)])
def test_percentiles_and_histogram_match_numpy(shape):
    values = torch.randn(*shape, generator=torch.Generator().manual_seed(1)) * 0.3 + 0.1
    ref = values.numpy().astype(np.float64).ravel()
    assert percentile_bands(values) == pytest.approx(np.percentile(ref, BAND_PERCENTS), abs=1e-9)
    counts, lo, hi = histogram(values, bins=12)
    assert (lo, hi) == (pytest.approx(ref.min()), pytest.approx(ref.max()))
    if hi > lo:
        expected, _ = np.histogram(values.numpy(), bins=12, range=(lo, hi))
        np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == values.numel() and not counts.flags.writeable


def test_percentiles_of_a_big_tensor_come_from_a_subsample_but_min_and_max_are_exact():
    values = torch.randn(300_000, generator=torch.Generator().manual_seed(2)) ** 3
    assert values.numel() > MAX_PERCENTILE_SAMPLE
    bands = percentile_bands(values)
    ref = values.numpy().astype(np.float64)
    assert bands[0] == ref.min() and bands[-1] == ref.max()
    for p, got in zip(BAND_PERCENTS[1:-1], bands[1:-1], strict=True):
        # A sample of 4,096 puts each percentile within a couple of ranks-percent.
        assert np.percentile(ref, p - 2.5) <= got <= np.percentile(ref, p + 2.5), p
    assert percentile_bands(values) == bands  # the same sample every time: no jitter
    counts, _, _ = histogram(values)
    assert counts.sum() == pytest.approx(values.numel(), rel=1e-5)


def test_the_log_histogram_of_sizes_matches_numpy_and_counts_zeros_apart():
    values = torch.randn(40, 30, generator=torch.Generator().manual_seed(3)) * 1e-3
    values[::3] = 0.0  # a third exactly zero, as gradients of never-lit pixels are
    sizes = np.abs(values.numpy().astype(np.float64).ravel())
    bands, counts, (lo, hi), zeros = describe_sizes(values, bins=12)
    assert bands == pytest.approx(np.percentile(sizes, BAND_PERCENTS), abs=1e-12)
    positive = sizes[sizes > 0]
    assert (lo, hi) == (
        pytest.approx(np.log10(positive.min())),
        pytest.approx(np.log10(positive.max())),
    )
    expected, _ = np.histogram(np.log10(positive), bins=12, range=(lo, hi))
    np.testing.assert_array_equal(counts, expected)
    assert zeros == 14 * 30 and counts.sum() + zeros == values.numel()
    assert not counts.flags.writeable

    big = torch.randn(300_000, generator=torch.Generator().manual_seed(4)) ** 3
    big[:100_000] = 0.0
    bands, counts, (lo, hi), zeros = describe_sizes(big)
    assert hi == pytest.approx(math.log10(float(big.abs().max())))  # the bands' exact top
    assert zeros == pytest.approx(100_000, rel=0.05)  # from the subsample, scaled
    assert counts.sum() + zeros == pytest.approx(big.numel(), rel=1e-5)

    _, counts, log_range, zeros = describe_sizes(torch.zeros(5))
    assert counts.sum() == 0 and zeros == 5 and all(map(math.isnan, log_range))


def test_the_collector_describes_each_layers_real_weights_and_gradients(small_mnist):
    model = build_model(get_spec("lenet"), seed=0)
    _backward_on_digits(model, small_mnist)
    stats = LayerStatsCollector(model, probe_batch(small_mnist, CPU)).collect(7, 2)
    assert (stats.step, stats.epoch) == (7, 2)
    assert [r.name for r in stats.layers] == ["conv1", "conv2", "fc1", "output"]
    for record in stats.layers:
        module = getattr(model, record.name)
        w, g = module.weight.detach(), module.weight.grad
        if w.numel() <= MAX_PERCENTILE_SAMPLE:
            ref = np.percentile(w.numpy().astype(np.float64), BAND_PERCENTS)
            assert record.weight_bands == pytest.approx(ref, abs=1e-9)
            ref = np.percentile(g.numpy().astype(np.float64), BAND_PERCENTS)
            assert record.gradient_bands == pytest.approx(ref, abs=1e-12)
            ref = np.percentile(np.abs(g.numpy()).astype(np.float64), BAND_PERCENTS)
            assert record.gradient_size_bands == pytest.approx(ref, abs=1e-12)
        # Every gradient entry sits in the log histogram of sizes or among the zeros.
        total = record.gradient_size_histogram.sum() + record.gradient_zeros
        assert total == pytest.approx(g.numel(), rel=1e-5)
        assert record.gradient_size_range[1] == pytest.approx(math.log10(float(g.abs().max())))
        if g.numel() <= MAX_PERCENTILE_SAMPLE:
            assert record.gradient_zeros == int((g == 0).sum())
            assert record.gradient_size_range[0] == pytest.approx(
                math.log10(float(g.abs()[g != 0].min()))
            )
        assert record.weight_range == (pytest.approx(float(w.min())), pytest.approx(float(w.max())))
        norm = math.sqrt(float(g.square().sum()) + float(module.bias.grad.square().sum()))
        assert record.gradient_norm == pytest.approx(norm, rel=1e-5)
        assert record.update_ratio is None  # no weights before a step were given
    assert [r.dead_fraction is None for r in stats.layers] == [False, False, False, True]


# ----- dead ReLUs ----------------------------------------------------------------------------
def test_units_forced_dead_with_a_large_negative_bias_are_counted(small_mnist):
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 26 * 26, 10),
        nn.ReLU(),
        nn.Linear(10, 10),
    )
    with torch.no_grad():
        model[0].bias[:] = torch.tensor([-1e4, 5.0, -1e4, 5.0])  # channels 0 and 2 die
        model[3].weight.zero_()
        model[3].bias[:] = torch.tensor([-1e4] * 3 + [1.0] * 7)  # 3 of 10 units die
    model.train()
    probe = probe_batch(small_mnist, CPU)
    assert len(probe) == 200  # the whole validation split when it has fewer than 256

    assert dead_fractions(model, probe) == {"0": 0.5, "3": 0.3}
    assert model.training  # the mode comes back
    assert all(not m._forward_hooks for m in model.modules())  # the hooks go
    assert all(p.grad is None for p in model.parameters())  # no graph, no gradients
    model.eval()
    dead_fractions(model, probe)
    assert not model.training


def test_dead_units_are_judged_unhealthy_and_live_ones_are_not(small_mnist):
    model = build_model(get_spec("mlp"), seed=0)
    with torch.no_grad():
        model.fc1.bias[:100] = -1e4  # 100 of 128 units silent on every digit
    _backward_on_digits(model, small_mnist)
    stats = LayerStatsCollector(model, probe_batch(small_mnist, CPU)).collect(1, 0)
    fc1, fc2 = stats.layers[0], stats.layers[1]
    assert fc1.dead_fraction == pytest.approx(100 / 128, abs=1 / 128)
    assert fc2.dead_fraction < 0.5
    warnings = health_warnings(stats)
    assert "ReLUs give 0" in warnings["fc1"]["dead_fraction"].message
    assert "dead_fraction" not in warnings["fc2"]


# ----- update ratio ----------------------------------------------------------------------------
def test_update_ratio_of_an_sgd_step_is_the_hand_computed_one(small_mnist):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    _backward_on_digits(model, small_mnist)
    before = [p.detach().clone() for p in model.parameters()]
    lr = 0.5
    torch.optim.SGD(model.parameters(), lr=lr).step()
    stats = LayerStatsCollector(model).collect(1, 0, before)
    w, b = model[1].weight, model[1].bias
    # Plain SGD moves each parameter by -lr * gradient.
    step = lr * math.sqrt(float(w.grad.square().sum() + b.grad.square().sum()))
    size = math.sqrt(float(w.detach().square().sum() + b.detach().square().sum()))
    assert stats.layers[0].update_ratio == pytest.approx(step / size, rel=1e-4)

    a, c = torch.ones(2, 2), torch.zeros(2)
    assert update_ratio([a, c], [a * 1.1, torch.tensor([0.1, 0.0])]) == pytest.approx(
        math.sqrt(4 * 0.01 + 0.01) / math.sqrt(4 * 1.21 + 0.01)
    )


# ----- vanishing gradients -----------------------------------------------------------------
def test_gradients_vanish_in_a_deep_sigmoid_network_and_not_with_relu(small_mnist, train_steps):
    ratios = {}
    for activation in ("sigmoid", "relu"):
        trainer = train_steps(build_model(_deep(activation), seed=0), small_mnist, steps=5)
        stats = [e for e in trainer.poll() if isinstance(e, LayerStats)]
        assert [s.step for s in stats] == [1, 2, 3, 4, 5]
        last = stats[-1]
        ratios[activation] = last.layers[0].gradient_norm / last.layers[-1].gradient_norm
        warned = [n for n, w in health_warnings(last).items() if "gradient_norm" in w]
        if activation == "sigmoid":
            assert warned[:2] == ["fc1", "fc2"]
            assert "sigmoid" in health_warnings(last)["fc1"]["gradient_norm"].message
        else:
            assert warned == []
    # Measured: the first sigmoid layer gets 1.4e-5 to 4.6e-5 of the output layer's
    # gradient over seeds and steps, the first ReLU layer 2.2e-2 to 8.4e-2.
    assert ratios["sigmoid"] < 1e-3
    assert ratios["relu"] > 5e-3
    assert ratios["relu"] > 100 * ratios["sigmoid"]


def test_other_bad_ranges_are_named_with_what_to_try(small_mnist):
    model = build_model(get_spec("mlp-3b1b"), seed=0)
    _backward_on_digits(model, small_mnist)
    with torch.no_grad():
        for p in model.parameters():
            p.grad.mul_(1e5)  # exploding gradients
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        model.fc1.weight.mul_(2.0)  # an update as big as the weights
        model.output.weight.mul_(1.0 + 1e-7)  # an update that rounds to almost nothing
    warnings = health_warnings(LayerStatsCollector(model).collect(1, 0, before))
    assert "exploding" in warnings["output"]["gradient_norm"].message
    assert "lower learning rate" in warnings["fc1"]["update_ratio"].message
    assert "higher learning rate" in warnings["output"]["update_ratio"].message
    assert "higher learning rate" in warnings["fc2"]["update_ratio"].message  # no update
    assert "dead_fraction" not in warnings["fc1"]  # sigmoid units cannot die


# ----- the trainer -------------------------------------------------------------------------
def test_trainer_reports_statistics_at_a_low_rate_and_none_when_off(small_mnist):
    def run(interval):
        cfg = TrainConfig(batch_size=32, epochs=1, seed=3, stats_interval_s=interval)
        trainer = Trainer(build_model(get_spec("lenet"), seed=3), small_mnist, cfg)
        assert trainer.run().reason == "completed"
        return trainer, trainer.poll()

    trainer, events = run(1e-9)
    steps = [e for e in events if isinstance(e, StepReport)]
    stats = [e for e in events if isinstance(e, LayerStats)]
    assert [s.step for s in stats] == [s.step for s in steps]  # every step when asked
    assert all(s.layers[0].update_ratio > 0 for s in stats)
    assert stats[-1].epoch == 0 and len(stats[-1].layers) == 4
    assert trainer.model.training is False  # the run ends in eval mode as before

    _, events = run(3600.0)  # statistics of the first step, then not within an hour
    assert [e.step for e in events if isinstance(e, LayerStats)] == [1]

    # Held (a person draws): none while held, then at the next step after.
    cfg = TrainConfig(batch_size=32, epochs=1, seed=3, stats_interval_s=1e-9)
    waiting = Trainer(build_model(get_spec("lenet"), seed=3), small_mnist, cfg)
    steps_run = waiting.steps()
    next(steps_run)
    waiting.hold_statistics(3600.0)
    for _ in range(3):
        next(steps_run)
    waiting.hold_statistics(0.0)
    next(steps_run)
    held = [e.step for e in waiting.poll() if isinstance(e, LayerStats)]
    assert held == [1, 5]
    steps_run.close()

    off, events = run(None)
    assert not any(isinstance(e, LayerStats) for e in events)
    assert sum(isinstance(e, StepReport) for e in events) == len(steps)
    # Taking statistics does not change training: same seed, same weights.
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, off.model.state_dict()[key]), key


def test_the_statistics_interval_must_be_positive_and_old_configs_get_the_default():
    for bad in (0, -1.0):
        with pytest.raises(NnvizError, match="statistics interval"):
            TrainConfig(stats_interval_s=bad)
    saved = TrainConfig().to_dict()
    del saved["stats_interval_s"]  # a checkpoint written before the option existed
    assert TrainConfig.from_dict(saved).stats_interval_s == 0.5
