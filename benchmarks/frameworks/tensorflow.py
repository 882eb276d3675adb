"""TensorFlow implementations, each a short factory (spec, batch, weights) -> common.Workload.

Graph mode, one ``tf.Graph`` and one ``Session`` per workload, the host batch fed through ``feed_dict``
on every step, as the study did. Written for TF 1.13 to 1.15 with the ``tf.compat.v1`` spelling, so that
TF 2.x (through ``tf.compat.v1``) can be served by this same module later: a TF 2 extension adds entries
to ``IMPLEMENTATIONS`` and keeps these four names, so asv draws one line per implementation across
releases. The ``tf.contrib`` cells exist only in TF 1.x; without contrib their factories skip.

Implementations (the study's names):
  LSTMCell            tf.nn.rnn_cell.LSTMCell in dynamic_rnn (tf.while_loop over time)
  LSTMBlockCell       tf.contrib.rnn.LSTMBlockCell (one op per step) in dynamic_rnn
  LSTMBlockFusedCell  tf.contrib.rnn.LSTMBlockFusedCell (one op over all steps), time-major; the backward
                      direction through TimeReversedFusedRNN (reverse_sequence), layers stacked by the suite
  cuDNNLSTM           tf.contrib.cudnn_rnn.CudnnLSTM, time-major; GPU only, and CE only: the study left it
                      out of CTC because TF's CudnnLSTM took no sequence lengths (issue 6633)
TensorFlow 2 (eager; the step in one tf.function; in _tf2.py) adds what replaced contrib, under new names:
  BlockLSTM           tf.raw_ops.BlockLSTM, the op LSTMBlockFusedCell ran, which TF 2 keeps with its gradient
  while_loop          the cell in TensorFlow ops in a tf.while_loop over time
  while_loop+XLA      the same step compiled by XLA (jit_compile=True)
(TF 2 keeps the LSTMBlockCell op but not its gradient, so LSTMBlockCell has no TF 2 successor here;
Keras' LSTM, which tf.keras became, is the keras framework's.)
The two dynamic_rnn cells are stacked bidirectionally by tf.contrib.rnn.stack_bidirectional_dynamic_rnn
with ``sequence_length``, the study's helper for 4x320 (on TF 2.15, the last TF 2 with v1's cells and without
contrib, by the same stacking written out over v1's bidirectional_dynamic_rnn). Every cell is built with forget_bias=0.0, no
peepholes, no clipping, so it computes the canonical LSTM.

Weight layout: TF's cells keep one kernel ((input + hidden) x 4H, gates i, j(=cell), f, o) and one bias
(4H), i.e. the transpose of [w_ih | w_hh] with the canonical gate blocks (i, f, g, o) reordered and
b_ih + b_hh summed; the gradient of that one bias is reported for both b_ih and b_hh. CudnnLSTM keeps
an opaque buffer, converted from and to cuDNN's canonical weights (the canonical layout's per-gate
blocks, two biases) by TF's own conversion ops. For CTC the head's rows are kept in TF 1.x's class
order (blank last, where tf.nn.ctc_loss expects it; the suite's blank is class 0) and labels shift by one.
"""
import collections
import importlib
import os

import numpy as np

from .. import common, scenarios

# C++ INFO and WARNING lines (deprecations, CPU feature notes) would drown the benchmark log; ERROR stays.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    import tensorflow as tf
except ImportError as error:  # asv imports every module at discovery; require() turns this into a skip
    tf = None
    _IMPORT_ERROR = None if error.name == "tensorflow" else error  # absent, or a dependency is missing
except Exception as error:  # e.g. protobuf >= 4 under TF 1.x raises TypeError at import
    tf = None
    _IMPORT_ERROR = error
else:
    _IMPORT_ERROR = None
    v1 = tf.compat.v1
    # Python-side deprecation warnings (and contrib's TF 2.0 notice); errors are still logged.
    v1.logging.set_verbosity(v1.logging.ERROR)

LEARNING_RATE = 1e-3
GATES = ("w_ih", "w_hh", "b_ih", "b_hh")
# TF gate block k is canonical gate block TF_GATE_ORDER[k]: TF (i, j, f, o) from canonical (i, f, g, o).
# The permutation is its own inverse.
TF_GATE_ORDER = (0, 2, 1, 3)
CUDNN_CTC_REASON = ("cuDNNLSTM is left out of CTC, as in the study: TensorFlow's CudnnLSTM took no sequence "
                    "lengths (TF issue 6633), so it cannot honour each sample's length")

