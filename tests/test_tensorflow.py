"""TensorFlow-specific checks: the weight mapping to TF's cells (gate order, one summed bias), each cell
really computing the canonical LSTM (forget_bias 0), the CTC blank mapping, cuDNN's mapping and skip
reasons, thread configuration and the skip without TensorFlow. The generic checks (parity, training,
CTC lengths, non-finite loss) for every implementation live in test_implementations.py."""
import importlib
import subprocess
import sys

import numpy as np
import pytest

import reference
from conftest import ROOT, tiny_spec
from benchmarks import common, scenarios

tf = pytest.importorskip("tensorflow")
from benchmarks.frameworks import tensorflow as tfm  # noqa: E402

pytestmark = pytest.mark.skipif(int(tf.__version__.split(".")[0]) >= 2,
                                reason="TensorFlow 1.x graph-mode checks (TF 2's are in test_tensorflow_2.py)")
v1 = tf.compat.v1
CELL_IMPLEMENTATIONS = ["LSTMCell", "LSTMBlockCell", "LSTMBlockFusedCell"]


@pytest.fixture(autouse=True)
def one_thread():
    tfm.configure(1)


def _canonical_layer(in_size, hidden, seed=0):
    rng = np.random.RandomState(seed)
    return [rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)
            for shape in [(4 * hidden, in_size), (4 * hidden, hidden), (4 * hidden,), (4 * hidden,)]]


def test_kernel_layout_is_tf_gate_order_of_the_transposed_canonical_weights():
    in_size, hidden = 3, 2
    w_ih, w_hh, b_ih, b_hh = _canonical_layer(in_size, hidden)
    kernel = tfm.to_tf_kernel(w_ih, w_hh)
    bias = tfm.to_tf_bias(b_ih, b_hh)
    assert kernel.shape == (in_size + hidden, 4 * hidden) and bias.shape == (4 * hidden,)
    # TF gate blocks i, j (cell), f, o are canonical blocks i, g, f, o.
    for tf_block, canonical_block in enumerate((0, 2, 1, 3)):
        rows = slice(canonical_block * hidden, (canonical_block + 1) * hidden)
        columns = slice(tf_block * hidden, (tf_block + 1) * hidden)
        np.testing.assert_array_equal(kernel[:in_size, columns], w_ih[rows].T)
        np.testing.assert_array_equal(kernel[in_size:, columns], w_hh[rows].T)
        np.testing.assert_array_equal(bias[columns], b_ih[rows] + b_hh[rows])


def test_gate_mapping_round_trips():
    w_ih, w_hh, b_ih, b_hh = _canonical_layer(5, 3)
    back_ih, back_hh = tfm.from_tf_kernel(tfm.to_tf_kernel(w_ih, w_hh), 5)
    np.testing.assert_array_equal(back_ih, w_ih)
    np.testing.assert_array_equal(back_hh, w_hh)
    np.testing.assert_array_equal(tfm.from_tf_bias(tfm.to_tf_bias(b_ih, b_hh)), b_ih + b_hh)


def _run_one_layer(kind, inputs, weights):
    """One LSTM layer of ``kind`` over batch-major ``inputs`` with canonical ``weights``, as the module
    builds it; returns its batch-major outputs."""
    batch, time, in_size = inputs.shape
    hidden = weights["l.w_hh"].shape[1]
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [batch, time, in_size])
        if kind == "LSTMBlockFusedCell":
            cell = tfm._lstm_block_fused_cell(hidden, "fused")
            outputs = tf.transpose(cell(tf.transpose(x, (1, 0, 2)), dtype=tf.float32)[0], (1, 0, 2))
        else:
            cell = tfm._lstm_cell(hidden) if kind == "LSTMCell" else tfm._lstm_block_cell(hidden)
            outputs = v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)[0]
        bindings = tfm._cell_bindings(cell, "l", in_size, weights)
    with v1.Session(graph=graph, config=tfm._session_config()) as session:
        tfm.load_weights(session, bindings)
        return session.run(outputs, {x: inputs})


