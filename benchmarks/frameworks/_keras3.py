"""Keras 3 (multi-backend again: TensorFlow, JAX, PyTorch), behind the keras framework module's names.

The backend is the environment matrix's KERAS_BACKEND (an axis of env_matrix/stacks.json, not copies of
this code). The model is what a Keras 3 user writes, the Keras 2 model's twin: stacked ``LSTM`` layers
(``Bidirectional(..., merge_mode="concat")`` for 4x320), a Dense head without bias; for CTC an explicit
length mask passed to every recurrent layer and ``keras.ops.ctc_loss`` (blank 0, as the suite's) in a layer
whose per-sample cost is the loss. Weights map as in Keras 2 (keras.to_keras / from_keras).

Two training steps on the same model:
  train_on_batch   Keras' own compiled train function (``jit_compile="auto"``: XLA on JAX; TensorFlow and
                   PyTorch resolve it per model), built by one warm-up call in the factory;
  custom step      the step written by hand for the backend, as Keras' guides teach: TensorFlow
                   ``tf.function`` + ``GradientTape`` + ``optimizer.apply``; JAX ``stateless_call`` +
                   ``jax.value_and_grad`` + ``optimizer.stateless_apply`` under ``jax.jit``; PyTorch
                   autograd + ``optimizer.apply`` under ``torch.no_grad``.
Phases (benchmarks.metrics): forward is ``test_on_batch`` (Keras' compiled loss-only function) for
train_on_batch and the hand-written forward for the custom step; forward+backward is the backend's
hand-written gradient function for both (Keras has no gradients-without-update call).
"""
import collections

import numpy as np

from .. import common, scenarios
# keras.py imports keras (after setting KERAS_BACKEND and, for Theano, Theano's flags) and decides whether it is
# Keras 3; asv's discovery imports this module too, wherever it runs, so it takes keras from there.
from . import keras as _framework

keras = _framework.keras if _framework.KERAS3 else None
LEARNING_RATE = 1e-3

if keras is not None:
    from keras import ops

    BACKEND = keras.backend.backend()
    KERAS_VERSION = tuple(int(part) for part in keras.__version__.split(".")[:2])
    _Layer = keras.layers.Layer
else:
    ops = BACKEND = KERAS_VERSION = None
    _Layer = object


class CTCCost(_Layer):
    """Per-sample CTC negative log-likelihood (batch, 1) of head logits through keras.ops.ctc_loss.

    Inputs: logits (batch, time, classes), labels (batch, labels), input lengths (batch, 1), label lengths
    (batch, 1). Frames past a sample's length and labels past its label length are not read.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # the logits' time mask is consumed here, through the lengths

    def call(self, logits, labels, input_lengths, label_lengths):
        cost = ops.ctc_loss(labels, logits, ops.reshape(label_lengths, (-1,)), ops.reshape(input_lengths, (-1,)),
                            mask_index=scenarios.BLANK)
        return ops.expand_dims(cost, 1)

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def compute_output_shape(self, logits_shape, *shapes):
        return (logits_shape[0], 1)


def configure(threads):
    """Pin the backend's thread pools; return the count in use."""
    if BACKEND == "jax":
        from . import _jax

        return _jax.pin_threads(threads)
    if BACKEND == "torch":
        import torch

        torch.set_num_threads(threads)
        return torch.get_num_threads()
    import tensorflow as tf

    try:  # TensorFlow sizes its pools once, when its runtime starts: afterwards they cannot change
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass
    return tf.config.threading.get_intra_op_parallelism_threads() or threads


def gpu_name():
    """The first GPU the backend sees, or "" without one."""
    if BACKEND == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        return gpus[0].device_kind if gpus else ""
    if BACKEND == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name) if gpus else ""


def _describe(threads):
    gpu = gpu_name()
    where = "cuda ({})".format(gpu) if gpu else "cpu ({} threads)".format(threads)
    return "{}; keras {} on {}".format(where, keras.__version__, BACKEND)


def device_peak_bytes():
    if not gpu_name():
        return None
    if BACKEND == "jax":
        from . import _jax

        return _jax.device_peak_bytes()
    if BACKEND == "torch":
        import torch

        return torch.cuda.max_memory_allocated()
    import tensorflow as tf

    return tf.config.experimental.get_memory_info("GPU:0")["peak"]


