"""Keras-specific checks: the weight mapping to Keras' layout, the length mask and Bidirectional's
reversal within each length, the CTC blank mapping, the CuDNNLSTM skip reasons and the thread set-up.
The generic checks (parity in every scenario, training, CTC lengths, NaN) are in test_implementations.py.
Run under KERAS_BACKEND=tensorflow or theano, and on tf.keras (Keras 2.4 to 2.15); tests specific to one
skip on the others.
"""
import importlib
import sys

import numpy as np
import pytest

import reference
from conftest import tiny_spec
from benchmarks import common, scenarios
from benchmarks.frameworks import keras as keras_impl

pytestmark = pytest.mark.skipif(keras_impl.keras is None or keras_impl.KERAS3,
                                reason="Keras 2 checks: keras 2 is not installed here (Keras 3's are in test_keras_3.py)")


def _backend():
    return keras_impl.K.backend() if keras_impl.K is not None else None  # Keras 2 only


tensorflow_only = pytest.mark.skipif(_backend() != "tensorflow", reason="TensorFlow backend only")
# Keras 2.4 to 2.15: tf.keras on eager TensorFlow 2 (no CuDNNLSTM layer, no sessions)
tf_keras_only = pytest.mark.skipif(not keras_impl.TF_KERAS, reason="tf.keras (Keras 2.4 to 2.15) only")
graph_keras_only = pytest.mark.skipif(keras_impl.TF_KERAS, reason="multi-backend Keras 2 (2.1.6 to 2.3.1) only")
theano_only = pytest.mark.skipif(_backend() != "theano", reason="Theano backend only")


@pytest.fixture(autouse=True)
def one_thread():
    if keras_impl.keras is not None:
        keras_impl.configure(1)


def test_weight_mapping_layout_and_inverse():
    spec = tiny_spec("4x320/CE-long")
    weights = scenarios.init_weights(spec)
    prefix = "lstm.l1.bwd"
    kernel, recurrent, bias = keras_impl.to_keras(prefix, weights, cudnn=False)
    # Keras keeps the gate order i, f, c, o along the 4H axis; its kernels are (in, 4H).
    np.testing.assert_array_equal(kernel, weights[prefix + ".w_ih"].T)
    np.testing.assert_array_equal(recurrent, weights[prefix + ".w_hh"].T)
    np.testing.assert_allclose(bias, weights[prefix + ".b_ih"] + weights[prefix + ".b_hh"])
    _, _, cudnn_bias = keras_impl.to_keras(prefix, weights, cudnn=True)
    np.testing.assert_array_equal(cudnn_bias, np.concatenate([weights[prefix + ".b_ih"], weights[prefix + ".b_hh"]]))
    # Gradients go back by the inverse layout; a single bias's gradient is reported for both biases.
    back = keras_impl.from_keras(prefix, [kernel, recurrent, bias], cudnn=False)
    np.testing.assert_array_equal(back[prefix + ".w_ih"], weights[prefix + ".w_ih"])
    np.testing.assert_array_equal(back[prefix + ".w_hh"], weights[prefix + ".w_hh"])
    np.testing.assert_array_equal(back[prefix + ".b_ih"], back[prefix + ".b_hh"])
    back = keras_impl.from_keras(prefix, [kernel, recurrent, cudnn_bias], cudnn=True)
    np.testing.assert_array_equal(back[prefix + ".b_ih"], weights[prefix + ".b_ih"])
    np.testing.assert_array_equal(back[prefix + ".b_hh"], weights[prefix + ".b_hh"])


def test_masked_bidirectional_lstm_reverses_each_sample_within_its_length():
    # A length-masked Bidirectional(LSTM) with the mapped weights gives, at every valid step, the numpy
    # reference's forward outputs and its backward outputs over each sample reversed within its length,
    # whatever the padding holds: the gate order, the transposes, the summed bias, sigmoid gates (not
    # Keras' default hard_sigmoid) and the reverse_sequence semantics at once.
    keras, K = keras_impl.keras, keras_impl.K
    spec = tiny_spec("4x320/CTC-long")
    weights = scenarios.init_weights(spec)
    batch = scenarios.make_batch(spec)
    inputs = batch.inputs.copy()
    for sample, length in enumerate(batch.input_lengths):
        inputs[sample, length:] = 1e3
    x = keras.layers.Input(shape=(spec.time, spec.features))
    lengths = keras.layers.Input(shape=(1,), dtype="int32")
    wrapper = keras.layers.Bidirectional(
        keras.layers.LSTM(spec.hidden, recurrent_activation="sigmoid", return_sequences=True), merge_mode="concat")
    model = keras.models.Model([x, lengths], wrapper(keras_impl.LengthMask(spec.time)([x, lengths])))
    for prefix, layer in (("lstm.l0.fwd", wrapper.forward_layer), ("lstm.l0.bwd", wrapper.backward_layer)):
        K.batch_set_value(list(zip(layer.trainable_weights, keras_impl.to_keras(prefix, weights, cudnn=False))))
    outputs = model.predict([inputs, batch.input_lengths.reshape(-1, 1).astype(np.int32)], batch_size=spec.batch)

    def gates(prefix):
        return [weights[prefix + "." + g].astype(np.float64) for g in ("w_ih", "w_hh", "b_ih", "b_hh")]

    for sample, length in enumerate(batch.input_lengths):
        valid = batch.inputs[sample, :length].astype(np.float64)
        forward, _ = reference.lstm_forward(valid, *gates("lstm.l0.fwd"))
        backward, _ = reference.lstm_forward(valid[::-1], *gates("lstm.l0.bwd"))
        expected = np.concatenate([forward, backward[::-1]], axis=1)
        np.testing.assert_allclose(outputs[sample, :length], expected, rtol=1e-5, atol=1e-6)


