"""TensorFlow 2 implementations behind the tensorflow framework module: eager TensorFlow, the training step
in one ``tf.function`` (traced on the first call: a warm-up step, never a timed one), gradients by
``tf.GradientTape``, Adam by TensorFlow's own fused kernel (``ResourceApplyAdam``, what TF 1.x's
AdamOptimizer ran), the host batch converted on every call, the loss read back (which waits for the device).

Cores (all time-major, layers and directions stacked by the suite, the backward direction over each sample
reversed within its length by ``tf.reverse_sequence``, as TF 1.x's TimeReversedFusedRNN did):
  BlockLSTM     ``tf.raw_ops.BlockLSTM`` (forget_bias 0, no peepholes, no clipping): one op over all time
                steps, what contrib's LSTMBlockFusedCell ran and what TF 2 keeps (with its gradient)
  while_loop    the cell written in TensorFlow ops in a ``tf.while_loop`` over time (a TensorArray of outputs)
  while_loop+XLA  the same step compiled by XLA (``jit_compile=True``)
CTC: ``tf.nn.ctc_loss`` (TF 2's, which takes the blank's index: 0, the suite's), dense labels with lengths.
"""
import collections
import re

import numpy as np

try:
    import tensorflow as tf
except ImportError:  # asv's discovery imports every module; tensorflow.py uses this one only on TF 2
    tf = None

from .. import common, scenarios

LEARNING_RATE = 1e-3
BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8  # TF 1.x AdamOptimizer's defaults (and torch's)


class Adam(object):
    """Adam through TensorFlow's fused ResourceApplyAdam kernel, one call per variable."""

    def __init__(self, variables):
        self.slots = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in variables]
        self.beta1_power = tf.Variable(BETA1)  # beta ** t for the step about to be applied
        self.beta2_power = tf.Variable(BETA2)

    def apply(self, grads, variables):
        for variable, (m, v), grad in zip(variables, self.slots, grads):
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle, m=m.handle, v=v.handle, beta1_power=self.beta1_power,
                beta2_power=self.beta2_power, lr=LEARNING_RATE, beta1=BETA1, beta2=BETA2, epsilon=EPSILON, grad=grad)
        self.beta1_power.assign(self.beta1_power * BETA1)
        self.beta2_power.assign(self.beta2_power * BETA2)


def _reverse(x, lengths):
    return tf.reverse_sequence(x, lengths, seq_axis=0, batch_axis=1)


def stacked(spec, direction_fn):
    """recurrent(params, x, lengths) over layers and directions; direction_fn(params of one prefix, x) ->
    outputs, x time-major."""

    def recurrent(params, x, lengths):
        for layer in range(spec.layers):
            outputs = [direction_fn(params["lstm.l{}.fwd".format(layer)], x)]
            if spec.bidirectional:
                backward = direction_fn(params["lstm.l{}.bwd".format(layer)], _reverse(x, lengths))
                outputs.append(_reverse(backward, lengths))
            x = tf.concat(outputs, axis=2) if len(outputs) > 1 else outputs[0]
        return x

    return recurrent


def workload(spec, batch, weights, params, recurrent, to_canonical, describe, jit_compile=False):
    """Complete a recurrent core into the common workload.

    params:       {prefix: {name: tf.Variable}} of the core (the head is added here);
    recurrent:    (params, x time-major, lengths int32) -> top-layer outputs (time, batch, hidden * directions);
    to_canonical: (prefix, {name: gradient array}) -> {canonical name: array}.
    """
    head = tf.Variable(weights["head.w"], name="head_w")
    names = [(prefix, name) for prefix in params for name in params[prefix]]
    variables = [params[prefix][name] for prefix, name in names] + [head]
    optimizer = Adam(variables)
    # Host arrays, prepared once: time-major inputs, int32 lengths and labels.
    host = [np.ascontiguousarray(batch.inputs.transpose(1, 0, 2)), batch.input_lengths.astype(np.int32)]
    if spec.loss == "ce":
        host.append(batch.targets)
    else:
        host += [batch.targets.astype(np.int32), batch.target_lengths.astype(np.int32)]

    def loss_of(x, lengths, targets, target_lengths=None):
        outputs = recurrent(params, x, lengths)
        if spec.loss == "ce":
            logits = tf.matmul(outputs[-1], head, transpose_b=True)
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits))
        logits = tf.einsum("tbd,cd->tbc", outputs, head)
        return tf.reduce_mean(tf.nn.ctc_loss(labels=targets, logits=logits, label_length=target_lengths,
                                             logit_length=lengths, logits_time_major=True,
                                             blank_index=scenarios.BLANK))

    def gradients(*inputs):
        with tf.GradientTape() as tape:
            value = loss_of(*inputs)
        return value, tape.gradient(value, variables)

    def train(*inputs):
        value, grads = gradients(*inputs)
        optimizer.apply(grads, variables)
        return value

    train = _function(train, jit_compile)
    forward = _function(loss_of, jit_compile)
    compiled_gradients = _function(gradients, jit_compile)

    if jit_compile:
        _compile_or_skip(compiled_gradients, host)

    def forward_backward():
        value, grads = compiled_gradients(*host)
        return float(value)  # the gradients come from the same call, finished with it

    def loss_and_grads():
        value, grads = compiled_gradients(*host)
        grouped = collections.OrderedDict()
        for (prefix, name), grad in zip(names, grads):
            grouped.setdefault(prefix, {})[name] = grad.numpy()
        out = collections.OrderedDict()
        for prefix, group in grouped.items():
            out.update(to_canonical(prefix, group))
        out["head.w"] = grads[-1].numpy()
        return float(value), out

    return common.Workload(lambda: float(train(*host)), loss_and_grads, describe,
                           forward=lambda: float(forward(*host)), forward_backward=forward_backward,
                           device_peak_bytes=_device_peak)


