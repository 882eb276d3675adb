"""Lasagne implementations (on Theano), each a short factory (spec, batch, weights) -> common.Workload.

Written for Lasagne 0.1 (the last release on PyPI) on Theano 1.0.x; the study used Lasagne 0.2.1dev on
Theano 1.0.1. Theano is imported through ``_theano.import_theano()`` (compile cache per environment,
numpy's OpenBLAS linked, warp-ctc root) before Lasagne.

Implementations (the study's name in brackets):
  LSTMLayer  lasagne.layers.LSTMLayer, a pure Theano LSTM looping over time with theano.scan [LSTMLayer]
Lasagne has no bidirectional helper: as in the study, layers are stacked by hand, each direction an
LSTMLayer (``backwards=True`` for the backward one) and a ConcatLayer joining them. CTC uses warp-ctc
through ``theano.tensor.nnet.ctc`` and a ``mask_input`` for the variable lengths.

Layout mapping: Lasagne keeps per-gate parameters ``W_in_to_<gate>`` (inputs x H), ``W_hid_to_<gate>``
(H x H) and one bias ``b_<gate>`` (H), for the gates ingate, forgetgate, cell, outgate (the canonical
order i, f, g, o). Canonical -> Lasagne: row block k of ``w_ih``/``w_hh`` transposed; ``b_ih + b_hh``.
Lasagne -> canonical for gradients: the inverse, and the bias gradient is reported for both b_ih and b_hh.
The dense head's ``W`` is ``head.w`` transposed (Lasagne computes x W).
"""
import collections
import sys
import types

import numpy as np

from .. import common, scenarios
from . import _theano

_MISSING = None
try:
    theano = _theano.import_theano()
    import theano.tensor as T

    # Compatibility shim: Lasagne 0.1 imports theano.tensor.signal.downsample, which Theano 0.9 renamed to
    # theano.tensor.signal.pool (same pooling functions). Alias the old name before importing Lasagne.
    try:
        import theano.tensor.signal.downsample  # noqa: F401 - present on Theano < 0.9
    except ImportError:
        import theano.tensor.signal.pool

        sys.modules["theano.tensor.signal.downsample"] = theano.tensor.signal.pool
    import lasagne
    from lasagne.layers import ConcatLayer, DenseLayer, Gate, InputLayer, LSTMLayer, ReshapeLayer, SliceLayer
except (ImportError, NotImplementedError) as error:  # asv imports every module; require() turns this into a skip
    theano = lasagne = None
    _MISSING = str(error)

LEARNING_RATE = 1e-3
# Lasagne's gate names, in the canonical gate order (input, forget, cell, output).
GATES = ("ingate", "forgetgate", "cell", "outgate")
# Theano's graph optimisation of the stacked scans takes minutes on a small machine and depends only on
# the model's structure (the spec), not on the weights. Models compiled in this process are kept by spec:
# a later build of the same spec loads its weights into the compiled model's shared variables and resets
# Adam's state, which skips the recompilation, and the earlier workload of that model is retired (its
# calls then raise). asv builds one workload per process, so this only spares the tests.
_MODELS = collections.OrderedDict()
_MODELS_KEPT = 8


def require():
    if lasagne is None:
        raise NotImplementedError("lasagne is not installed in this environment ({})".format(_MISSING))


def configure(threads):
    return _theano.configure(threads)


def to_lasagne(weights, prefix, hidden):
    """One layer and direction's canonical weights as Lasagne's per-gate arrays:
    {gate: (W_in (inputs x H), W_hid (H x H), b (H,))}, with b = b_ih + b_hh."""
    w_ih, w_hh = weights[prefix + ".w_ih"], weights[prefix + ".w_hh"]
    bias = weights[prefix + ".b_ih"] + weights[prefix + ".b_hh"]
    out = collections.OrderedDict()
    for k, gate in enumerate(GATES):
        rows = slice(k * hidden, (k + 1) * hidden)
        out[gate] = tuple(np.ascontiguousarray(a, dtype=np.float32) for a in (w_ih[rows].T, w_hh[rows].T, bias[rows]))
    return out