def test_the_mask_comes_from_the_lengths_not_from_the_values():
    K = keras_impl.K
    mask = keras_impl.LengthMask(5).compute_mask([K.zeros((3, 5, 2)), K.constant([[5], [3], [1]])])
    np.testing.assert_array_equal(K.eval(mask), [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])


def test_ctc_blank_mapping_follows_the_backend():
    spec = tiny_spec("4x320/CTC-long")
    batch = scenarios.make_batch(spec)
    batch = batch._replace(target_lengths=np.array([2, 1, 2]))
    labels = keras_impl.ctc_labels(spec, batch)
    order = keras_impl.head_order(spec)
    assert labels.dtype == np.int32 and labels[1, 1] == -1  # padding past a sample's label length
    if _backend() == "tensorflow":
        # Keras' TensorFlow CTC takes the LAST class as the blank: canonical blank 0 becomes the last
        # column and every label k becomes column k - 1, which holds canonical class k.
        assert list(order) == list(range(1, spec.classes)) + [0]
        assert labels[0, 0] == batch.targets[0, 0] - 1
        assert order[labels[0, 0]] == batch.targets[0, 0]
    else:
        # Theano's warp-ctc op takes blank 0, as the suite: nothing moves.
        assert list(order) == list(range(spec.classes))
        assert labels[0, 0] == batch.targets[0, 0]
    assert list(keras_impl.head_order(tiny_spec("1x320/CE-short"))) == list(range(10))


def _random_ctc_case(spec):
    rng = np.random.RandomState(3)
    logits = rng.randn(spec.batch, spec.time, spec.classes).astype(np.float32)
    batch = scenarios.make_batch(spec)
    expected = [reference.ctc_loss_and_grad(logits[s, :length].astype(np.float64),
                                            batch.targets[s, :batch.target_lengths[s]])[0]
                for s, length in enumerate(batch.input_lengths)]
    return logits, batch, np.array(expected)


def _ctc_cost(spec, logits, batch):
    K = keras_impl.K
    order = keras_impl.head_order(spec)
    cost = keras_impl.CTCCost().call([K.constant(logits[:, :, order]),
                                 K.constant(keras_impl.ctc_labels(spec, batch), dtype="int32"),
                                 K.constant(batch.input_lengths.reshape(-1, 1), dtype="int32"),
                                 K.constant(batch.target_lengths.reshape(-1, 1), dtype="int32")])
    return K.eval(cost)[:, 0]


@tensorflow_only
def test_keras_tensorflow_ctc_with_the_blank_mapped_is_the_suites_ctc():
    spec = tiny_spec("4x320/CTC-long")._replace(time=12, min_length=8, labels=3)
    logits, batch, expected = _random_ctc_case(spec)
    # ctc_batch_cost takes log(softmax + K.epsilon()): within 1e-5 of the exact loss at these values.
    np.testing.assert_allclose(_ctc_cost(spec, logits, batch), expected, rtol=1e-5)


@theano_only
def test_theano_ctc_is_the_suites_ctc_and_keras_theano_ctc_is_not():
    if keras_impl._theano.ctc_unavailable_reason() is not None:
        pytest.skip(keras_impl._theano.ctc_unavailable_reason())
    K = keras_impl.K
    spec = tiny_spec("4x320/CTC-long")._replace(time=12, min_length=8, labels=3)
    logits, batch, expected = _random_ctc_case(spec)
    np.testing.assert_allclose(_ctc_cost(spec, logits, batch), expected, rtol=1e-5)
    # Why Keras' own Theano ctc_batch_cost is not used: with the blank moved last as it requires, it
    # returns each sample's loss minus log(input length), on probabilities smoothed by 1e-4.
    order = np.roll(np.arange(spec.classes), -1)
    probabilities = np.exp(logits - logits.max(axis=2, keepdims=True))
    probabilities /= probabilities.sum(axis=2, keepdims=True)
    keras_cost = K.eval(K.ctc_batch_cost(K.constant(batch.targets - 1, dtype="int32"),
                                         K.constant(probabilities[:, :, order]),
                                         K.constant(batch.input_lengths.reshape(-1, 1), dtype="int32"),
                                         K.constant(batch.target_lengths.reshape(-1, 1), dtype="int32"))).ravel()
    offset = expected - np.log(batch.input_lengths)
    np.testing.assert_allclose(keras_cost, offset, rtol=1e-3)
    assert np.abs(keras_cost - offset).max() > 1e-5 * np.abs(offset).max()  # the smoothing's effect
    assert not np.allclose(keras_cost, expected, rtol=1e-2)


