"""JAX implementations: Flax's recurrent layers (linen and NNX) and a plain ``lax.scan`` cell, each a
short factory (spec, batch, weights) -> common.Workload.

One jitted function is the training step: forward, loss, gradients (``jax.value_and_grad``) and optax's
Adam update. The host batch goes in as numpy arrays on every call (the copy to the device is part of the
call, as in the other frameworks' steps) and the step ends when its loss is read back, which waits for
the device. jit traces and compiles on the first call: the first warm-up step, reported by
benchmarks.metrics as the first step, never in the timed steps.

Implementations:
  linen.LSTMCell           flax.linen.RNN (lax.scan) over LSTMCell, one product per gate and step;
                           nn.Bidirectional for 4x320, sequence lengths passed for CTC
  linen.OptimizedLSTMCell  the same with OptimizedLSTMCell (the gate kernels concatenated: one product)
  nnx.LSTMCell             Flax NNX's nnx.RNN over nnx.LSTMCell, nnx.Bidirectional for 4x320
  nnx.OptimizedLSTMCell    the same with nnx.OptimizedLSTMCell
  lax.scan                 the cell written in jax.numpy, scanned with lax.scan, layers and directions stacked
                           by the suite (each sample reversed within its length)
On a GPU XLA compiles the same programs for it; JAX offers no cuDNN LSTM.

Weight mapping: Flax's cells keep one Dense per gate and operand: ii, if, ig, io (input kernels, in x H, no
bias) are the canonical w_ih gate blocks transposed; hi, hf, hg, ho (H x H, with bias) the w_hh blocks
transposed with the bias b_ih + b_hh (its gradient reported for both). Gate functions are the canonical
sigmoid and tanh. CE: softmax cross-entropy on the last step, mean over the batch. CTC:
``optax.ctc_loss`` (blank 0, as the suite's) with padding masks from the lengths, mean over the batch.
"""
import collections

import numpy as np

from .. import common, scenarios

try:
    from . import _jax
    import jax
    import jax.numpy as jnp
    import optax
except ImportError as error:  # asv imports every module at discovery; require() turns this into a skip
    jax = None
    _IMPORT_ERROR = "{} is not installed in this environment".format(error.name or error)
else:
    _IMPORT_ERROR = None

LEARNING_RATE = 1e-3
GATE_NAMES = ("i", "f", "g", "o")  # canonical gate blocks, in order


def require():
    if jax is None:
        raise NotImplementedError(_IMPORT_ERROR)


def configure(threads):
    return _jax.pin_threads(threads)


def _flax():
    try:
        import flax
    except ImportError:
        raise NotImplementedError("flax is not installed in this environment")
    return flax


def _loss_function(spec, batch, recurrent):
    """loss(params, inputs, targets) of the scenario: params = {"core": ..., "head": (classes, D)}."""
    lengths = np.asarray(batch.input_lengths)
    if spec.loss == "ce":
        # Fixed lengths: nothing to mask, and Flax's bidirectional layer flips whole sequences.
        def loss(params, inputs, targets):
            outputs = recurrent(params["core"], inputs, None)
            logits = outputs[:, -1] @ params["head"].T
            return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
        return loss
    # Padding masks are part of the batch's fixed layout, made once as the study prepared its data.
    logit_paddings = (np.arange(spec.time)[None, :] >= lengths[:, None]).astype(np.float32)
    label_paddings = (np.arange(batch.targets.shape[1])[None, :]
                      >= np.asarray(batch.target_lengths)[:, None]).astype(np.float32)
    device_lengths = jnp.asarray(lengths.astype(np.int32))

    def loss(params, inputs, targets):
        outputs = recurrent(params["core"], inputs, device_lengths)
        logits = outputs @ params["head"].T
        return optax.ctc_loss(logits, logit_paddings, targets, label_paddings, blank_id=scenarios.BLANK).mean()
    return loss