_threads = None       # set by configure(); None: TensorFlow's defaults
_pool_threads = None  # the count the process's thread pools were created with, once known
_gpu = None           # cached: name of the first GPU, or "" when there is none


def require():
    if tf is None:
        if _IMPORT_ERROR is not None:
            raise NotImplementedError("tensorflow is installed but failed to import here: {!r}".format(_IMPORT_ERROR))
        raise NotImplementedError("tensorflow is not installed in this environment")


def configure(threads):
    """Ask for ``threads`` intra-op and inter-op threads in the sessions created from now on; return
    the count they will use.

    TensorFlow 1.x sizes its process-wide thread pools once, from the first session's config (as the
    study ran it: default session options, global pools): after that first session the count cannot
    change in this process, and the one fixed then is returned. The harness configures before it
    builds, and asv runs one workload per process.
    """
    global _threads
    _threads = int(threads)
    if _tf2_reason() is None:  # eager TensorFlow 2: the same counts for its own runtime, before it starts
        try:
            tf.config.threading.set_intra_op_parallelism_threads(_threads)
            tf.config.threading.set_inter_op_parallelism_threads(_threads)
        except RuntimeError:  # the runtime has started: its pools are fixed
            pass
    return _pool_threads if _pool_threads is not None else _threads


def _session_config():
    config = v1.ConfigProto()
    if _threads is not None:
        config.intra_op_parallelism_threads = _threads
        config.inter_op_parallelism_threads = _threads
    config.gpu_options.allow_growth = True  # several workloads (tests) may share one GPU
    return config


def _pools_config():
    """The config of a session (or device list) about to be created: the first one sizes the pools."""
    global _pool_threads
    if _pool_threads is None and _threads is not None:
        _pool_threads = _threads
    return _session_config()


def gpu_name():
    """Name of the first visible GPU, or "" without one. Cached; listing devices on a CUDA build
    initialises CUDA, so it is called from factories only, never at import."""
    global _gpu
    if _gpu is None:
        _gpu = ""
        if tf.test.is_built_with_cuda():
            from tensorflow.python.client import device_lib

            for device in device_lib.list_local_devices(_pools_config()):
                if device.device_type == "GPU":
                    _gpu = device.physical_device_desc or device.name
                    break
    return _gpu


def _describe():
    if gpu_name():
        return "gpu ({})".format(gpu_name())
    threads = _pool_threads if _pool_threads is not None else _threads
    return "cpu ({} threads)".format(threads if threads is not None else "default")


def _contrib(what, package):
    """tensorflow.contrib.<package>, imported directly (tf.contrib's lazy loader of TF 1.13 prints a
    notice on stdout); a skip where contrib does not exist (TF 2.x)."""
    try:
        return importlib.import_module("tensorflow.contrib." + package)
    except ImportError:
        raise NotImplementedError("{} needs tf.contrib, which TensorFlow {} does not have".format(what, tf.__version__))


# Weight mapping between the canonical layout and TensorFlow's cells (numpy, both directions).

def _gate_blocks(array, hidden):
    return [array[k * hidden:(k + 1) * hidden] for k in range(4)]


def to_tf_kernel(w_ih, w_hh):
    """Canonical (4H x I) and (4H x H) -> TF cell kernel ((I + H) x 4H), gates i, j, f, o."""
    joined = np.concatenate([w_ih, w_hh], axis=1)
    blocks = _gate_blocks(joined, w_hh.shape[1])
    return np.ascontiguousarray(np.concatenate([blocks[k] for k in TF_GATE_ORDER], axis=0).T)


