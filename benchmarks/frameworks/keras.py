"""Keras implementations, each a short factory (spec, batch, weights) -> common.Workload, for multi-backend
Keras 2 (2.1.6 to 2.3.1, on TensorFlow 1.x or Theano), tf.keras (Keras 2.4 to 2.15, TensorFlow 2 only: the
same model, trained by the same train_on_batch, its phases through GradientTape) and Keras 3 (on
TensorFlow, JAX or PyTorch: the model and steps live in _keras3.py). The backend is chosen by KERAS_BACKEND (the asv matrix sets it; unset
means tensorflow, pinned in this process so that a stray ~/.keras/keras.json cannot pick another one).
One module for both, so that each benchmark name follows Keras from 2.1.6 to 3.x.

Implementations (the study's name in brackets):
  LSTM       keras.layers.LSTM, Keras' own scan / while_loop over time, trained with train_on_batch [LSTM]
  CuDNNLSTM  keras.layers.CuDNNLSTM [cuDNNLSTM]; TensorFlow backend on a GPU only, fixed lengths only.
             Keras 3: LSTM(use_cudnn=True), on a GPU with the TensorFlow or PyTorch backend
  LSTM+custom-step  Keras 3 only: the same model trained by the step written by hand for the backend
             (tf.function + GradientTape, jax.jit + stateless_call, torch autograd), as Keras 3's guides teach

The model is what a Keras user writes: stacked LSTM layers (Bidirectional(..., merge_mode="concat")
returning sequences for 4x320), a Dense head without bias, compiled with Adam(lr=1e-3) and trained with
``model.train_on_batch`` as the study's Keras scripts did. ``train_on_batch`` compiles its training
function on first use; the factory compiles it up front (Theano compiles take minutes), so ``step()`` only
runs it. Mapping to the canonical weights: Keras keeps the gate order i, f, c, o; kernels are transposed
(kernel = w_ih.T, recurrent_kernel = w_hh.T); LSTM has one bias (b_ih + b_hh, whose gradient is reported
for both), CuDNNLSTM two (concatenated); LSTM's default hard_sigmoid gates are replaced by sigmoid.

Cross-entropy: softmax head on the last step (for 4x320 the top bidirectional layer returns sequences and
the last step is sliced, i.e. [forward, backward] outputs at T-1), loss "sparse_categorical_crossentropy".

CTC: variable lengths are masked from ``input_lengths`` (an explicit length mask, not Masking: padding
values are arbitrary); Keras' masked Bidirectional then runs its backward direction over the reversed
padded sequence with the padding first, skipped by the mask, which is exactly each sample reversed
within its own length. The per-sample loss is computed in a layer (Keras' image_ocr pattern, loss =
identity on that output) averaged by Keras over the batch: sum / batch.
  TensorFlow backend: ``keras.backend.ctc_batch_cost`` (tf.nn.ctc_loss on log(softmax + K.epsilon())).
      Its blank is the LAST class: the head's output columns are permuted (canonical class 0 -> last,
      class k -> k - 1) and the labels shifted by -1, both once in the factory, mapped back for gradients.
  Theano backend: Keras' Theano ``ctc_batch_cost`` computes another function (per-frame probabilities
      smoothed as (1 - 1e-4) p + 1e-4 / (2 L + 1), and a total over all frames that adds -log(input
      length) to each sample's loss), so it cannot match the suite's CTC. Theano's own CTC op
      (theano.tensor.nnet.ctc, warp-ctc, blank 0 as here, the study's CTC for Theano) is used instead.
"""
import collections
import os

import numpy as np

from .. import common, scenarios

BACKEND_VAR = "KERAS_BACKEND"
LEARNING_RATE = 1e-3
# Keras' own defaults, pinned so that a keras.json elsewhere on the machine cannot change the function.
FLOATX = "float32"
EPSILON = 1e-7