def to_canonical(per_gate, prefix):
    """The inverse mapping, for gradients: {gate: (dW_in, dW_hid, db)} -> canonical names; the single
    bias's gradient is the gradient of both b_ih and b_hh."""
    w_in, w_hid, b = zip(*(per_gate[gate] for gate in GATES))
    bias = np.concatenate(b)
    return collections.OrderedDict([
        (prefix + ".w_ih", np.concatenate([w.T for w in w_in])),
        (prefix + ".w_hh", np.concatenate([w.T for w in w_hid])),
        (prefix + ".b_ih", bias),
        (prefix + ".b_hh", bias.copy()),
    ])


def _describe():
    return "cpu ({} BLAS threads)".format(_theano.threads_in_use())


def _model(spec, weights):
    """The compiled model of ``spec``: the network, the Adam step function and what the gradient function
    needs (compiled on first use: only the parity check calls it, asv times the step alone)."""
    x = T.ftensor3("inputs")  # (batch, time, features), as the host batch comes
    network = InputLayer((None, None, spec.features), input_var=x)
    inputs, mask_layer = [x], None
    if spec.loss == "ctc":
        mask = T.fmatrix("mask")  # (batch, time): 1 inside each sample's length, 0 in the padding after it
        mask_layer = InputLayer((None, None), input_var=mask)
        inputs.append(mask)

    params = collections.OrderedDict()  # canonical prefix -> {gate: (W_in, W_hid, b) shared variables}
    for layer in range(spec.layers):
        outputs = []
        for direction in scenarios.directions(spec):
            prefix = "lstm.l{}.{}".format(layer, direction)
            gates = {
                gate: Gate(W_in=w_in, W_hid=w_hid, b=b, W_cell=None,
                           nonlinearity=lasagne.nonlinearities.tanh if gate == "cell"
                           else lasagne.nonlinearities.sigmoid)
                for gate, (w_in, w_hid, b) in to_lasagne(weights, prefix, spec.hidden).items()
            }
            # backwards=True with a mask: the padding (at the end) is met first and skipped, keeping the
            # zero initial state, so each sample is read in reverse within its own length.
            lstm = LSTMLayer(network, spec.hidden, ingate=gates["ingate"], forgetgate=gates["forgetgate"],
                             cell=gates["cell"], outgate=gates["outgate"],
                             nonlinearity=lasagne.nonlinearities.tanh, peepholes=False, learn_init=False,
                             backwards=direction == "bwd", mask_input=mask_layer)
            params[prefix] = collections.OrderedDict(
                (gate, tuple(getattr(lstm, name + gate) for name in ("W_in_to_", "W_hid_to_", "b_")))
                for gate in GATES
            )
            outputs.append(lstm)
        network = ConcatLayer(outputs, axis=2) if len(outputs) > 1 else outputs[0]

    head_w = np.ascontiguousarray(weights["head.w"].T)
    if spec.loss == "ce":
        targets = T.lvector("targets")
        last = SliceLayer(network, indices=-1, axis=1)  # [fwd, bwd] outputs at position T-1
        head = DenseLayer(last, spec.classes, W=head_w, b=None, nonlinearity=lasagne.nonlinearities.softmax)
        probabilities = lasagne.layers.get_output(head)
        loss = lasagne.objectives.categorical_crossentropy(probabilities, targets).mean()
        inputs.append(targets)
    else:
        from theano.tensor.nnet import ctc as theano_ctc

        labels = T.imatrix("labels")  # (batch, labels), -1 after each sample's labels
        lengths = T.ivector("input_lengths")
        flat = ReshapeLayer(network, (-1, network.output_shape[-1]))  # Lasagne 0.1's dense layer is 2-D only
        head = DenseLayer(flat, spec.classes, W=head_w, b=None, nonlinearity=lasagne.nonlinearities.identity)
        logits = lasagne.layers.get_output(head).reshape((x.shape[0], x.shape[1], spec.classes))
        # warp-ctc takes unnormalised (time, batch, classes) scores and applies the softmax itself, blank 0;
        # it reads each sample's frames up to its length only, and the labels row by row, skipping -1.
        costs = theano_ctc.ctc(logits.dimshuffle(1, 0, 2), labels, lengths)
        loss = costs.sum() / np.float32(spec.batch)
        inputs += [labels, lengths]

    trained = [v for gates in params.values() for triple in gates.values() for v in triple] + [head.W]
    grads = theano.grad(loss, trained)
    updates = lasagne.updates.adam(grads, trained, learning_rate=LEARNING_RATE)
    model = types.SimpleNamespace(
        params=params, head=head.W, optimizer_state=[v for v in updates if v not in set(trained)],
        train=theano.function(inputs, loss, updates=updates, name="lasagne_LSTMLayer_step"),
        inputs=inputs, loss=loss, grads=grads, gradient_function=None, forward_function=None, owner=None,
    )
    return model