def to_tf_bias(b_ih, b_hh):
    blocks = _gate_blocks(b_ih + b_hh, b_ih.shape[0] // 4)
    return np.concatenate([blocks[k] for k in TF_GATE_ORDER])


def from_tf_kernel(kernel, input_size):
    """TF cell kernel ((I + H) x 4H) -> canonical (w_ih, w_hh)."""
    blocks = _gate_blocks(kernel.T, kernel.shape[1] // 4)
    joined = np.concatenate([blocks[k] for k in TF_GATE_ORDER], axis=0)
    return np.ascontiguousarray(joined[:, :input_size]), np.ascontiguousarray(joined[:, input_size:])


def from_tf_bias(bias):
    blocks = _gate_blocks(bias, bias.shape[0] // 4)
    return np.concatenate([blocks[k] for k in TF_GATE_ORDER])


# One framework variable and the canonical weights it holds:
#   variable:  the tf variable;
#   initial:   tensor of its initial value, computed from placeholders;
#   feed:      {placeholder: numpy array} to evaluate ``initial``;
#   gradient:  gradient tensor -> what to fetch (identity, or cuDNN's opaque-to-canonical conversion);
#   canonical: fetched numpy value -> {canonical name: gradient in the canonical layout}.
Binding = collections.namedtuple("Binding", "variable initial feed gradient canonical")


def _placeholder_for(value):
    return v1.placeholder(tf.as_dtype(value.dtype), value.shape)


def _plain_binding(variable, value, canonical):
    value = np.ascontiguousarray(value)
    placeholder = _placeholder_for(value)
    return Binding(variable, placeholder, {placeholder: value}, lambda grad: grad, canonical)


def _cell_bindings(cell, prefix, in_size, weights):
    """Bindings of a TF cell's kernel and bias (built already) to one layer and direction's weights."""
    kernels = [v for v in cell.trainable_weights if v.shape.ndims == 2]
    biases = [v for v in cell.trainable_weights if v.shape.ndims == 1]
    if len(kernels) != 1 or len(biases) != 1 or len(cell.trainable_weights) != 2:
        raise RuntimeError("{}: expected one kernel and one bias, found {}".format(
            prefix, [v.name for v in cell.trainable_weights]))
    names = [prefix + "." + gate for gate in GATES]

    def kernel_grads(grad):
        return collections.OrderedDict(zip(names[:2], from_tf_kernel(grad, in_size)))

    def bias_grads(grad):
        grad = from_tf_bias(grad)
        return collections.OrderedDict([(names[2], grad), (names[3], grad.copy())])

    return [
        _plain_binding(kernels[0], to_tf_kernel(weights[names[0]], weights[names[1]]), kernel_grads),
        _plain_binding(biases[0], to_tf_bias(weights[names[2]], weights[names[3]]), bias_grads),
    ]


# Model assembly: recurrent core -> head -> loss -> Adam, in one graph, then the session workload.

# A built graph before its session: the tensors the workload feeds and fetches.
# backward: a tensor that needs every gradient (one element of each), fetched in the forward+backward phase;
# device_peak: the GPU allocator's peak bytes in use (None on a CPU).
Model = collections.namedtuple("Model", "graph feed train_op loss grads backward device_peak bindings")


# CTC classes. The suite's blank is class 0 and its labels 1..C-1; TF 1.x's ctc_loss reserves the LAST
# class, C-1, for the blank. TF class j is canonical class (j + 1) % C: labels shift down by one and the
# blank moves last. The head's rows are stored in TF's class order (a weight layout, mapped once, so the
# step computes TF-ordered logits directly, as the study's graph did); its gradient is mapped back.

def ctc_class_order(classes):
    """Canonical class of each TF class: TF row j of the head is canonical row order[j]."""
    assert scenarios.BLANK == 0
    return (np.arange(classes) + 1) % classes


def _ctc_labels(targets, target_lengths):
    """Padded canonical CTC targets -> (indices, values, dense_shape) of TF's sparse labels, in TF's class
    numbering (canonical label c is TF class c - 1)."""
    indices = [(sample, position) for sample, length in enumerate(target_lengths) for position in range(length)]
    indices = np.array(indices, dtype=np.int64).reshape(-1, 2)
    values = (targets[indices[:, 0], indices[:, 1]] - 1).astype(np.int32)
    return indices, values, np.array([targets.shape[0], int(max(target_lengths))], dtype=np.int64)


def ctc_loss(logits, labels, lengths, batch_size):
    """Time-major logits in TF's class order -> the suite's CTC loss: summed over samples, divided by
    the batch."""
    losses = v1.nn.ctc_loss(labels=labels, inputs=logits, sequence_length=lengths, time_major=True)
    return tf.reduce_sum(losses) / batch_size


def _head_binding(spec, head, weights):
    if spec.loss == "ce":
        return _plain_binding(head, weights["head.w"], lambda grad: {"head.w": grad})
    order = ctc_class_order(spec.classes)

    def canonical(grad):
        back = np.empty_like(grad)
        back[order] = grad
        return {"head.w": back}

    return _plain_binding(head, weights["head.w"][order], canonical)


def build_model(spec, batch, weights, recurrent, time_major):
    """Build the whole graph around a recurrent core.

    recurrent(x, lengths) -> (outputs, bindings): x the input placeholder (time-major if ``time_major``,
    else batch-major), lengths an int32 placeholder; outputs the top layer's (hidden * directions)
    outputs in the same layout; bindings the core's variables (the head is added here).
    """
    graph = tf.Graph()
    with graph.as_default():
        shape = [None, None, spec.features]
        x = v1.placeholder(tf.float32, shape, name="inputs")
        lengths = v1.placeholder(tf.int32, [None], name="input_lengths")
        outputs, bindings = recurrent(x, lengths)
        head = v1.get_variable("head_w", weights["head.w"].shape, tf.float32, v1.zeros_initializer())
        bindings = list(bindings) + [_head_binding(spec, head, weights)]
        # Host-side layout, prepared once, as the study did: its layout, int32 lengths.
        host_inputs = batch.inputs.transpose(1, 0, 2) if time_major else batch.inputs
        feed = {x: np.ascontiguousarray(host_inputs), lengths: batch.input_lengths.astype(np.int32)}
        if spec.loss == "ce":
            targets = v1.placeholder(tf.int64, [None], name="targets")
            feed[targets] = batch.targets
            last = outputs[-1] if time_major else outputs[:, -1]
            logits = tf.matmul(last, head, transpose_b=True)
            loss = tf.reduce_mean(v1.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits))
        else:
            labels = v1.sparse_placeholder(tf.int32, name="targets")
            feed[labels] = v1.SparseTensorValue(*_ctc_labels(batch.targets, batch.target_lengths))
            width = spec.hidden * len(scenarios.directions(spec))
            logits = tf.matmul(tf.reshape(outputs, [-1, width]), head, transpose_b=True)
            logits = tf.reshape(logits, tf.concat([tf.shape(outputs)[:2], [spec.classes]], axis=0))
            if not time_major:
                logits = tf.transpose(logits, (1, 0, 2))
            loss = ctc_loss(logits, labels, lengths, spec.batch)
        optimizer = v1.train.AdamOptimizer(learning_rate=LEARNING_RATE)
        variables = [b.variable for b in bindings]
        grads_and_vars = optimizer.compute_gradients(loss, var_list=variables)
        train_op = optimizer.apply_gradients(grads_and_vars)
        grads = [b.gradient(g) for b, (g, _) in zip(bindings, grads_and_vars)]
        # One element of every gradient, fetched: a tf.group of the gradients would let grappler prune those
        # with no other consumer (it did for LSTMBlockFusedCell's), and fetching them whole adds a copy.
        backward = tf.stack([tf.reshape(g, [-1])[0] for g, _ in grads_and_vars])
        device_peak = _max_bytes_in_use() if gpu_name() else None
    return Model(graph, feed, train_op, loss, grads, backward, device_peak, bindings)


def _max_bytes_in_use():
    """The GPU allocator's peak, from tf.contrib.memory_stats (TF 1.x); None where it is missing."""
    try:
        return _contrib("device peak memory", "memory_stats").MaxBytesInUse()
    except NotImplementedError:
        return None


def load_weights(session, bindings):
    """Initialise every variable of the session's graph, then load the canonical weights."""
    with session.graph.as_default():
        init = v1.global_variables_initializer()
        loads, feed = [], {}
        for b in bindings:
            loads.append(v1.assign(b.variable, b.initial, validate_shape=b.variable.shape.is_fully_defined()))
            feed.update(b.feed)
    session.run(init)
    session.run(loads, feed)


def session_workload(model):
    """Start the model's session, load the canonical weights, and return the timed workload."""
    session = v1.Session(graph=model.graph, config=_pools_config())
    load_weights(session, model.bindings)
    model.graph.finalize()  # step() adds nothing to the graph
    fetch = [model.train_op, model.loss]

    def step():
        _, loss = session.run(fetch, model.feed)
        return float(loss)

    def loss_and_grads():
        loss, grads = session.run([model.loss, model.grads], model.feed)
        named = collections.OrderedDict()
        for binding, grad in zip(model.bindings, grads):
            named.update(binding.canonical(grad))
        return float(loss), named

    def forward():
        return float(session.run(model.loss, model.feed))

    def forward_backward():
        _, loss = session.run([model.backward, model.loss], model.feed)
        return float(loss)

    def device_peak_bytes():
        return None if model.device_peak is None else int(session.run(model.device_peak))

    return common.Workload(step, loss_and_grads, _describe(), forward=forward, forward_backward=forward_backward,
                           device_peak_bytes=device_peak_bytes)


def matmul(size):
    """One float32 (size x size) product in a session on the suite's device and thread pools: the peak
    reference. The operands are variables, so that no graph optimisation folds the product away."""
    graph = tf.Graph()
    with graph.as_default():
        a, b, out = (v1.get_variable(name, [size, size], tf.float32, v1.random_uniform_initializer())
                     for name in ("a", "b", "out"))
        # Into a variable: a product nothing consumes is pruned by grappler (it measured nothing).
        product = tf.group(v1.assign(out, tf.matmul(a, b)))
        init = v1.global_variables_initializer()
    session = v1.Session(graph=graph, config=_pools_config())
    session.run(init)
    graph.finalize()
    return lambda: session.run(product)


# Recurrent cores.

def _stack_bidirectional(fwd, bwd, x, lengths):
    """The top layer's outputs of stacked bidirectional dynamic_rnn layers: tf.contrib.rnn's
    stack_bidirectional_dynamic_rnn (the study's helper) where contrib exists; in TF 2, which dropped contrib
    but keeps v1's bidirectional_dynamic_rnn, the same stacking written out as that helper does it (each layer's
    two directions over the previous layer's concatenated outputs)."""
    try:
        contrib_rnn = importlib.import_module("tensorflow.contrib.rnn")
    except ImportError:
        contrib_rnn = None
    if contrib_rnn is not None:
        return contrib_rnn.stack_bidirectional_dynamic_rnn(fwd, bwd, x, sequence_length=lengths, dtype=tf.float32)[0]
    for layer, (cell_fw, cell_bw) in enumerate(zip(fwd, bwd)):
        with v1.variable_scope("stack_bidirectional_rnn/cell_{}".format(layer)):
            (out_fw, out_bw), _ = v1.nn.bidirectional_dynamic_rnn(cell_fw, cell_bw, x, sequence_length=lengths,
                                                                  dtype=tf.float32)
        x = tf.concat([out_fw, out_bw], axis=2)
    return x


def _dynamic_rnn_core(spec, weights, make_cell):
    """recurrent() for per-step cells in dynamic_rnn (batch-major, as the study fed them)."""

    def recurrent(x, lengths):
        prefixes = scenarios.lstm_prefixes(spec)
        cells = collections.OrderedDict((prefix, make_cell(spec.hidden)) for prefix, _, _, _ in prefixes)
        if spec.bidirectional:
            fwd = [cells[p] for p, _, direction, _ in prefixes if direction == "fwd"]
            bwd = [cells[p] for p, _, direction, _ in prefixes if direction == "bwd"]
            outputs = _stack_bidirectional(fwd, bwd, x, lengths)
        else:
            cell = cells[prefixes[0][0]] if spec.layers == 1 else v1.nn.rnn_cell.MultiRNNCell(list(cells.values()))
            outputs, _ = v1.nn.dynamic_rnn(cell, x, sequence_length=lengths, dtype=tf.float32)
        bindings = []
        for prefix, _, _, in_size in prefixes:
            bindings += _cell_bindings(cells[prefix], prefix, in_size, weights)
        return outputs, bindings

    return recurrent


def _fused_core(spec, weights):
    """recurrent() for LSTMBlockFusedCell: time-major, layers and directions stacked by the suite."""
    rnn = _contrib("LSTMBlockFusedCell", "rnn")

    def recurrent(x, lengths):
        bindings = []
        for layer in range(spec.layers):
            outputs = []
            for prefix, layer_, direction, in_size in scenarios.lstm_prefixes(spec):
                if layer_ != layer:
                    continue
                cell = _lstm_block_fused_cell(spec.hidden, prefix.replace(".", "_"))
                runner = cell if direction == "fwd" else rnn.TimeReversedFusedRNN(cell)
                outputs.append(runner(x, sequence_length=lengths, dtype=tf.float32)[0])
                bindings += _cell_bindings(cell, prefix, in_size, weights)
            x = tf.concat(outputs, axis=2) if len(outputs) > 1 else outputs[0]
        return x, bindings

    return recurrent


def _cudnn_core(spec, weights):
    """recurrent() for CudnnLSTM: time-major, its own stacked bidirectional layers, opaque weights."""
    cudnn_rnn = _contrib("CudnnLSTM", "cudnn_rnn")
    cudnn_rnn_ops = _contrib("CudnnLSTM", "cudnn_rnn.python.ops.cudnn_rnn_ops")

    direction = "bidirectional" if spec.bidirectional else "unidirectional"
    prefixes = scenarios.lstm_prefixes(spec)  # layer-major, fwd before bwd: cuDNN's canonical order too
    options = dict(rnn_mode="lstm", num_layers=spec.layers, num_units=spec.hidden, input_size=spec.features,
                   direction=direction)

    def recurrent(x, lengths):
        lstm = cudnn_rnn.CudnnLSTM(spec.layers, spec.hidden, direction=direction)
        outputs, _ = lstm(x)
        # cuDNN canonical weights per layer and direction: 4 input matrices (H x in) then 4 recurrent
        # (H x H), gates i, f, c, o (the canonical order), then 8 biases (4 for b_ih, 4 for b_hh).
        matrices, vectors = [], []
        for prefix, _, _, _ in prefixes:
            for name in ("w_ih", "w_hh"):
                matrices += _gate_blocks(weights[prefix + "." + name], spec.hidden)
            for name in ("b_ih", "b_hh"):
                vectors += _gate_blocks(weights[prefix + "." + name], spec.hidden)
        matrices = [np.ascontiguousarray(m) for m in matrices]
        vectors = [np.ascontiguousarray(v) for v in vectors]
        placeholders = [_placeholder_for(a) for a in matrices + vectors]
        initial = cudnn_rnn_ops.cudnn_rnn_canonical_to_opaque_params(
            weights=placeholders[:len(matrices)], biases=placeholders[len(matrices):], **options)

        def gradient(grad):
            return cudnn_rnn_ops.cudnn_rnn_opaque_params_to_canonical(params=grad, **options)

        def canonical(fetched):
            grad_matrices, grad_vectors = fetched
            named = collections.OrderedDict()
            for index, (prefix, _, _, in_size) in enumerate(prefixes):
                w = [np.reshape(m, (spec.hidden, -1)) for m in grad_matrices[8 * index:8 * index + 8]]
                b = list(grad_vectors[8 * index:8 * index + 8])
                named[prefix + ".w_ih"] = np.concatenate(w[:4], axis=0)
                named[prefix + ".w_hh"] = np.concatenate(w[4:], axis=0)
                named[prefix + ".b_ih"] = np.concatenate(b[:4])
                named[prefix + ".b_hh"] = np.concatenate(b[4:])
            return named

        (kernel,) = lstm.trainable_weights
        return outputs, [Binding(kernel, initial, dict(zip(placeholders, matrices + vectors)), gradient, canonical)]

    return recurrent


# The factories.

def _lstm_cell(hidden):
    return v1.nn.rnn_cell.LSTMCell(hidden, forget_bias=0.0)


def _lstm_block_cell(hidden):
    return _contrib("LSTMBlockCell", "rnn").LSTMBlockCell(hidden, forget_bias=0.0)


def _lstm_block_fused_cell(hidden, name):
    return _contrib("LSTMBlockFusedCell", "rnn").LSTMBlockFusedCell(hidden, forget_bias=0.0, name=name)


def lstm_cell(spec, batch, weights):
    """The study's LSTMCell: tf.nn.rnn_cell.LSTMCell in dynamic_rnn."""
    try:
        v1.nn.rnn_cell.LSTMCell
    except AttributeError as error:  # TF 2.16+ with Keras 3: the v1 cells lived in Keras 2
        raise NotImplementedError("LSTMCell needs tf.compat.v1.nn.rnn_cell, which TensorFlow {} does not have "
                                  "with Keras 3 ({}); its TF 2 successor is while_loop".format(tf.__version__, error))
    return session_workload(build_model(spec, batch, weights, _dynamic_rnn_core(spec, weights, _lstm_cell), False))


def lstm_block_cell(spec, batch, weights):
    """The study's LSTMBlockCell: contrib's one-op-per-step cell in dynamic_rnn."""
    _contrib("LSTMBlockCell", "rnn")
    core = _dynamic_rnn_core(spec, weights, _lstm_block_cell)
    return session_workload(build_model(spec, batch, weights, core, False))


def lstm_block_fused_cell(spec, batch, weights):
    """The study's LSTMBlockFusedCell: one op over all time steps."""
    return session_workload(build_model(spec, batch, weights, _fused_core(spec, weights), True))


def cudnn_lstm(spec, batch, weights):
    """The study's cuDNNLSTM: contrib's CudnnLSTM on cuDNN (GPU only, CE only)."""
    if spec.loss == "ctc":
        raise NotImplementedError(CUDNN_CTC_REASON)
    _contrib("CudnnLSTM", "cudnn_rnn")
    if not gpu_name():
        raise NotImplementedError("cuDNNLSTM needs a CUDA GPU (CudnnLSTM has no CPU kernel); this machine has none")
    return session_workload(build_model(spec, batch, weights, _cudnn_core(spec, weights), True))


def _tf2_reason():
    """Why the TensorFlow 2 implementations cannot run here, or None."""
    if int(tf.__version__.split(".")[0]) < 2:
        return "needs TensorFlow 2 (eager execution with tf.function); this is TensorFlow {}".format(tf.__version__)
    return None


def _tf2(name):
    reason = _tf2_reason()
    if reason is not None:
        raise NotImplementedError("{} {}".format(name, reason))
    from . import _tf2

    return _tf2


def block_lstm(spec, batch, weights):
    """TF 2's BlockLSTM op (what LSTMBlockFusedCell ran) in a tf.function step."""
    tf2 = _tf2("BlockLSTM")
    params = tf2.block_lstm_params(spec, weights, to_tf_kernel, to_tf_bias)

    def to_canonical(prefix, grads):
        w_ih, w_hh = from_tf_kernel(grads["kernel"], grads["kernel"].shape[0] - spec.hidden)
        bias = from_tf_bias(grads["bias"])
        return collections.OrderedDict([(prefix + ".w_ih", w_ih), (prefix + ".w_hh", w_hh),
                                        (prefix + ".b_ih", bias), (prefix + ".b_hh", bias.copy())])

    recurrent = tf2.stacked(spec, tf2.block_lstm_direction(spec))
    return tf2.workload(spec, batch, weights, params, recurrent, to_canonical, _describe())


def _while_loop(spec, batch, weights, jit_compile):
    tf2 = _tf2("while_loop" + ("+XLA" if jit_compile else ""))
    params = tf2.canonical_params(spec, weights)

    def to_canonical(prefix, grads):
        return collections.OrderedDict((prefix + "." + gate, grad) for gate, grad in grads.items())

    recurrent = tf2.stacked(spec, tf2.while_loop_direction(spec))
    return tf2.workload(spec, batch, weights, params, recurrent, to_canonical, _describe(), jit_compile=jit_compile)


def while_loop(spec, batch, weights):
    """The cell in TensorFlow ops in a tf.while_loop, in a tf.function step."""
    return _while_loop(spec, batch, weights, jit_compile=False)


def while_loop_xla(spec, batch, weights):
    """The while_loop step compiled by XLA."""
    return _while_loop(spec, batch, weights, jit_compile=True)


IMPLEMENTATIONS = collections.OrderedDict([
    ("LSTMCell", lstm_cell),
    ("LSTMBlockCell", lstm_block_cell),
    ("LSTMBlockFusedCell", lstm_block_fused_cell),
    ("cuDNNLSTM", cudnn_lstm),
    ("BlockLSTM", block_lstm),
    ("while_loop", while_loop),
    ("while_loop+XLA", while_loop_xla),
])
