"""PyTorch implementations at tiny shapes: they build, train, match the numpy reference, honour CTC
lengths, skip what the machine lacks and fail loudly on a non-finite loss."""
import importlib

import numpy as np
import pytest

import parity
from conftest import tiny_spec
from benchmarks import common, scenarios

torch = pytest.importorskip("torch")
from benchmarks.frameworks import pytorch  # noqa: E402

RUNNABLE = [name for name in pytorch.IMPLEMENTATIONS if name != "cuDNNLSTM" or torch.cuda.is_available()]


@pytest.fixture(autouse=True)
def one_thread():
    pytorch.configure(1)


@pytest.mark.parametrize("implementation", RUNNABLE)
def test_parity_with_numpy_reference(spec, implementation):
    parity.check("pytorch", implementation, spec)


@pytest.mark.parametrize("implementation", RUNNABLE)
def test_training_steps_decrease_a_finite_loss(spec, implementation):
    workload = common.build("pytorch", implementation, spec)
    losses = [common.checked_step(workload) for _ in range(8)]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]


def test_implementations_agree_after_training(spec):
    # Same weights, same batch, same Adam: the implementations stay on the same trajectory.
    workloads = [common.build("pytorch", name, spec) for name in RUNNABLE]
    trajectories = [[w.step() for _ in range(5)] for w in workloads]
    np.testing.assert_allclose(trajectories[1:], [trajectories[0]] * (len(RUNNABLE) - 1), rtol=1e-5)


@pytest.mark.parametrize("implementation", RUNNABLE)
def test_ctc_ignores_frames_past_each_length(implementation):
    spec = tiny_spec("4x320/CTC-long")
    batch = scenarios.make_batch(spec)
    noisy = batch.inputs.copy()
    for sample, length in enumerate(batch.input_lengths):
        noisy[sample, length:] = 1e3  # garbage in the padding must not reach the loss
    clean_loss, clean_grads = parity.check("pytorch", implementation, spec, batch)
    loss, grads = parity.check("pytorch", implementation, spec, batch._replace(inputs=noisy))
    assert loss == pytest.approx(clean_loss, rel=1e-6)
    relabelled = batch.targets.copy()
    relabelled[0, 0] = relabelled[0, 0] % (spec.classes - 2) + 1
    changed, _ = parity.check("pytorch", implementation, spec, batch._replace(targets=relabelled))
    assert changed != pytest.approx(clean_loss, rel=1e-6)


def test_ctc_labels_that_cannot_fit_are_refused_before_building():
    spec = tiny_spec("4x320/CTC-long")
    batch = scenarios.make_batch(spec)
    too_short = batch._replace(input_lengths=np.array([7, 5, 1]))
    with pytest.raises(ValueError, match="CTC sample 2 needs 2 frames for its 2 labels but has only 1"):
        common.build("pytorch", "nn.LSTM", spec, too_short)


def test_non_finite_loss_fails_loudly(spec):
    weights = scenarios.init_weights(spec)
    weights["head.w"][:] = np.nan
    workload = common.build("pytorch", "LSTMCell-fused", spec, weights=weights)
    with pytest.raises(common.NonFiniteLossError, match="non-finite loss"):
        common.checked_step(workload)


def test_unknown_implementation_is_refused(spec):
    with pytest.raises(ValueError, match="unknown pytorch implementation 'LSTMCell-turbo'; choose from LSTMCell-basic"):
        common.build("pytorch", "LSTMCell-turbo", spec)


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