_backend_name = os.environ.get(BACKEND_VAR, "tensorflow")
os.environ[BACKEND_VAR] = _backend_name
_import_error = None
_theano = None
try:
    if _backend_name == "theano":
        from . import _theano  # sets THEANO_FLAGS (compile dir, BLAS, floatX) before anything imports theano

        _theano.import_theano()
    import keras

    VERSION = keras.__version__  # the package's: tf.keras (taken below for Keras 2.4 to 2.15) may have none
    KERAS3 = int(VERSION.split(".")[0]) >= 3
    # Keras 2.4 to 2.15 are tf.keras: eager TensorFlow 2, no sessions, no graph-mode K.function.
    TF_KERAS = not KERAS3 and tuple(int(part) for part in VERSION.split(".")[:2]) >= (2, 4)
    if KERAS3:
        from . import _keras3
        K = None
    else:
        if TF_KERAS:
            # tf.keras is the package's public API (from 2.6 on its top-level modules are internal ones:
            # keras.optimizers has no Adam there); the package's version was read above.
            import tensorflow as tf

            keras = tf.keras
        K = keras.backend
except Exception as error:  # noqa: B902 - asv imports every module at discovery: never fail the import
    # ImportError / NotImplementedError: keras or its backend is missing; ValueError: Keras does not know
    # the backend's name; RuntimeError: theano was imported before _theano could set its flags.
    keras = K = VERSION = None
    KERAS3 = TF_KERAS = False
    _import_error = "{}: {}".format(type(error).__name__, error)

if keras is not None and not KERAS3:
    K.set_floatx(FLOATX)
    K.set_epsilon(EPSILON)

    class LengthMask(keras.layers.Layer):
        """Passes sequences through and masks every step at or past each sample's length.

        Inputs: [sequences (batch, time, features), lengths (batch, 1)]. Unlike Masking, it does not
        guess the padding from the values, so whatever the padding holds is never read.
        """

        def __init__(self, time, **kwargs):
            super(LengthMask, self).__init__(**kwargs)
            self.time = time
            self.supports_masking = True

        def call(self, inputs, mask=None):
            return inputs[0]

        def compute_output_shape(self, input_shape):
            return input_shape[0]

        def compute_mask(self, inputs, mask=None):
            steps = K.constant(np.arange(self.time, dtype=np.float32)[None, :])
            lengths = K.expand_dims(K.flatten(K.cast(inputs[1], FLOATX)), 1)  # broadcastable for Theano
            return K.less(steps, lengths)

    class CTCCost(keras.layers.Layer):
        """Per-sample CTC negative log-likelihood (batch, 1) of head logits, on the backend's CTC.

        Inputs: [logits (batch, time, classes), labels (batch, labels), input lengths (batch, 1),
        label lengths (batch, 1)]. The logits' time mask is consumed here: the loss reads each
        sample's frames up to its length only.
        """

        def __init__(self, **kwargs):
            super(CTCCost, self).__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            logits, labels, input_lengths, label_lengths = inputs
            if K.backend() == "theano":
                from theano.tensor.nnet import ctc as theano_ctc

                # warp-ctc: activations time-major, softmax inside, blank 0, labels padded with -1.
                cost = theano_ctc.ctc(logits.dimshuffle(1, 0, 2), labels, K.flatten(input_lengths))
                return K.expand_dims(cost, 1)
            return K.ctc_batch_cost(labels, K.softmax(logits), input_lengths, label_lengths)

        def compute_output_shape(self, input_shape):
            return (input_shape[0][0], 1)

        def compute_mask(self, inputs, mask=None):
            return None


def require():
    if keras is None:
        raise NotImplementedError("keras is not installed in this environment ({}={}: {})".format(
            BACKEND_VAR, _backend_name, _import_error))


_session = {}  # TensorFlow: the session configure() gave Keras, and its thread count