def _workload(spec, batch, weights, core, recurrent, to_canonical):
    """Complete a recurrent core into the common workload: head, loss, optax Adam, the jitted step and phases.

    core:         pytree of the recurrent core's parameters (the head is added here);
    recurrent:    (core, inputs (batch, time, features), lengths or None) -> top-layer outputs
                  (batch, time, hidden * directions);
    to_canonical: gradient pytree of the core -> {canonical name: array}.
    """
    state = {"params": {"core": core, "head": jnp.asarray(weights["head.w"])}}
    loss = _loss_function(spec, batch, recurrent)
    optimizer = optax.adam(LEARNING_RATE)
    state["opt"] = optimizer.init(state["params"])
    # Host arrays, prepared once: each call copies them to the device.
    host = (batch.inputs, batch.targets.astype(np.int32))
    value_and_grad = jax.value_and_grad(loss)

    def train(params, opt_state, inputs, targets):
        value, grads = value_and_grad(params, inputs, targets)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    # The old parameters and optimizer state are donated: updated in place where the device can.
    train = jax.jit(train, donate_argnums=(0, 1))
    forward = jax.jit(loss)
    forward_backward = jax.jit(value_and_grad)

    def step():
        state["params"], state["opt"], value = train(state["params"], state["opt"], *host)
        return _jax.scalar(value)

    def run_forward_backward():
        value, grads = forward_backward(state["params"], *host)
        jax.block_until_ready(grads)
        return _jax.scalar(value)

    def loss_and_grads():
        value, grads = forward_backward(state["params"], *host)
        out = collections.OrderedDict(
            (name, np.asarray(g)) for name, g in to_canonical(grads["core"]).items())
        out["head.w"] = np.asarray(grads["head"])
        return _jax.scalar(value), out

    return common.Workload(step, loss_and_grads, _jax.describe(),
                           forward=lambda: _jax.scalar(forward(state["params"], *host)),
                           forward_backward=run_forward_backward, device_peak_bytes=_jax.device_peak_bytes)


def matmul(size):
    """One float32 (size x size) product on JAX's device, waited for: the peak reference."""
    rng = np.random.RandomState(0)
    a, b = (jnp.asarray(rng.uniform(size=(size, size)).astype(np.float32)) for _ in range(2))
    product = jax.jit(jnp.dot)
    return lambda: product(a, b).block_until_ready()


# --- the suite's own scan ---------------------------------------------------------------------------------

def _scan_direction(p, x):
    """One layer and direction over time-major x (time, batch, in) with canonical parameters p."""
    hidden = p["w_hh"].shape[1]

    def cell(carry, x_t):
        h, c = carry
        gates = x_t @ p["w_ih"].T + p["b_ih"] + h @ p["w_hh"].T + p["b_hh"]
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros((x.shape[1], hidden), x.dtype)
    return jax.lax.scan(cell, (zeros, zeros), x)[1]


def lax_scan(spec, batch, weights):
    """The cell in jax.numpy under lax.scan; the suite stacks layers and reverses within each length."""
    core = {prefix: {gate: jnp.asarray(weights[prefix + "." + gate]) for gate in ("w_ih", "w_hh", "b_ih", "b_hh")}
            for prefix, _, _, _ in scenarios.lstm_prefixes(spec)}
    # Fixed per workload, like the batch: where each frame of the backward direction reads from.
    reverse = jnp.asarray(scenarios.within_length_reversal(batch.input_lengths, spec.time)[:, :, None])

    def recurrent(core, inputs, _):
        x = jnp.swapaxes(inputs, 0, 1)  # time-major for the scan
        for layer in range(spec.layers):
            outputs = [_scan_direction(core["lstm.l{}.fwd".format(layer)], x)]
            if spec.bidirectional:
                flipped = jnp.take_along_axis(x, reverse, axis=0)
                backward = _scan_direction(core["lstm.l{}.bwd".format(layer)], flipped)
                outputs.append(jnp.take_along_axis(backward, reverse, axis=0))
            x = jnp.concatenate(outputs, axis=-1) if len(outputs) > 1 else outputs[0]
        return jnp.swapaxes(x, 0, 1)

    def to_canonical(grads):
        return collections.OrderedDict(
            (prefix + "." + gate, g) for prefix, gates in grads.items() for gate, g in gates.items())

    return _workload(spec, batch, weights, core, recurrent, to_canonical)


# --- Flax -------------------------------------------------------------------------------------------------

def flax_cell_params(prefix, weights):
    """Canonical arrays of one layer and direction -> Flax's per-gate Dense parameters."""
    hidden = weights[prefix + ".w_hh"].shape[1]
    w_ih, w_hh = weights[prefix + ".w_ih"], weights[prefix + ".w_hh"]
    bias = weights[prefix + ".b_ih"] + weights[prefix + ".b_hh"]
    params = {}
    for k, gate in enumerate(GATE_NAMES):
        rows = slice(k * hidden, (k + 1) * hidden)
        params["i" + gate] = {"kernel": np.ascontiguousarray(w_ih[rows].T)}
        params["h" + gate] = {"kernel": np.ascontiguousarray(w_hh[rows].T), "bias": bias[rows].copy()}
    return params