def _load(model, spec, weights):
    """Put a fresh start into a compiled model: the canonical weights, Adam's state at zero."""
    for prefix, gates in model.params.items():
        for gate, arrays in to_lasagne(weights, prefix, spec.hidden).items():
            for variable, array in zip(gates[gate], arrays):
                variable.set_value(array)
    model.head.set_value(np.ascontiguousarray(weights["head.w"].T, dtype=np.float32))
    for variable in model.optimizer_state:
        variable.set_value(np.zeros_like(variable.get_value()))


def _host_batch(spec, batch):
    """The host arrays fed to the compiled functions each step, in their input order."""
    if spec.loss == "ce":
        return [batch.inputs, batch.targets]
    mask = (np.arange(spec.time)[None, :] < batch.input_lengths[:, None]).astype(np.float32)
    labels = np.full(batch.targets.shape, -1, dtype=np.int32)
    for sample, count in enumerate(batch.target_lengths):
        labels[sample, :count] = batch.targets[sample, :count]
    return [batch.inputs, mask, labels, batch.input_lengths.astype(np.int32)]


def lstm_layer(spec, batch, weights):
    """The study's LSTMLayer: stacked lasagne.layers.LSTMLayer, hand-made bidirectional layers."""
    if spec.loss == "ctc":
        reason = _theano.ctc_unavailable_reason()
        if reason is not None:
            raise NotImplementedError("Lasagne's CTC scenario uses warp-ctc: " + reason)
    model = _MODELS.pop(spec, None)
    if model is None:
        model = _model(spec, weights)
    _MODELS[spec] = model
    while len(_MODELS) > _MODELS_KEPT:
        _MODELS.popitem(last=False)
    _load(model, spec, weights)
    owner = model.owner = object()
    host = _host_batch(spec, batch)

    def current():
        if model.owner is not owner:
            raise RuntimeError("this Lasagne workload was retired: a later build of the same scenario in this "
                               "process took over its compiled model")
        return model

    def step():
        return float(current().train(*host))

    def loss_and_grads():
        values = _compiled(current(), "gradient_function")(*host)
        loss_value, values = float(values[0]), iter(values[1:])
        out = collections.OrderedDict()
        for prefix, gates in model.params.items():
            per_gate = collections.OrderedDict(
                (gate, tuple(next(values) for _ in triple)) for gate, triple in gates.items())
            out.update(to_canonical(per_gate, prefix))
        out["head.w"] = np.ascontiguousarray(next(values).T)
        return loss_value, out

    def forward():
        return float(_compiled(current(), "forward_function")(*host))

    def forward_backward():
        return float(_compiled(current(), "gradient_function")(*host)[0])

    return common.Workload(step, loss_and_grads, _describe(), forward=forward, forward_backward=forward_backward)


def _compiled(model, name):
    """The model's loss-only or loss-and-gradients function, compiled on first use (outside any timing:
    the metrics warm each phase up before they time it)."""
    if getattr(model, name) is None:
        outputs = model.loss if name == "forward_function" else [model.loss] + model.grads
        setattr(model, name, theano.function(model.inputs, outputs, name="lasagne_LSTMLayer_" + name))
    return getattr(model, name)


def matmul(size):
    """One float32 (size x size) product compiled by Theano (linked to the same BLAS): the peak reference."""
    return _theano.matmul(size)


IMPLEMENTATIONS = collections.OrderedDict([
    ("LSTMLayer", lstm_layer),
])
