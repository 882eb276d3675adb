"""A plain numpy reference of the suite's computation, in float64, one sample at a time.

Loss and gradients of: stacked (bi)directional LSTM layers (PyTorch gate order i, f, g, o, two biases),
a dense head without bias, then mean cross-entropy on the last time step, or CTC (blank 0) on every
valid frame, averaged over the batch. Every framework's implementation must match it.
"""
import numpy as np


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_forward(x, w_ih, w_hh, b_ih, b_hh):
    """x: (time, input) of one sample. Returns outputs (time, hidden) and what the backward pass needs."""
    hidden = w_hh.shape[1]
    h = np.zeros(hidden)
    c = np.zeros(hidden)
    outputs, tape = [], []
    for x_t in x:
        z = w_ih @ x_t + b_ih + w_hh @ h + b_hh
        i, f, o = (_sigmoid(z[k * hidden:(k + 1) * hidden]) for k in (0, 1, 3))
        g = np.tanh(z[2 * hidden:3 * hidden])
        c_new = f * c + i * g
        tape.append((x_t, h, c, i, f, g, o, c_new))
        h, c = o * np.tanh(c_new), c_new
        outputs.append(h)
    return np.array(outputs), tape


def lstm_backward(d_outputs, tape, w_ih, w_hh):
    """Backpropagation through time. Returns d_x and the gradients of (w_ih, w_hh, b_ih, b_hh)."""
    d_w_ih, d_w_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
    d_b = np.zeros(w_ih.shape[0])
    d_x = np.zeros((len(tape), w_ih.shape[1]))
    d_h_next = np.zeros(w_hh.shape[1])
    d_c_next = np.zeros(w_hh.shape[1])
    for t in reversed(range(len(tape))):
        x_t, h_prev, c_prev, i, f, g, o, c = tape[t]
        d_h = d_outputs[t] + d_h_next
        tanh_c = np.tanh(c)
        d_c = d_h * o * (1.0 - tanh_c ** 2) + d_c_next
        d_z = np.concatenate([
            d_c * g * i * (1.0 - i),
            d_c * c_prev * f * (1.0 - f),
            d_c * i * (1.0 - g ** 2),
            d_h * tanh_c * o * (1.0 - o),
        ])
        d_w_ih += np.outer(d_z, x_t)
        d_w_hh += np.outer(d_z, h_prev)
        d_b += d_z
        d_x[t] = w_ih.T @ d_z
        d_h_next = w_hh.T @ d_z
        d_c_next = d_c * f
    return d_x, (d_w_ih, d_w_hh, d_b, d_b.copy())


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def ctc_loss_and_grad(logits, labels, blank=0):
    """Negative log-likelihood of ``labels`` under per-frame ``logits`` (time, classes), and its gradient
    with respect to the logits (softmax included), by the forward-backward recursions in log space."""
    log_probs = _log_softmax(logits)
    time = len(log_probs)
    extended = [blank]
    for label in labels:
        extended += [int(label), blank]
    states = len(extended)

    def may_skip(s, other):
        return extended[s] != blank and extended[s] != extended[other]

    log_alpha = np.full((time, states), -np.inf)
    log_alpha[0, :2] = log_probs[0, extended[:2]]
    for t in range(1, time):
        for s in range(states):
            a = log_alpha[t - 1, s]
            if s > 0:
                a = np.logaddexp(a, log_alpha[t - 1, s - 1])
            if s > 1 and may_skip(s, s - 2):
                a = np.logaddexp(a, log_alpha[t - 1, s - 2])
            log_alpha[t, s] = a + log_probs[t, extended[s]]
    log_beta = np.full((time, states), -np.inf)
    log_beta[-1, -2:] = log_probs[-1, extended[-2:]]
    for t in range(time - 2, -1, -1):
        for s in range(states):
            b = log_beta[t + 1, s]
            if s + 1 < states:
                b = np.logaddexp(b, log_beta[t + 1, s + 1])
            if s + 2 < states and may_skip(s, s + 2):
                b = np.logaddexp(b, log_beta[t + 1, s + 2])
            log_beta[t, s] = b + log_probs[t, extended[s]]
    log_likelihood = np.logaddexp(log_alpha[-1, -1], log_alpha[-1, -2])
    # Both recursions include frame t's emission: divide it out once.
    occupancy = np.zeros_like(log_probs)
    log_both = log_alpha + log_beta
    for k in set(extended):
        rows = [s for s in range(states) if extended[s] == k]
        occupancy[:, k] = np.exp(np.logaddexp.reduce(log_both[:, rows], axis=1) - log_probs[:, k] - log_likelihood)
    return -log_likelihood, np.exp(log_probs) - occupancy


def loss_and_grads(spec, weights, batch):
    """The suite's loss on ``batch`` and its gradient for every canonical weight, in float64."""
    from benchmarks import scenarios

    w = {name: value.astype(np.float64) for name, value in weights.items()}
    grads = {name: np.zeros_like(value) for name, value in w.items()}
    layers = [[(prefix, direction) for prefix, layer_, direction, _ in scenarios.lstm_prefixes(spec) if layer_ == layer]
              for layer in range(spec.layers)]
    total = 0.0
    for sample in range(spec.batch):
        length = int(batch.input_lengths[sample])
        x = batch.inputs[sample, :length].astype(np.float64)
        tapes = []
        for layer in layers:
            outputs, layer_tapes = [], []
            for prefix, direction in layer:
                source = x if direction == "fwd" else x[::-1]
                y, tape = lstm_forward(source, *(w[prefix + "." + g] for g in ("w_ih", "w_hh", "b_ih", "b_hh")))
                outputs.append(y if direction == "fwd" else y[::-1])
                layer_tapes.append(tape)
            tapes.append(layer_tapes)
            x = np.concatenate(outputs, axis=1)
        head = w["head.w"]
        d_x = np.zeros_like(x)
        if spec.loss == "ce":
            log_p = _log_softmax(head @ x[-1])
            target = int(batch.targets[sample])
            loss = -log_p[target]
            d_logits = np.exp(log_p)
            d_logits[target] -= 1.0
            grads["head.w"] += np.outer(d_logits, x[-1]) / spec.batch
            d_x[-1] = head.T @ d_logits
        else:
            labels = batch.targets[sample, :batch.target_lengths[sample]]
            loss, d_logits = ctc_loss_and_grad(x @ head.T, labels)
            grads["head.w"] += d_logits.T @ x / spec.batch
            d_x = d_logits @ head
        total += loss
        for layer, layer_tapes in reversed(list(zip(layers, tapes))):
            d_outputs = np.split(d_x, len(layer), axis=1)
            d_x = 0.0
            for (prefix, direction), tape, d_y in zip(layer, layer_tapes, d_outputs):
                names = [prefix + "." + g for g in ("w_ih", "w_hh", "b_ih", "b_hh")]
                d_in, d_ws = lstm_backward(d_y if direction == "fwd" else d_y[::-1], tape, w[names[0]], w[names[1]])
                d_x = d_x + (d_in if direction == "fwd" else d_in[::-1])
                for name, d_w in zip(names, d_ws):
                    grads[name] += d_w / spec.batch
    return total / spec.batch, grads