def build_model(spec, cudnn, cell_loop=False):
    """The Keras model and (canonical prefix, layer) of every recurrent layer, and the head.

    cell_loop: ``RNN(LSTMCell)``, Keras' generic recurrent loop over the cell, in place of ``LSTM``. The LSTM
    layer tries its backend's fused kernel first (cuDNN on a GPU, TensorFlow or PyTorch backend) and falls back
    to that same loop; the RNN wrapper never tries it, so on a GPU this row is the loop the kernel replaces.
    """
    layers = keras.layers
    sequences = keras.Input(shape=(spec.time, spec.features), name="inputs")
    inputs, x, mask = [sequences], sequences, None
    if spec.loss == "ctc":
        if BACKEND == "jax" and KERAS_VERSION < (3, 4):
            # Keras 3.0-3.3's JAX ctc_loss pads the frames to the label length, not the input length: its scan
            # fails whenever the inputs outnumber the labels, as they always do here.
            raise NotImplementedError("Keras {}.{}'s JAX ctc_loss pads frames to the label length (fixed in "
                                      "Keras 3.4)".format(*KERAS_VERSION))
        input_lengths = keras.Input(shape=(1,), dtype="int32", name="input_lengths")
        inputs.append(input_lengths)
        # An explicit mask from the lengths, not Masking: the padding's values are arbitrary.
        mask = ops.less(ops.arange(spec.time)[None, :], input_lengths)
    recurrent = []
    for layer in range(spec.layers):
        top = layer == spec.layers - 1
        # As in Keras 2: a bidirectional top returns sequences and is sliced (its backward final state is
        # not the output at T-1).
        return_sequences = not top or spec.loss == "ctc" or spec.bidirectional
        if cell_loop:
            rnn = layers.RNN(layers.LSTMCell(spec.hidden, recurrent_activation="sigmoid"),
                             return_sequences=return_sequences)
        else:
            # use_cudnn exists from Keras 3.1 on; left out, the layer does what use_cudnn="auto" does
            options = {"use_cudnn": True} if cudnn else {}
            rnn = layers.LSTM(spec.hidden, recurrent_activation="sigmoid", return_sequences=return_sequences, **options)
        if spec.bidirectional:
            wrapper = layers.Bidirectional(rnn, merge_mode="concat")
            x = wrapper(x, mask=mask)
            recurrent += [("lstm.l{}.fwd".format(layer), wrapper.forward_layer),
                          ("lstm.l{}.bwd".format(layer), wrapper.backward_layer)]
        else:
            x = rnn(x, mask=mask)
            recurrent.append(("lstm.l{}.fwd".format(layer), rnn))
    if spec.loss == "ce":
        if spec.bidirectional:
            x = layers.Lambda(lambda s: s[:, -1, :], name="last_step")(x)
        head = layers.Dense(spec.classes, use_bias=False, activation="softmax", name="head")
        outputs = head(x)
    else:
        head = layers.Dense(spec.classes, use_bias=False, name="head")  # logits; the CTC applies the softmax
        labels = keras.Input(shape=(spec.labels,), dtype="int32", name="labels")
        label_lengths = keras.Input(shape=(1,), dtype="int32", name="label_lengths")
        inputs += [labels, label_lengths]
        outputs = CTCCost(name="ctc")(head(x), labels, input_lengths, label_lengths)
    return keras.Model(inputs=inputs, outputs=outputs), recurrent, head


def loss_of(spec):
    """The compiled loss, written out for the hand-written steps: (outputs, y) -> mean over the batch."""
    if spec.loss == "ce":
        return lambda outputs, y: ops.mean(keras.losses.sparse_categorical_crossentropy(y, outputs))
    return lambda outputs, y: ops.mean(outputs)  # the per-sample CTC cost