def configure(threads):
    """Pin the backend's thread pools; return the count in use. TensorFlow: Keras gets a session with
    intra/inter-op pools of ``threads``, replaced only when the count or the default graph changed
    (models built earlier live in the current session). Theano: the BLAS pool, through _theano. Keras 3:
    the backend's own pools (_keras3.configure)."""
    require()
    if KERAS3:
        _session["threads"] = _keras3.configure(threads)
        return _session["threads"]
    if K.backend() == "theano":
        return _theano.configure(threads)
    if TF_KERAS:  # TensorFlow 2's own pools, as the tensorflow framework module sets them
        from . import tensorflow as tensorflow_framework

        _session["threads"] = tensorflow_framework.configure(threads)
        return _session["threads"]
    import tensorflow as tf

    tf1 = getattr(getattr(tf, "compat", None), "v1", tf)  # tf.compat.v1 from 1.13 on: no deprecation noise
    current = _session.get("session")
    if current is None or _session["threads"] != threads or current.graph is not tf1.get_default_graph():
        config = tf1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
        _session.update(session=tf1.Session(config=config), threads=threads)
        K.set_session(_session["session"])
    return threads


def _gpu_names():
    from tensorflow.python.client import device_lib

    return [d.physical_device_desc or d.name for d in device_lib.list_local_devices() if d.device_type == "GPU"]


def _describe(cudnn):
    if cudnn or (TF_KERAS and _gpu_names()):  # tf.keras places the model on the GPU by itself
        return "cuda ({}; keras {} on tensorflow)".format(_gpu_names()[0], VERSION)
    if K.backend() == "theano":
        import theano

        return "cpu (keras {} on theano {}, {} BLAS threads)".format(
            VERSION, theano.__version__, _theano.threads_in_use())
    threads = _session.get("threads", "default")
    return "cpu (keras {} on tensorflow, {} threads)".format(VERSION, threads)


def blank_last():
    """Whether the backend's CTC wants the blank as the last class (Keras' TensorFlow CTC) rather than 0."""
    return not KERAS3 and K.backend() == "tensorflow"  # keras.ops.ctc_loss takes the blank's index


def head_order(spec):
    """Canonical class of each head output column: identity, or for CTC with the blank last the
    canonical blank 0 moved to the end (column j holds class j + 1)."""
    order = np.arange(spec.classes)
    if spec.loss == "ctc" and blank_last():
        order = np.roll(order, -1)
    return order


def ctc_labels(spec, batch):
    """Labels as the backend's CTC reads them (int32): shifted by -1 for a last-class blank, padded with
    -1 past each sample's label length (warp-ctc skips negative labels; Keras' CTC reads the lengths)."""
    labels = batch.targets.astype(np.int32) - (1 if blank_last() else 0)
    for sample, length in enumerate(batch.target_lengths):
        labels[sample, length:] = -1
    return labels


def to_keras(prefix, weights, cudnn):
    """Canonical arrays of one layer and direction -> [kernel, recurrent_kernel, bias] of a Keras layer."""
    w_ih, w_hh, b_ih, b_hh = (weights[prefix + "." + g] for g in ("w_ih", "w_hh", "b_ih", "b_hh"))
    bias = np.concatenate([b_ih, b_hh]) if cudnn else b_ih + b_hh
    return [np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), bias.astype(np.float32)]


def from_keras(prefix, grads, cudnn):
    """Gradients of [kernel, recurrent_kernel, bias] -> canonical names (one bias's gradient for both)."""
    d_kernel, d_recurrent, d_bias = grads
    h4 = d_kernel.shape[1]
    d_b_ih, d_b_hh = (d_bias[:h4], d_bias[h4:]) if cudnn else (d_bias, d_bias.copy())
    return {prefix + ".w_ih": d_kernel.T, prefix + ".w_hh": d_recurrent.T,
            prefix + ".b_ih": d_b_ih, prefix + ".b_hh": d_b_hh}


