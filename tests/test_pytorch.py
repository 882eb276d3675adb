"""PyTorch-specific checks; the checks every implementation passes are in test_implementations.py."""
import importlib

import numpy as np
import pytest

from benchmarks import common, scenarios

torch = pytest.importorskip("torch")
from benchmarks.frameworks import pytorch  # noqa: E402



@pytest.fixture(autouse=True)
def one_thread():
    pytorch.configure(1)


def test_implementations_agree_after_training(spec):
    # Same weights, same batch, same Adam: the implementations stay on the same trajectory.
    workloads = []
    for name in pytorch.IMPLEMENTATIONS:
        try:
            workloads.append(common.build("pytorch", name, spec))
        except NotImplementedError:  # cuDNN without a GPU, warp-ctc where absent or on a CE scenario
            pass
    assert len(workloads) >= 3
    trajectories = [[w.step() for _ in range(5)] for w in workloads]
    np.testing.assert_allclose(trajectories[1:], [trajectories[0]] * (len(workloads) - 1), rtol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cudnn_is_skipped_with_its_reason_on_a_cpu(spec):
    with pytest.raises(NotImplementedError, match="cuDNNLSTM needs a CUDA device"):
        common.build("pytorch", "cuDNNLSTM", spec)


def test_parameter_counts_of_the_torch_models_are_the_study_counts():
    for name, expected in {"1x320/CE-long": 572800, "4x320/CE-long": 8533760, "4x320/CTC-long": 8565120}.items():
        spec = scenarios.spec(name, "small")
        lstm = torch.nn.LSTM(spec.features, spec.hidden, num_layers=spec.layers, bidirectional=spec.bidirectional)
        head = torch.nn.Linear(spec.hidden * (2 if spec.bidirectional else 1), spec.classes, bias=False)
        assert sum(p.numel() for m in (lstm, head) for p in m.parameters()) == expected


def test_missing_torch_is_a_skip_not_a_crash(monkeypatch):
    # What an environment without torch sees: asv can still import the module, setup skips.
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    try:
        module = importlib.reload(pytorch)
        assert module.torch is None
        from benchmarks import bench_pytorch
        bench = bench_pytorch.TrainingStep()
        with pytest.raises(NotImplementedError, match="torch is not installed"):
            bench.setup("1x320/CE-short", "nn.LSTM")
    finally:
        monkeypatch.undo()
        importlib.reload(pytorch)


def test_time_step_runs_a_cell_without_warm_up_and_with_subnormals_flushed():
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
    import time_step

    try:
        time_step.flush_denormal("pytorch")
        ready, times, workload = time_step.time_steps("pytorch", "nn.LSTM", "1x320/CE-short", "small", 2,
                                                      warmup_steps=0)
    finally:
        torch.set_flush_denormal(False)
    assert len(times) == 2 and all(t > 0 for t in times) and ready > 0