@pytest.mark.parametrize("kind", CELL_IMPLEMENTATIONS)
def test_each_cell_computes_the_canonical_lstm_with_forget_bias_zero(kind):
    # Large forget-gate biases: with TF's default forget_bias=1.0 the outputs would differ clearly.
    in_size, hidden = 3, 4
    w_ih, w_hh, b_ih, b_hh = _canonical_layer(in_size, hidden, seed=1)
    b_ih[hidden:2 * hidden] -= 2.0
    weights = {"l.w_ih": w_ih, "l.w_hh": w_hh, "l.b_ih": b_ih, "l.b_hh": b_hh}
    inputs = np.random.RandomState(2).uniform(-1, 1, size=(2, 6, in_size)).astype(np.float32)
    outputs = _run_one_layer(kind, inputs, weights)
    for sample in range(inputs.shape[0]):
        expected, _ = reference.lstm_forward(inputs[sample].astype(np.float64), w_ih, w_hh, b_ih, b_hh)
        np.testing.assert_allclose(outputs[sample], expected, rtol=1e-5, atol=1e-6)


def test_every_cell_is_built_with_forget_bias_zero():
    assert tfm._lstm_cell(4)._forget_bias == 0.0
    assert tfm._lstm_block_cell(4)._forget_bias == 0.0
    assert tfm._lstm_block_fused_cell(4, "fused")._forget_bias == 0.0


def test_ctc_labels_are_shifted_below_tf_s_last_class_blank():
    targets = np.array([[3, 1, 5], [2, 2, 0]], dtype=np.int64)
    indices, values, shape = tfm._ctc_labels(targets, np.array([3, 2]))
    np.testing.assert_array_equal(indices, [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]])
    np.testing.assert_array_equal(values, [2, 0, 4, 1, 1])
    np.testing.assert_array_equal(shape, [2, 3])
    assert values.dtype == np.int32 and indices.dtype == np.int64


def test_ctc_loss_with_blank_zero_matches_the_reference():
    # Canonical logits (blank = class 0) for varied lengths and repeated labels, against the numpy CTC.
    classes, time = 6, 7
    rng = np.random.RandomState(3)
    logits = rng.normal(size=(time, 3, classes)).astype(np.float32)
    lengths = np.array([7, 6, 4])
    targets = np.array([[1, 4, 4], [5, 2, 0], [3, 0, 0]], dtype=np.int64)
    target_lengths = np.array([3, 2, 1])
    order = tfm.ctc_class_order(classes)
    np.testing.assert_array_equal(order, [1, 2, 3, 4, 5, 0])  # TF's last class is the canonical blank
    graph = tf.Graph()
    with graph.as_default():
        labels = v1.SparseTensor(*tfm._ctc_labels(targets, target_lengths))
        loss = tfm.ctc_loss(tf.constant(logits[:, :, order]), labels, tf.constant(lengths, tf.int32), 3)
    with v1.Session(graph=graph) as session:
        value = session.run(loss)
    expected = sum(reference.ctc_loss_and_grad(logits[:lengths[s], s].astype(np.float64),
                                               targets[s, :target_lengths[s]])[0] for s in range(3)) / 3
    assert value == pytest.approx(expected, rel=1e-5)


def test_ctc_head_is_stored_in_tf_class_order_and_its_gradient_mapped_back():
    spec = tiny_spec("4x320/CTC-long")
    weights = scenarios.init_weights(spec)
    graph = tf.Graph()
    with graph.as_default():
        head = v1.get_variable("head", weights["head.w"].shape)
        binding = tfm._head_binding(spec, head, weights)
    stored = binding.feed[binding.initial]
    np.testing.assert_array_equal(stored[-1], weights["head.w"][scenarios.BLANK])
    np.testing.assert_array_equal(stored[:-1], weights["head.w"][1:])
    np.testing.assert_array_equal(binding.canonical(stored)["head.w"], weights["head.w"])


def _cudnn_model(scenario):
    spec = tiny_spec(scenario)
    weights = scenarios.init_weights(spec)
    return spec, weights, tfm.build_model(spec, scenarios.make_batch(spec), weights,
                                          tfm._cudnn_core(spec, weights), True)