def _model(spec, cudnn):
    """The Keras model, its compiled loss, and (canonical prefix, layer) of every recurrent layer."""
    layers = keras.layers
    sequences = layers.Input(shape=(spec.time, spec.features), name="inputs")
    inputs = [sequences]
    x = sequences
    if spec.loss == "ctc":
        input_lengths = layers.Input(shape=(1,), dtype="int32", name="input_lengths")
        inputs.append(input_lengths)
        x = LengthMask(spec.time, name="length_mask")([x, input_lengths])
    recurrent = []
    for layer in range(spec.layers):
        top = layer == spec.layers - 1
        # The top layer returns only its last step where that is the last step's output; a bidirectional
        # top returns sequences and is sliced below (its backward final state is not the output at T-1).
        return_sequences = not top or spec.loss == "ctc" or spec.bidirectional
        if cudnn:
            rnn = layers.CuDNNLSTM(spec.hidden, return_sequences=return_sequences)
        else:
            rnn = layers.LSTM(spec.hidden, recurrent_activation="sigmoid", return_sequences=return_sequences)
        if spec.bidirectional:
            wrapper = layers.Bidirectional(rnn, merge_mode="concat")
            x = wrapper(x)
            recurrent.append(("lstm.l{}.fwd".format(layer), wrapper.forward_layer))
            recurrent.append(("lstm.l{}.bwd".format(layer), wrapper.backward_layer))
        else:
            x = rnn(x)
            recurrent.append(("lstm.l{}.fwd".format(layer), rnn))
    out_size = spec.hidden * len(scenarios.directions(spec))
    if spec.loss == "ce":
        if spec.bidirectional:
            x = layers.Lambda(lambda s: s[:, -1, :], output_shape=(out_size,), name="last_step")(x)
        head = layers.Dense(spec.classes, use_bias=False, activation="softmax", name="head")
        outputs = head(x)
        loss = "sparse_categorical_crossentropy"
    else:
        head = layers.Dense(spec.classes, use_bias=False, name="head")  # logits; the CTC applies the softmax
        labels = layers.Input(shape=(spec.labels,), dtype="int32", name="labels")
        label_lengths = layers.Input(shape=(1,), dtype="int32", name="label_lengths")
        inputs += [labels, label_lengths]
        outputs = CTCCost(name="ctc")([head(x), labels, input_lengths, label_lengths])
        loss = lambda y_true, y_pred: y_pred  # noqa: E731 - the per-sample CTC cost is the loss
    model = keras.models.Model(inputs=inputs, outputs=outputs)
    # Keras 2.1.6 knows only ``lr``; tf.keras' newer optimizers (2.11 on) only ``learning_rate``.
    adam = keras.optimizers.Adam(learning_rate=LEARNING_RATE) if TF_KERAS else keras.optimizers.Adam(lr=LEARNING_RATE)
    model.compile(optimizer=adam, loss=loss)
    return model, recurrent, head


def _build(spec, batch, weights, cudnn):
    if spec.loss == "ctc" and K.backend() == "theano":
        reason = _theano.ctc_unavailable_reason()
        if reason is not None:
            raise NotImplementedError("Keras on Theano uses Theano's CTC op: " + reason)
    model, recurrent, head = _model(spec, cudnn)
    order = head_order(spec)
    assignments = []
    for prefix, layer in recurrent:
        assignments += list(zip(layer.trainable_weights, to_keras(prefix, weights, cudnn)))
    assignments.append((head.kernel, np.ascontiguousarray(weights["head.w"][order].T)))
    for variable, value in assignments:
        if K.int_shape(variable) != value.shape:
            raise AssertionError("{}: Keras shape {} != mapped shape {}".format(
                variable.name, K.int_shape(variable), value.shape))
    K.batch_set_value(assignments)

    # Host arrays, prepared once as the study prepared its batch; train_on_batch feeds them each step.
    if spec.loss == "ce":
        x, y = batch.inputs, batch.targets.reshape(-1, 1).astype(np.float32)
    else:
        x = [batch.inputs, batch.input_lengths.reshape(-1, 1).astype(np.int32), ctc_labels(spec, batch),
             batch.target_lengths.reshape(-1, 1).astype(np.int32)]
        y = np.zeros((spec.batch, 1), dtype=np.float32)  # unused: the loss is the CTC layer's output
    variables = [v for v, _ in assignments]

    def step():
        return float(model.train_on_batch(x, y))

    if TF_KERAS:
        run_phase = _tf_keras_phases(model, variables, x, y)
    else:
        model._make_train_function()  # what train_on_batch compiles on first use: built here, not in step()
        run_phase = _graph_phases(model, variables, x, y)

    def loss_and_grads():
        values = run_phase(with_grads=True)
        loss, grads = float(values[0]), [np.asarray(g) for g in values[1:]]
        out = collections.OrderedDict()
        position = 0
        for prefix, layer in recurrent:
            count = len(layer.trainable_weights)
            out.update(from_keras(prefix, grads[position:position + count], cudnn))
            position += count
        d_head = np.empty_like(weights["head.w"])
        d_head[order] = grads[position].T
        out["head.w"] = d_head
        return loss, out

    return common.Workload(step, loss_and_grads, _describe(cudnn),
                           forward=lambda: float(run_phase(with_grads=False)[0]),
                           forward_backward=lambda: float(run_phase(with_grads=True)[0]))


