"""The numpy reference is itself checked against central finite differences."""
import numpy as np
import pytest

import reference
from benchmarks import scenarios


def _numeric_grad(spec, weights, batch, name, index, eps=1e-6):
    def loss_with(delta):
        shifted = {k: v.astype(np.float64) for k, v in weights.items()}
        shifted[name][index] += delta
        return reference.loss_and_grads(spec, shifted, batch)[0]
    return (loss_with(eps) - loss_with(-eps)) / (2 * eps)


def test_reference_gradients_match_finite_differences(spec):
    batch = scenarios.make_batch(spec)
    weights = scenarios.init_weights(spec)
    _, grads = reference.loss_and_grads(spec, weights, batch)
    rng = np.random.RandomState(0)
    for name in weights:
        index = tuple(rng.randint(n) for n in weights[name].shape)
        numeric = _numeric_grad(spec, weights, batch, name, index)
        assert grads[name][index] == pytest.approx(numeric, rel=1e-5, abs=1e-8), name


def test_ctc_of_a_single_frame_is_minus_its_log_probability():
    logits = np.array([[0.3, 1.2, -0.5]])
    loss, grad = reference.ctc_loss_and_grad(logits, [1])
    log_p = logits[0] - np.log(np.exp(logits[0]).sum())
    assert loss == pytest.approx(-log_p[1])
    assert grad[0] == pytest.approx(np.exp(log_p) - np.eye(3)[1])