# Releases whose XLA kills the process compiling the while_loop step: no exception to turn into a skip, so
# the release is known here. TF 2.5.3 segfaults on the first call of the 1x320/CE-short step (2.3 and 2.7
# compile it).
XLA_CRASHES = {(2, 5): "a segmentation fault"}


def _function(python_function, jit_compile):
    """tf.function, compiled by XLA if asked: ``jit_compile`` since TF 2.5, ``experimental_compile`` before."""
    if not jit_compile:
        return tf.function(python_function)
    crash = XLA_CRASHES.get(tuple(int(part) for part in tf.__version__.split(".")[:2]))
    if crash:
        raise NotImplementedError("XLA on TensorFlow {} crashes the process ({}) compiling this step".format(
            tf.__version__, crash))
    for keyword in ("jit_compile", "experimental_compile"):
        try:
            return tf.function(python_function, **{keyword: True})
        except TypeError:  # an older TensorFlow: no such keyword
            continue
    raise NotImplementedError("TensorFlow {} cannot compile a tf.function with XLA (tf.function has neither "
                              "jit_compile nor experimental_compile)".format(tf.__version__))


def _compile_or_skip(function, host):
    """Run an XLA-compiled function once (it changes no state), so that XLA compiles it here: a graph XLA
    cannot compile becomes a skip with the reason, not an error in every step. Two such limits are known:
    an op with no XLA kernel (tf.nn.ctc_loss's dense path before TF 2.16: InplaceAdd), and a shape argument
    XLA cannot fold to a constant (seen on TF 2.3: StridedSliceGrad in the bidirectional while_loop's
    gradient)."""
    try:
        function(*host)
    except tf.errors.InvalidArgumentError as error:
        # "... unsupported operations ... on XLA_CPU_JIT: InplaceAdd (No registered ...)" (TF 2.7 and later),
        # "... unsupported op: No registered 'InplaceAdd' OpKernel for XLA_CPU_JIT devices ..." (TF 2.3)
        found = re.search(r"on (XLA_\w+_JIT): (.+?) \(No registered", error.message)
        older = re.search(r"unsupported op: No registered '(\w+)' OpKernel for (XLA_\w+_JIT) devices", error.message)
        if "unsupported operations" in error.message and found:
            device, ops = found.group(1), found.group(2)
        elif older:
            device, ops = older.group(2), older.group(1)
        else:
            device = ops = None
        if ops is not None:
            raise NotImplementedError("XLA on TensorFlow {} cannot compile this step: no {} kernel for {}".format(
                tf.__version__, device, ops))
        node = re.search(r"\{\{node ([^}]+)\}\}", error.message)
        if "evaluated to concrete values at compile time" in error.message and node:
            raise NotImplementedError("XLA on TensorFlow {} cannot compile this step: a shape argument of {} is "
                                      "not a compile-time constant".format(tf.__version__, node.group(1).split("/")[-1]))
        raise


def _device_peak():
    if not tf.config.list_logical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"]


# --- cores --------------------------------------------------------------------------------------------------

def block_lstm_params(spec, weights, to_tf_kernel, to_tf_bias):
    return collections.OrderedDict(
        (prefix, {"kernel": tf.Variable(to_tf_kernel(weights[prefix + ".w_ih"], weights[prefix + ".w_hh"])),
                  "bias": tf.Variable(to_tf_bias(weights[prefix + ".b_ih"], weights[prefix + ".b_hh"]))})
        for prefix, _, _, _ in scenarios.lstm_prefixes(spec))


def block_lstm_direction(spec):
    zeros = tf.zeros([spec.hidden])  # the peephole weights the op takes, unused with use_peephole=False

    def direction(p, x):
        state = tf.zeros([tf.shape(x)[1], spec.hidden])
        outputs = tf.raw_ops.BlockLSTM(
            seq_len_max=tf.cast(tf.shape(x)[0], tf.int64), x=x, cs_prev=state, h_prev=state, w=p["kernel"],
            wci=zeros, wcf=zeros, wco=zeros, b=p["bias"], forget_bias=0.0, cell_clip=-1.0, use_peephole=False)
        return outputs[-1]  # h over all steps

    return direction


def canonical_params(spec, weights):
    return collections.OrderedDict(
        (prefix, collections.OrderedDict((gate, tf.Variable(weights[prefix + "." + gate]))
                                         for gate in ("w_ih", "w_hh", "b_ih", "b_hh")))
        for prefix, _, _, _ in scenarios.lstm_prefixes(spec))


def while_loop_direction(spec):
    def direction(p, x):
        time, batch = tf.shape(x)[0], tf.shape(x)[1]
        state = tf.zeros([batch, spec.hidden])
        outputs = tf.TensorArray(tf.float32, size=time)

        def body(t, h, c, outputs):
            # both products inside the loop, as a cell does (PyTorch's LSTMCell-basic and JAX's lax.scan too)
            gates = (tf.matmul(x[t], p["w_ih"], transpose_b=True) + p["b_ih"]
                     + tf.matmul(h, p["w_hh"], transpose_b=True) + p["b_hh"])
            i, f, g, o = tf.split(gates, 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            return t + 1, h, c, outputs.write(t, h)

        _, _, _, outputs = tf.while_loop(lambda t, *_: t < time, body, (0, state, state, outputs),
                                         maximum_iterations=spec.time)  # bounded: XLA needs it
        return outputs.stack()

    return direction