@tf_keras_only
def test_tf_keras_has_no_cudnn_row_its_lstm_is_cudnn_on_a_gpu():
    for scenario in ("1x320/CE-short", "4x320/CTC-long"):
        with pytest.raises(NotImplementedError, match=r"has no CuDNNLSTM layer: its LSTM layer runs cuDNN itself"):
            common.build("keras", "CuDNNLSTM", tiny_spec(scenario))


@tf_keras_only
def test_tf_keras_pins_tensorflow_2s_own_thread_pools():
    # tf.keras runs on TensorFlow 2's process-wide pools, which the tensorflow module pins (before the runtime
    # starts; after, it reports the count fixed then): the Keras rows report the same count.
    from benchmarks.frameworks import tensorflow as tensorflow_impl

    assert keras_impl.configure(1) == tensorflow_impl.configure(1) >= 1
    assert keras_impl.configure(2) == tensorflow_impl.configure(2) >= 1


@tensorflow_only
@graph_keras_only
def test_cudnn_lstm_never_runs_ctc():
    with pytest.raises(NotImplementedError, match="CuDNNLSTM cannot mask variable-length sequences"):
        common.build("keras", "CuDNNLSTM", tiny_spec("4x320/CTC-long"))


@theano_only
def test_cudnn_lstm_is_skipped_on_theano_with_its_reason(spec):
    with pytest.raises(NotImplementedError, match="CuDNNLSTM needs the TensorFlow backend"):
        common.build("keras", "CuDNNLSTM", spec)


@tensorflow_only
@graph_keras_only
def test_cudnn_lstm_is_skipped_without_a_gpu_with_its_reason():
    if keras_impl._gpu_names():
        pytest.skip("this machine has a GPU")
    with pytest.raises(NotImplementedError, match="CuDNNLSTM needs a CUDA GPU with cuDNN"):
        common.build("keras", "CuDNNLSTM", tiny_spec("1x320/CE-short"))


@tensorflow_only
@graph_keras_only
def test_cudnn_lstm_matches_lstm_on_a_gpu():
    if not keras_impl._gpu_names():
        pytest.skip("no GPU: CuDNNLSTM cannot run here")
    for name in ("1x320/CE-short", "4x320/CE-long"):
        spec = tiny_spec(name)
        cudnn_loss, _ = common.build("keras", "CuDNNLSTM", spec).loss_and_grads()
        loss, _ = common.build("keras", "LSTM", spec).loss_and_grads()
        assert cudnn_loss == pytest.approx(loss, rel=1e-4)


@tensorflow_only
@graph_keras_only
def test_tensorflow_session_uses_the_configured_threads():
    import tensorflow as tf

    assert keras_impl.configure(1) == 1
    config = keras_impl.K.get_session()._config
    assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (1, 1)
    session = keras_impl.K.get_session()
    keras_impl.configure(1)
    assert keras_impl.K.get_session() is session  # same count: models built earlier keep their session
    assert isinstance(session, tf.compat.v1.Session if hasattr(tf, "compat") else tf.Session)


@theano_only
def test_theano_threads_go_through_the_shared_theano_setup():
    assert keras_impl.configure(1) == keras_impl._theano.threads_in_use()


def test_the_keras_defaults_are_pinned():
    K = keras_impl.K
    assert (K.floatx(), K.epsilon()) == ("float32", 1e-7)
    assert K.backend() == keras_impl.os.environ["KERAS_BACKEND"]


def test_parameter_counts_differ_from_the_canonical_by_the_single_bias():
    # Keras' LSTM keeps one bias per layer and direction (the canonical layout has two).
    for name in ("1x320/CE-long", "4x320/CE-long", "4x320/CTC-long"):
        spec = scenarios.spec(name, "small")
        model, recurrent, _ = keras_impl._model(spec, cudnn=False)
        assert model.count_params() == scenarios.parameter_count(spec) - 4 * spec.hidden * len(recurrent)


def test_missing_keras_is_a_skip_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    try:
        module = importlib.reload(keras_impl)
        assert module.keras is None
        from benchmarks import bench_keras

        with pytest.raises(NotImplementedError, match="keras is not installed in this environment"):
            bench_keras.TrainingStep().setup("1x320/CE-short", "LSTM")
    finally:
        monkeypatch.undo()
        importlib.reload(keras_impl)


def test_the_custom_step_is_keras_3_only():
    with pytest.raises(NotImplementedError, match="hand-written step is written for Keras 3"):
        common.build("keras", "LSTM+custom-step", tiny_spec("1x320/CE-short"))


def test_rnn_over_lstm_cell_is_keras_3_only():
    # Keras 2's LSTM layer is RNN(LSTMCell) itself: a second row would time the same layer twice
    reason = "row is written for Keras 3" if keras_impl.TF_KERAS else "LSTM layer is RNN\\(LSTMCell\\) itself"
    with pytest.raises(NotImplementedError, match=reason):
        common.build("keras", "RNN(LSTMCell)", tiny_spec("1x320/CE-short"))