@pytest.mark.parametrize("scenario", ["1x320/CE-short", "4x320/CE-long"])
def test_cudnn_graph_maps_canonical_weights_both_ways(scenario):
    # The graph builds on any machine (only running it needs a GPU): one opaque kernel filled from
    # cuDNN's canonical weights, whose gradient comes back through the opaque-to-canonical conversion.
    spec, weights, model = _cudnn_model(scenario)
    opaque, head = model.bindings
    assert [b.variable.name for b in model.bindings] == ["cudnn_lstm/opaque_kernel:0", "head_w:0"]
    assert opaque.initial.op.type == "CudnnRNNCanonicalToParams"
    prefixes = scenarios.lstm_prefixes(spec)
    grad_weights, grad_biases = model.grads[0]
    assert len(grad_weights) == len(grad_biases) == 8 * len(prefixes)
    # The canonical arrays fed to the conversion are the canonical weights' gate blocks, in cuDNN's order
    # (layer, direction, then 4 input matrices, 4 recurrent matrices / 4 b_ih, 4 b_hh blocks) ...
    fed = [opaque.feed[p] for p in opaque.initial.op.inputs[3:]]
    matrices, vectors = fed[:8 * len(prefixes)], fed[8 * len(prefixes):]
    assert len(vectors) == 8 * len(prefixes)
    # ... and the gradient mapping reads that same order back into canonical names and shapes.
    flat = [m.reshape(-1) for m in matrices]  # the conversion may hand back flat matrices
    named = opaque.canonical((flat, vectors))
    assert list(named) == [name for name in weights if name != "head.w"]
    for name, value in named.items():
        np.testing.assert_array_equal(value, weights[name])


def test_cudnn_is_left_out_of_ctc_with_the_study_s_reason():
    spec = tiny_spec("4x320/CTC-long")
    with pytest.raises(NotImplementedError, match="left out of CTC.*sequence lengths"):
        common.build("tensorflow", "cuDNNLSTM", spec)


@pytest.mark.skipif(bool(tfm.gpu_name()), reason="this machine has a GPU")
@pytest.mark.parametrize("scenario", ["1x320/CE-short", "4x320/CE-long"])
def test_cudnn_is_skipped_with_its_reason_on_a_cpu(scenario):
    with pytest.raises(NotImplementedError, match="cuDNNLSTM needs a CUDA GPU"):
        common.build("tensorflow", "cuDNNLSTM", tiny_spec(scenario))


def test_configure_sets_the_session_thread_pools():
    # TensorFlow fixes its process-wide pools at the first session (here, perhaps an earlier test's or
    # Keras'); asv runs one benchmark per process, so check in a fresh process as asv would.
    code = ("from benchmarks.frameworks import tensorflow as t; n = t.configure(1); c = t._session_config(); "
            "print(n, c.intra_op_parallelism_threads, c.inter_op_parallelism_threads)")
    out = subprocess.check_output([sys.executable, "-c", code], cwd=ROOT, universal_newlines=True)
    assert out.split() == ["1", "1", "1"]


@pytest.mark.parametrize("implementation", CELL_IMPLEMENTATIONS)
def test_step_returns_a_python_float_and_each_workload_has_its_own_graph(implementation):
    spec = tiny_spec("1x320/CE-short")
    first = common.build("tensorflow", implementation, spec)
    second = common.build("tensorflow", implementation, spec)
    loss = first.step()
    assert type(loss) is float
    assert second.step() == loss  # the first workload's update did not touch the second's variables
    assert first.device.startswith("cpu") or first.device.startswith("gpu")


def test_implementations_agree_after_training(spec):
    workloads = [common.build("tensorflow", name, spec) for name in CELL_IMPLEMENTATIONS]
    trajectories = [[w.step() for _ in range(5)] for w in workloads]
    np.testing.assert_allclose(trajectories[1:], [trajectories[0]] * (len(workloads) - 1), rtol=1e-5)


def test_missing_tensorflow_is_a_skip_not_a_crash(monkeypatch):
    # What an environment without TensorFlow sees: asv can still import the module, setup skips.
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    try:
        module = importlib.reload(tfm)
        assert module.tf is None
        from benchmarks import bench_tensorflow
        bench = bench_tensorflow.TrainingStep()
        with pytest.raises(NotImplementedError, match="tensorflow is not installed"):
            bench.setup("1x320/CE-short", "LSTMCell")
    finally:
        monkeypatch.undo()
        importlib.reload(tfm)
