"""Keras 3-specific checks, on the backend KERAS_BACKEND names (tensorflow, jax or torch): train_on_batch and
the hand-written step train alike, the CTC blank is the suite's, cuDNN's skip reasons. The generic checks
(parity in every scenario, training, CTC lengths, non-finite loss, phases) are in test_implementations.py."""
import numpy as np
import pytest

from conftest import tiny_spec
from benchmarks import common, scenarios
from benchmarks.frameworks import keras as keras_impl

pytestmark = pytest.mark.skipif(keras_impl.keras is None or not keras_impl.KERAS3,
                                reason="Keras 3 checks: keras 3 is not installed here")


@pytest.fixture(autouse=True)
def one_thread():
    keras_impl.configure(1)


def build_all(names, spec):
    """The workloads, or a skip where this Keras cannot build the scenario (its reason, e.g. an old CTC)."""
    try:
        return [common.build("keras", name, spec) for name in names]
    except NotImplementedError as reason:
        pytest.skip(str(reason))


def test_train_on_batch_and_the_custom_step_follow_one_trajectory(spec):
    workloads = build_all(("LSTM", "LSTM+custom-step"), spec)
    trajectories = [[w.step() for _ in range(5)] for w in workloads]
    np.testing.assert_allclose(trajectories[1], trajectories[0], rtol=2e-5)


def test_rnn_over_lstm_cell_is_the_lstm_layers_model(spec):
    # The same cell, weights and batch: RNN(LSTMCell) and LSTM differ only in LSTM's fused-kernel attempt
    # (cuDNN, GPU only), so on a CPU they train alike, and on any device their first loss agrees.
    workloads = build_all(("LSTM", "RNN(LSTMCell)"), spec)
    steps = 1 if keras_impl._keras3.gpu_name() else 3
    trajectories = [[w.step() for _ in range(steps)] for w in workloads]
    np.testing.assert_allclose(trajectories[1], trajectories[0], rtol=2e-5)


def test_ctc_keeps_the_suites_blank():
    # keras.ops.ctc_loss takes the blank's index: no class permutation, unlike Keras 2 on TensorFlow.
    spec = tiny_spec("4x320/CTC-long")
    np.testing.assert_array_equal(keras_impl.head_order(spec), np.arange(spec.classes))
    x, _ = keras_impl._keras3.host_batch(spec, scenarios.make_batch(spec))
    assert x[2].min() >= 1 and x[2].dtype == np.int32


def test_ctc_on_jax_before_keras_3_4_is_skipped_with_its_reason():
    # Keras 3.0-3.3's JAX ctc_loss sized the frame padding by the labels: it cannot run these scenarios.
    if keras_impl._keras3.BACKEND != "jax" or keras_impl._keras3.KERAS_VERSION >= (3, 4):
        pytest.skip("Keras {} on {} has a working ctc_loss".format(keras_impl.keras.__version__,
                                                                   keras_impl._keras3.BACKEND))
    with pytest.raises(NotImplementedError, match="label length.*Keras 3.4"):
        common.build("keras", "LSTM", tiny_spec("4x320/CTC-long"))


def test_cudnn_is_skipped_with_its_reason_without_a_gpu():
    if keras_impl._keras3.BACKEND != "jax" and keras_impl._keras3.gpu_name():
        pytest.skip("this machine has a GPU")
    with pytest.raises(NotImplementedError, match="cuDNN|use_cudnn"):
        common.build("keras", "CuDNNLSTM", tiny_spec("1x320/CE-short"))


def test_the_backend_is_the_matrix_one():
    import os

    assert keras_impl._keras3.BACKEND == os.environ.get("KERAS_BACKEND", "tensorflow")
    workload = common.build("keras", "LSTM", tiny_spec("1x320/CE-short"))
    assert "on {}".format(keras_impl._keras3.BACKEND) in workload.device