def _graph_phases(model, variables, x, y):
    """Multi-backend Keras 2: run_phase(with_grads) -> [loss] (+ gradients), through K.function.

    The compiled loss (model.total_loss, with Keras' sample weights of 1) and, with_grads, its gradients, fed
    what train_on_batch feeds, without the optimizer's updates. K.function fetches what it computes, so the
    gradients come back to the host (on a CPU: a copy of the weights' size)."""
    compiled = {}  # phase -> K.function, compiled on first use

    def run_phase(with_grads):
        dynamic = model.uses_learning_phase and not isinstance(K.learning_phase(), int)
        if with_grads not in compiled:
            feeds = model._feed_inputs + model._feed_targets + model._feed_sample_weights
            outputs = [model.total_loss] + (K.gradients(model.total_loss, variables) if with_grads else [])
            compiled[with_grads] = K.function(feeds + ([K.learning_phase()] if dynamic else []), outputs)
        xs, ys, sample_weights = model._standardize_user_data(x, y)
        return compiled[with_grads](xs + ys + sample_weights + ([1] if dynamic else []))
    return run_phase


def _tf_keras_phases(model, variables, x, y):
    """tf.keras: run_phase(with_grads) -> [loss] (+ gradients), each a tf.function (traced on first use, as
    train_on_batch's own) of the model in training mode and its compiled loss, the gradients by GradientTape,
    fed the same host arrays as train_on_batch."""
    import tensorflow as tf

    def loss_of(x, y):
        return model.compiled_loss(y, model(x, training=True), regularization_losses=model.losses)

    def loss_and_gradients(x, y):
        with tf.GradientTape() as tape:
            loss = loss_of(x, y)
        return [loss] + tape.gradient(loss, variables)

    phases = {False: tf.function(lambda x, y: [loss_of(x, y)]), True: tf.function(loss_and_gradients)}
    return lambda with_grads: phases[with_grads](x, y)


def matmul(size):
    if KERAS3:
        return _keras3.matmul(size)
    if TF_KERAS:  # TensorFlow's own peak reference: tf.keras' backend has no graph-mode K.function
        from . import tensorflow as tensorflow_framework

        return tensorflow_framework.matmul(size)
    return _keras2_matmul(size)


def _keras2_matmul(size):
    """One float32 (size x size) product through Keras' backend (its session or Theano, its threads), into a
    variable, so only one number is copied back: the peak reference."""
    rng = np.random.RandomState(0)
    a, b, out = (K.variable(rng.uniform(size=(size, size)).astype(FLOATX)) for _ in range(3))
    # One scalar output: tf.keras' graph functions (under Keras 2.3 on TensorFlow 1.15) need an output.
    product = K.function([], [K.sum(out[:1, :1])], updates=[(out, K.dot(a, b))])
    return lambda: product([])