def host_batch(spec, batch):
    """(x, y) as the model takes them: host arrays, prepared once, fed on every step."""
    if spec.loss == "ce":
        return [batch.inputs], batch.targets.reshape(-1, 1).astype(np.int32)
    labels = batch.targets.astype(np.int32)
    for sample, length in enumerate(batch.target_lengths):
        labels[sample, length:] = 0  # past each label length: never read (keras.ops.ctc_loss takes the lengths)
    x = [batch.inputs, batch.input_lengths.reshape(-1, 1).astype(np.int32), labels,
         batch.target_lengths.reshape(-1, 1).astype(np.int32)]
    return x, np.zeros((spec.batch, 1), dtype=np.float32)  # y unused: the loss is the CTC layer's output


class _Steps(object):
    """The backend's hand-written functions over one model: gradients (no update) and the training step."""

    def __init__(self, model, loss, optimizer, live_variables=False):
        self.model, self.loss, self.optimizer, self.live_variables = model, loss, optimizer, live_variables
        self.variables = model.trainable_variables
        getattr(self, "_init_" + BACKEND)()

    # TensorFlow: tf.function + GradientTape
    def _init_tensorflow(self):
        import tensorflow as tf

        model, loss, variables, optimizer = self.model, self.loss, self.variables, self.optimizer

        @tf.function
        def gradients(x, y):
            with tf.GradientTape() as tape:
                value = loss(model(x, training=True), y)
            return value, tape.gradient(value, variables)

        @tf.function
        def forward(x, y):
            return loss(model(x, training=True), y)

        @tf.function
        def train(x, y):
            value, grads = gradients(x, y)
            optimizer.apply(grads, variables)
            return value

        self._gradients, self._forward, self._train = gradients, forward, train

    def _values_tensorflow(self, grads):
        return [g.numpy() for g in grads]

    # JAX: stateless_call + value_and_grad + stateless_apply under jax.jit; the state lives here
    def _init_jax(self):
        import jax

        model, loss, optimizer = self.model, self.loss, self.optimizer
        optimizer.build(self.variables)
        self.state = ([v.value for v in self.variables], [v.value for v in model.non_trainable_variables],
                      [v.value for v in optimizer.variables])

        def forward_loss(trainable, non_trainable, x, y):
            outputs, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
            return loss(outputs, y), non_trainable

        value_and_grad = jax.value_and_grad(forward_loss, has_aux=True)

        def train(state, x, y):
            trainable, non_trainable, optimizer_vars = state
            (value, non_trainable), grads = value_and_grad(trainable, non_trainable, x, y)
            trainable, optimizer_vars = optimizer.stateless_apply(optimizer_vars, grads, trainable)
            return value, (trainable, non_trainable, optimizer_vars)

        gradients = jax.jit(lambda state, x, y: value_and_grad(state[0], state[1], x, y))
        forward = jax.jit(lambda state, x, y: forward_loss(state[0], state[1], x, y)[0])
        train = jax.jit(train, donate_argnums=0)
        self._gradients = lambda x, y: (lambda out: (out[0][0], out[1]))(gradients(self.current_state(), x, y))
        self._forward = lambda x, y: forward(self.current_state(), x, y)

        def run_train(x, y):
            value, self.state = train(self.state, x, y)
            return value
        self._train = run_train

    def current_state(self):
        """JAX: the state the gradients are taken at. train_on_batch updates the Keras variables, not this
        state, so a workload trained by it reads them (outside its timed step)."""
        if self.live_variables:
            return ([v.value for v in self.variables], [v.value for v in self.model.non_trainable_variables],
                    self.state[2])
        return self.state

    def _values_jax(self, grads):
        return [np.asarray(g) for g in grads]

    # PyTorch: autograd, then optimizer.apply without recording
    def _init_torch(self):
        import torch

        model, loss, variables, optimizer = self.model, self.loss, self.variables, self.optimizer

        def gradients(x, y):
            for variable in variables:
                variable.value.grad = None
            value = loss(model(x, training=True), y)
            value.backward()
            return value, [variable.value.grad for variable in variables]

        def forward(x, y):
            return loss(model(x, training=True), y)

        def train(x, y):
            value, grads = gradients(x, y)
            with torch.no_grad():
                optimizer.apply(grads, variables)
            return value

        self._gradients, self._forward, self._train = gradients, forward, train

    def _values_torch(self, grads):
        return [g.detach().cpu().numpy() for g in grads]

    def forward(self, x, y):
        return _scalar(self._forward(x, y))

    def forward_backward(self, x, y):
        value, grads = self._gradients(x, y)
        self.grads = grads  # kept until the next call: the gradients are computed, not only scheduled
        return _scalar(value)

    def loss_and_grads(self, x, y):
        value, grads = self._gradients(x, y)
        return _scalar(value), getattr(self, "_values_" + BACKEND)(grads)

    def train(self, x, y):
        return _scalar(self._train(x, y))