def canonical_from_flax(prefix, cell):
    """Flax per-gate gradients ({"ii": {"kernel": ...}, ...}) -> canonical names (one bias for both)."""
    w_ih = np.concatenate([np.asarray(cell["i" + g]["kernel"]).T for g in GATE_NAMES])
    w_hh = np.concatenate([np.asarray(cell["h" + g]["kernel"]).T for g in GATE_NAMES])
    bias = np.concatenate([np.asarray(cell["h" + g]["bias"]) for g in GATE_NAMES])
    return collections.OrderedDict([(prefix + ".w_ih", w_ih), (prefix + ".w_hh", w_hh),
                                    (prefix + ".b_ih", bias), (prefix + ".b_hh", bias.copy())])


def _direction_paths(spec):
    """(canonical prefix, path of its cell's parameters in the stack) for every layer and direction."""
    paths = []
    for prefix, layer, direction, _ in scenarios.lstm_prefixes(spec):
        rnn = ("l{}".format(layer),) + (("forward_rnn",) if direction == "fwd" else ("backward_rnn",)) \
            if spec.bidirectional else ("l{}".format(layer),)
        paths.append((prefix, rnn + ("cell",)))
    return paths


def _at(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def _linen(cell_name):
    def factory(spec, batch, weights):
        flax = _flax()
        import flax.core
        import flax.linen as nn

        cell_class = getattr(nn, cell_name)

        class Stack(nn.Module):
            """Stacked (bidirectional) RNN layers, as a Flax user writes them."""

            @nn.compact
            def __call__(self, x, lengths):
                # parent=None: each cell (and each direction's RNN) belongs to the module it is passed to,
                # so the parameters nest as l<k>/[forward_rnn|backward_rnn]/cell/<gate>.
                def rnn(**kwargs):
                    return nn.RNN(cell_class(spec.hidden, parent=None), **kwargs)

                for layer in range(spec.layers):
                    name = "l{}".format(layer)
                    if spec.bidirectional:
                        x = nn.Bidirectional(rnn(parent=None), rnn(parent=None), name=name)(x, seq_lengths=lengths)
                    else:
                        x = rnn(name=name)(x, seq_lengths=lengths)
                return x

        model = Stack()
        lengths = None if spec.loss == "ce" else jnp.asarray(batch.input_lengths.astype(np.int32))
        initial = model.init(jax.random.key(0), jnp.asarray(batch.inputs[:1]), None if lengths is None
                             else lengths[:1])["params"]
        # nested plain dicts (older Flax returns a FrozenDict), whose cells are replaced below
        core = jax.tree_util.tree_map(np.asarray, flax.core.unfreeze(initial))
        for prefix, path in _direction_paths(spec):
            _at(core, path[:-1])[path[-1]] = flax_cell_params(prefix, weights)
        _same_structure(initial, core)
        core = jax.tree_util.tree_map(jnp.asarray, core)

        def recurrent(core, inputs, lengths):
            return model.apply({"params": core}, inputs, lengths)

        def to_canonical(grads):
            out = collections.OrderedDict()
            for prefix, path in _direction_paths(spec):
                out.update(canonical_from_flax(prefix, _at(grads, path)))
            return out

        return _workload(spec, batch, weights, core, recurrent, to_canonical)
    return factory


def _same_structure(expected, built):
    """The mapped parameters must have exactly the names and shapes Flax created."""
    shapes = [(jax.tree_util.keystr(path), np.shape(leaf))
              for path, leaf in jax.tree_util.tree_flatten_with_path(expected)[0]]
    mapped = [(jax.tree_util.keystr(path), np.shape(leaf))
              for path, leaf in jax.tree_util.tree_flatten_with_path(built)[0]]
    if shapes != mapped:
        raise AssertionError("mapped Flax parameters {} differ from Flax's own {}".format(mapped, shapes))


def _nnx_arrays(cell, prefix, weights):
    """[(NNX variable, canonical-derived value)] of one cell: nnx.LSTMCell keeps Flax's per-gate Linear layers
    (``if_`` for ``if``, a keyword); nnx.OptimizedLSTMCell two concatenated ones, ``dense_i`` (in x 4H, no
    bias) and ``dense_h`` (H x 4H, bias), gates i, f, g, o: the canonical blocks, transposed."""
    if hasattr(cell, "dense_i"):
        bias = weights[prefix + ".b_ih"] + weights[prefix + ".b_hh"]
        return [(cell.dense_i.kernel, np.ascontiguousarray(weights[prefix + ".w_ih"].T)),
                (cell.dense_h.kernel, np.ascontiguousarray(weights[prefix + ".w_hh"].T)), (cell.dense_h.bias, bias)]
    return [(getattr(getattr(cell, name, None) or getattr(cell, name + "_"), param), value)
            for name, arrays in flax_cell_params(prefix, weights).items() for param, value in arrays.items()]


def _nnx_canonical(cell, prefix, weights):
    """The inverse of _nnx_arrays, read from a cell of gradients."""
    if hasattr(cell, "dense_i"):
        bias = np.asarray(_value(cell.dense_h.bias))
        return collections.OrderedDict([
            (prefix + ".w_ih", np.asarray(_value(cell.dense_i.kernel)).T),
            (prefix + ".w_hh", np.asarray(_value(cell.dense_h.kernel)).T),
            (prefix + ".b_ih", bias), (prefix + ".b_hh", bias.copy())])
    per_gate = {}
    for name, arrays in flax_cell_params(prefix, weights).items():
        linear = getattr(cell, name, None) or getattr(cell, name + "_")
        per_gate[name] = {param: _value(getattr(linear, param)) for param in arrays}
    return canonical_from_flax(prefix, per_gate)


def _value(variable):
    return variable.get_value() if hasattr(variable, "get_value") else variable.value


def _nnx_module():
    """flax.nnx with its recurrent layers, or NotImplementedError naming what this Flax lacks (NNX left
    flax.experimental in 0.9; nnx.RNN and nnx.Bidirectional came later still)."""
    flax = _flax()
    try:
        from flax import nnx
    except ImportError:
        raise NotImplementedError("Flax {} has no flax.nnx".format(flax.__version__))
    missing = [name for name in ("RNN", "Bidirectional") if not hasattr(nnx, name)]
    if missing:
        raise NotImplementedError("Flax {} has no {}".format(
            flax.__version__, " or ".join("nnx." + name for name in missing)))
    return nnx


def _nnx(cell_name):
    def factory(spec, batch, weights):
        nnx = _nnx_module()

        cell_class = getattr(nnx, cell_name)
        rngs = nnx.Rngs(0)

        def rnn(in_size):
            return nnx.RNN(cell_class(in_size, spec.hidden, rngs=rngs))

        class Stack(nnx.Module):
            """Stacked (bidirectional) RNN layers, as a Flax NNX user writes them."""

            def __init__(self):
                for prefix, layer, direction, in_size in scenarios.lstm_prefixes(spec):
                    if direction == "bwd":
                        continue
                    layer_rnn = nnx.Bidirectional(rnn(in_size), rnn(in_size)) if spec.bidirectional else rnn(in_size)
                    setattr(self, "l{}".format(layer), layer_rnn)

            def __call__(self, x, lengths):
                for layer in range(spec.layers):
                    x = getattr(self, "l{}".format(layer))(x, seq_lengths=lengths)
                return x

        model = Stack()

        def cells(stack):
            for prefix, path in _direction_paths(spec):
                yield prefix, _at_attr(stack, path)

        for prefix, cell in cells(model):
            for variable, value in _nnx_arrays(cell, prefix, weights):
                if tuple(_value(variable).shape) != value.shape:
                    raise AssertionError("{}: NNX shape {} != mapped shape {}".format(
                        prefix, _value(variable).shape, value.shape))
                if hasattr(variable, "set_value"):
                    variable.set_value(jnp.asarray(value))
                else:
                    variable.value = jnp.asarray(value)
        # The parameters are differentiated and updated; the rest (the cells' RNG state) rides along.
        graphdef, core, rest = nnx.split(model, nnx.Param, ...)

        def recurrent(core, inputs, lengths):
            # A fresh copy of the RNG state per trace: the RNNs draw from it (to make their zero initial
            # carries), which must not touch variables of the outer trace.
            return nnx.merge(graphdef, core, jax.tree_util.tree_map(lambda a: a, rest))(inputs, lengths)

        def to_canonical(grads):
            # The gradient state has the model's structure: merged, it reads like the model.
            grad_model = nnx.merge(graphdef, grads, rest)
            out = collections.OrderedDict()
            for prefix, cell in cells(grad_model):
                out.update(_nnx_canonical(cell, prefix, weights))
            return out

        return _workload(spec, batch, weights, core, recurrent, to_canonical)
    return factory


def _at_attr(module, path):
    for name in path:
        module = getattr(module, name)
    return module


IMPLEMENTATIONS = collections.OrderedDict([
    ("linen.LSTMCell", _linen("LSTMCell")),
    ("linen.OptimizedLSTMCell", _linen("OptimizedLSTMCell")),
    ("nnx.LSTMCell", _nnx("LSTMCell")),
    ("nnx.OptimizedLSTMCell", _nnx("OptimizedLSTMCell")),
    ("lax.scan", lax_scan),
])
