"""The checks every implementation of every framework passes, at tiny shapes: it builds, matches the
numpy reference (loss and every gradient), trains, honours CTC lengths and fails loudly on a non-finite
loss. Frameworks missing from the running environment are skipped; GPU-only implementations skip on a
CPU with their reason. Framework-specific checks (weight mappings, set-up) live in test_<framework>.py.
"""
import importlib

import numpy as np
import pytest

import parity
from conftest import tiny_spec
from benchmarks import common, scenarios


def _implementations():
    """(framework, implementation) for every implementation of every installed framework."""
    cases = []
    for framework in sorted(common.FRAMEWORKS):
        module = importlib.import_module(common.FRAMEWORKS[framework])
        try:
            common.framework_module(framework)  # installed, and served by the running stack
            marks = ()
        except NotImplementedError as reason:
            marks = pytest.mark.skip(reason=str(reason))
        for implementation in module.IMPLEMENTATIONS:
            cases.append(pytest.param((framework, implementation), marks=marks, id=framework + ":" + implementation))
    return cases


CASES = _implementations()


def build_or_skip(framework, implementation, spec, batch=None, weights=None):
    """Build, or skip where this machine cannot run the implementation (e.g. cuDNN without a GPU)."""
    try:
        return common.build(framework, implementation, spec, batch, weights)
    except NotImplementedError as reason:
        pytest.skip(str(reason))


def parity_or_skip(framework, implementation, spec, batch=None):
    build_or_skip(framework, implementation, spec, batch)  # a skip, not a failure, where it cannot run here
    return parity.check(framework, implementation, spec, batch)


@pytest.fixture(params=CASES)
def case(request):
    framework, _ = request.param
    common.framework_module(framework).configure(1)
    return request.param


def test_parity_with_numpy_reference(case, spec):
    parity_or_skip(*case, spec=spec)


def test_training_steps_decrease_a_finite_loss(case, spec):
    workload = build_or_skip(*case, spec=spec)
    losses = [common.checked_step(workload) for _ in range(8)]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]


def test_ctc_ignores_frames_past_each_length_and_sees_labels(case):
    spec = tiny_spec("4x320/CTC-long")
    batch = scenarios.make_batch(spec)
    noisy = batch.inputs.copy()
    for sample, length in enumerate(batch.input_lengths):
        noisy[sample, length:] = 1e3  # garbage in the padding must not reach the loss
    clean_loss, _ = parity_or_skip(*case, spec=spec, batch=batch)
    loss, _ = parity.check(*case, spec=spec, batch=batch._replace(inputs=noisy))
    assert loss == pytest.approx(clean_loss, rel=1e-5)
    relabelled = batch.targets.copy()
    relabelled[0, 0] = relabelled[0, 0] % (spec.classes - 2) + 1
    changed, _ = parity.check(*case, spec=spec, batch=batch._replace(targets=relabelled))
    assert changed != pytest.approx(clean_loss, rel=1e-5)


def test_phases_compute_the_steps_loss_and_update_nothing(case, spec):
    # Forward and forward+backward (timed apart by benchmarks.metrics) compute the step's own loss on the
    # same batch, and leave the weights as they were: the step that follows starts from the same loss.
    workload = build_or_skip(*case, spec=spec)
    loss, _ = workload.loss_and_grads()
    assert workload.forward is not None and workload.forward_backward is not None
    for phase in (workload.forward, workload.forward_backward, workload.forward):
        assert phase() == pytest.approx(loss, rel=1e-5)
    assert common.checked_step(workload) == pytest.approx(loss, rel=1e-5)
    peak = workload.device_peak_bytes()
    assert peak is None if workload.device.startswith("cpu") else peak > 0


def test_non_finite_loss_fails_loudly(case):
    spec = tiny_spec("1x320/CE-short")
    weights = scenarios.init_weights(spec)
    weights["head.w"][:] = np.nan
    workload = build_or_skip(*case, spec=spec, weights=weights)
    with pytest.raises(common.NonFiniteLossError, match="non-finite loss"):
        common.checked_step(workload)


def test_labels_that_cannot_fit_are_refused_before_building(case):
    spec = tiny_spec("4x320/CTC-long")
    too_short = scenarios.make_batch(spec)._replace(input_lengths=np.array([7, 5, 1]))
    with pytest.raises(ValueError, match="CTC sample 2 needs 2 frames for its 2 labels but has only 1"):
        common.build(*case, spec=spec, batch=too_short)


def test_unknown_implementation_is_refused():
    framework = sorted(common.FRAMEWORKS)[0]
    with pytest.raises(ValueError, match="unknown {} implementation 'LSTM-turbo'; choose from".format(framework)):
        common.build(framework, "LSTM-turbo", tiny_spec("1x320/CE-short"))


def test_unknown_framework_is_refused():
    with pytest.raises(ValueError, match="unknown framework 'chainer'; choose from jax, keras, lasagne, pytensor, pytorch"):
        common.build("chainer", "LSTM", tiny_spec("1x320/CE-short"))


def test_every_framework_has_a_thin_asv_module():
    # One bench_<framework> module per framework, its TrainingStep listing the module's implementations,
    # its StepMetrics the same cells, with a setup_cache of its own (asv keys caches by definition site).
    for framework, module_name in common.FRAMEWORKS.items():
        bench = importlib.import_module("benchmarks.bench_" + framework)
        module = importlib.import_module(module_name)
        assert bench.TrainingStep.framework == bench.StepMetrics.framework == framework
        assert bench.TrainingStep.params == [scenarios.SCENARIO_NAMES, list(module.IMPLEMENTATIONS)]
        assert bench.StepMetrics.params == bench.TrainingStep.params
        assert "setup_cache" in vars(bench.StepMetrics)


FRAMEWORK_CASES = sorted({case.values[0][0]: case for case in CASES}.values(), key=lambda c: c.values[0][0])


@pytest.mark.parametrize("case", FRAMEWORK_CASES)
def test_peak_matmul_runs_in_each_framework(case, monkeypatch):
    from benchmarks import metrics

    monkeypatch.setenv(metrics.QUICK_VAR, "1")
    framework = case[0]
    peak = metrics.measure_peak(framework)
    assert peak["size"] >= metrics.PEAK_START_SIZE and peak["threads"] >= 1
    assert 0 < peak["gflops"] < float("inf")