def _scalar(value):
    """A backend scalar as a Python float; reading it waits for the device."""
    return float(value.detach() if hasattr(value, "detach") else value)


def build(spec, batch, weights, cudnn, custom_step, threads, to_keras, from_keras, head_order, cell_loop=False):
    """One workload: the model with the canonical weights, trained by train_on_batch or the custom step."""
    model, recurrent, head = build_model(spec, cudnn, cell_loop)
    order = head_order(spec)
    assignments = []
    for prefix, layer in recurrent:
        # Keras 3's LSTM keeps one bias with or without cuDNN (Keras 2's CuDNNLSTM kept two)
        assignments += list(zip(layer.trainable_weights, to_keras(prefix, weights, False)))
    assignments.append((head.kernel, np.ascontiguousarray(weights["head.w"][order].T)))
    for variable, value in assignments:
        if tuple(variable.shape) != value.shape:
            raise AssertionError("{}: Keras shape {} != mapped shape {}".format(variable.path, variable.shape,
                                                                               value.shape))
        variable.assign(value)
    loss = loss_of(spec)
    optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE)
    x, y = host_batch(spec, batch)
    if custom_step:
        steps = _Steps(model, loss, optimizer)
        step = lambda: steps.train(x, y)  # noqa: E731
        forward = lambda: steps.forward(x, y)  # noqa: E731
    else:
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy" if spec.loss == "ce"
                      else (lambda y_true, y_pred: y_pred))  # the per-sample CTC cost is the loss
        # the hand-written gradients, for the phases and the parity check; its optimizer is never applied
        steps = _Steps(model, loss, keras.optimizers.Adam(learning_rate=LEARNING_RATE), live_variables=True)

        # Keras 3.15 resets the model's metrics, its loss tracker among them, at the start of train_on_batch and
        # test_on_batch, so they return this batch's loss. Before 3.15 they returned the running mean since
        # compile; for those the reset is made here: the same work, and the loss the step must check.
        reset = KERAS_VERSION < (3, 15)

        def step():
            if reset:
                model.reset_metrics()
            return float(np.ravel(model.train_on_batch(x, y))[0])

        def forward():
            if reset:
                model.reset_metrics()
            return float(np.ravel(model.test_on_batch(x, y))[0])

    positions = {variable.path: k for k, variable in enumerate(steps.variables)}

    def loss_and_grads():
        value, grads = steps.loss_and_grads(x, y)
        out = collections.OrderedDict()
        for prefix, layer in recurrent:
            out.update(from_keras(prefix, [grads[positions[v.path]] for v in layer.trainable_weights], False))
        d_head = np.empty_like(weights["head.w"])
        d_head[order] = grads[positions[head.kernel.path]].T
        out["head.w"] = d_head
        return value, out

    return common.Workload(step, loss_and_grads, _describe(threads), forward=forward,
                           forward_backward=lambda: steps.forward_backward(x, y),
                           device_peak_bytes=device_peak_bytes)


def matmul(size):
    """One float32 (size x size) product through keras.ops on the backend's device, read back as one number
    (which waits for it): the peak reference."""
    rng = np.random.RandomState(0)
    a, b = (ops.convert_to_tensor(rng.uniform(size=(size, size)).astype(np.float32)) for _ in range(2))
    if BACKEND == "jax":
        import jax

        product = jax.jit(lambda a, b: ops.matmul(a, b)[0, 0])
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        product = tf.function(lambda a, b: ops.matmul(a, b)[0, 0])
    else:
        product = lambda a, b: ops.matmul(a, b)[0, 0]  # noqa: E731
    return lambda: float(product(a, b))