def _keras3_build(spec, batch, weights, cudnn, custom_step, cell_loop=False):
    keras.config.set_floatx(FLOATX)
    keras.config.set_epsilon(EPSILON)
    return _keras3.build(spec, batch, weights, cudnn, custom_step, _session.get("threads", "default"),
                         to_keras, from_keras, head_order, cell_loop=cell_loop)


def lstm(spec, batch, weights):
    """The study's Keras LSTM: keras.layers.LSTM (sigmoid gates), trained with train_on_batch."""
    if KERAS3:
        return _keras3_build(spec, batch, weights, cudnn=False, custom_step=False)
    return _build(spec, batch, weights, cudnn=False)


def lstm_custom_step(spec, batch, weights):
    """Keras 3's LSTM model trained by the step written by hand for its backend."""
    if not KERAS3:
        raise NotImplementedError("the hand-written step is written for Keras 3's backends; Keras {} trains "
                                  "through train_on_batch (the LSTM row)".format(VERSION))
    return _keras3_build(spec, batch, weights, cudnn=False, custom_step=True)


def rnn_lstm_cell(spec, batch, weights):
    """Keras 3's RNN(LSTMCell) (Bidirectional for 4x320), trained with train_on_batch: the generic loop over
    the cell, which the LSTM layer replaces by cuDNN on a GPU (on a CPU both run this loop)."""
    if TF_KERAS:
        raise NotImplementedError("the RNN(LSTMCell) row is written for Keras 3; on tf.keras (Keras {}) the LSTM "
                                  "row is measured".format(VERSION))
    if not KERAS3:
        raise NotImplementedError("in Keras {} the LSTM layer is RNN(LSTMCell) itself (an RNN subclass over "
                                  "LSTMCell): the LSTM row measures it".format(VERSION))
    return _keras3_build(spec, batch, weights, cudnn=False, custom_step=False, cell_loop=True)


def cudnn_lstm(spec, batch, weights):
    """The study's Keras cuDNNLSTM: keras.layers.CuDNNLSTM, TensorFlow backend on a GPU; in Keras 3,
    LSTM(use_cudnn=True) on a GPU, TensorFlow or PyTorch backend."""
    if KERAS3:
        if _keras3.BACKEND == "jax":
            raise NotImplementedError("Keras 3 has no cuDNN LSTM on its JAX backend")
        import inspect

        if "use_cudnn" not in inspect.signature(keras.layers.LSTM.__init__).parameters:
            raise NotImplementedError("Keras {}'s LSTM has no use_cudnn (Keras 3.1 added it)".format(VERSION))
        if not _keras3.gpu_name():
            raise NotImplementedError("LSTM(use_cudnn=True) needs a CUDA GPU with cuDNN; this machine has none "
                                      "visible to {}".format(_keras3.BACKEND))
        return _keras3_build(spec, batch, weights, cudnn=True, custom_step=False)
    if TF_KERAS:
        raise NotImplementedError("tf.keras (Keras {}) has no CuDNNLSTM layer: its LSTM layer runs cuDNN itself on "
                                  "a GPU, so the LSTM row measures it".format(VERSION))
    if K.backend() != "tensorflow":
        raise NotImplementedError("CuDNNLSTM needs the TensorFlow backend; this environment runs Keras on {}".format(
            K.backend()))
    if spec.loss == "ctc":
        raise NotImplementedError("CuDNNLSTM cannot mask variable-length sequences, so it does not run the CTC "
                                  "scenario (as in the study)")
    if not _gpu_names():
        raise NotImplementedError("CuDNNLSTM needs a CUDA GPU with cuDNN; this machine has none visible to "
                                  "TensorFlow")
    return _build(spec, batch, weights, cudnn=True)


IMPLEMENTATIONS = collections.OrderedDict([
    ("LSTM", lstm),
    ("CuDNNLSTM", cudnn_lstm),
    ("LSTM+custom-step", lstm_custom_step),
    ("RNN(LSTMCell)", rnn_lstm_cell),
])
