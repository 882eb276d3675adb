"""benchmarks.metrics: each cell measured in a fresh process, its phases, its FLOP/s and the peak it is
compared with; skips and failures reach asv as a skip or a one-line error. One sample per phase here
(RNNBENCH_METRICS_QUICK=1): these check behaviour, not speed."""
import math

import pytest

from conftest import tiny_spec
from benchmarks import common, flops, metrics, scenarios

pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setenv(metrics.QUICK_VAR, "1")


def test_a_cell_reports_every_metric_consistently():
    spec = tiny_spec("4x320/CTC-long")
    cell = metrics.measure_cell("pytorch", "nn.LSTM", spec)
    for phase in ("forward_s", "forward_backward_s", "step_s"):
        assert cell[phase]["samples"] == 1 and cell[phase]["median"] > 0
    assert cell["backward_median_s"] == pytest.approx(cell["forward_backward_s"]["median"] - cell["forward_s"]["median"])
    assert cell["first_step_s"] > 0 and cell["threads"] >= 1 and cell["device"]
    assert cell["flops"] == flops.step_flops(spec)._asdict()
    assert cell["gflops"] == pytest.approx(cell["flops"]["total"] / cell["step_s"]["median"] / 1e9)


def test_sampling_takes_the_minimum_then_stops_at_the_budget(monkeypatch):
    monkeypatch.delenv(metrics.QUICK_VAR)
    calls = []
    times = metrics.sample(lambda: calls.append(1), min_samples=3, max_samples=10, budget_s=0.0)
    assert len(times) == len(calls) == 3
    assert len(metrics.sample(lambda: None, min_samples=1, max_samples=4, budget_s=60.0)) == 4


def test_quartiles_interpolate_like_numpy():
    stats = metrics.quartiles([4.0, 1.0, 3.0, 2.0])
    assert stats == {"median": 2.5, "q25": 1.75, "q75": 3.25, "samples": 4}


def test_a_phase_with_a_non_finite_loss_fails_loudly():
    with pytest.raises(common.NonFiniteLossError, match="non-finite loss"):
        metrics._checked(lambda: float("nan"))()


def test_cells_run_in_their_own_processes_and_skips_keep_their_reason():
    import torch

    cache = metrics.measure_framework("pytorch", ["1x320/CE-short"], ["nn.LSTM", "cuDNNLSTM", "LSTM-turbo"], "small")
    assert 0 < cache["peak"]["gflops"] < math.inf
    cell = metrics.cell_of(cache, "1x320/CE-short", "nn.LSTM")
    assert cell["peak_fraction"] == pytest.approx(cell["gflops"] / cache["peak"]["gflops"])
    assert cell["flops"] == flops.step_flops(scenarios.spec("1x320/CE-short", "small"))._asdict()
    if not torch.cuda.is_available():
        with pytest.raises(NotImplementedError, match="cuDNNLSTM needs a CUDA device"):
            metrics.cell_of(cache, "1x320/CE-short", "cuDNNLSTM")
    with pytest.raises(RuntimeError, match="unknown pytorch implementation 'LSTM-turbo'"):
        metrics.cell_of(cache, "1x320/CE-short", "LSTM-turbo")
    with pytest.raises(RuntimeError, match="no metrics were measured for 4x320/CE-long nn.LSTM"):
        metrics.cell_of(cache, "4x320/CE-long", "nn.LSTM")


def test_a_run_can_measure_some_scenarios_only_and_the_others_skip(monkeypatch):
    monkeypatch.setenv(metrics.SCENARIOS_VAR, "1x320/CE-short")
    cache = metrics.measure_framework("pytorch", ["1x320/CE-short", "4x320/CE-long"], ["nn.LSTM"], "small")
    assert metrics.cell_of(cache, "1x320/CE-short", "nn.LSTM")["gflops"] > 0
    with pytest.raises(NotImplementedError, match="not measured in this run: RNNBENCH_METRICS_SCENARIOS=1x320/CE-short"):
        metrics.cell_of(cache, "4x320/CE-long", "nn.LSTM")
    monkeypatch.setenv(metrics.SCENARIOS_VAR, "1x320/CE-short,5x320/CE-huge")
    with pytest.raises(ValueError, match="unknown scenario 5x320/CE-huge; choose from 1x320/CE-short, 4x320/CE-long"):
        metrics.measure_framework("pytorch", ["1x320/CE-short", "4x320/CE-long"], ["nn.LSTM"], "small")


def test_a_framework_missing_from_the_environment_skips_every_cell(monkeypatch):
    module = common.framework_module("pytorch", require=False)

    def absent():
        raise NotImplementedError("torch is not installed in this environment")

    monkeypatch.setattr(module, "require", absent)
    cache = metrics.measure_framework("pytorch", ["1x320/CE-short"], ["nn.LSTM"], "small")
    assert cache == {"skipped": "torch is not installed in this environment"}
    with pytest.raises(NotImplementedError, match="torch is not installed"):
        metrics.cell_of(cache, "1x320/CE-short", "nn.LSTM")


def test_the_asv_class_reads_its_cell_from_the_cache():
    from benchmarks import bench_pytorch

    cache = {"peak": {"gflops": 100.0}, "cells": {metrics.cell_key("1x320/CE-short", "nn.LSTM"): {
        "forward_s": {"median": 0.002}, "backward_median_s": 0.003, "first_step_s": 1.5, "gflops": 25.0,
        "device_peak_bytes": None}}}
    bench = bench_pytorch.StepMetrics()
    bench.setup(cache, "1x320/CE-short", "nn.LSTM")
    args = (cache, "1x320/CE-short", "nn.LSTM")
    assert bench.track_forward(*args) == pytest.approx(2.0) and bench.track_backward(*args) == pytest.approx(3.0)
    assert bench.track_first_step(*args) == 1.5 and bench.track_gflops(*args) == 25.0
    assert bench.track_peak_fraction(*args) == pytest.approx(25.0) and bench.track_matmul_peak(*args) == 100.0
    assert math.isnan(bench.track_device_peak_memory(*args))
    assert bench.track_forward.unit == "ms" and bench.track_peak_fraction.unit == "% of matmul peak"
