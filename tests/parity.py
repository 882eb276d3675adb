"""The parity check every implementation must pass: the numpy reference's loss and gradients."""
import numpy as np

import reference
from benchmarks import common, scenarios

LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-4
# Some gradients are exactly zero (the top backward direction's first step in CE sees h0 = 0): there a
# float32 framework may leave rounding noise, so a tensor passes if it is within GRAD_ATOL in norm too.
GRAD_ATOL = 1e-6


def check(framework, implementation, spec, batch=None, weights=None):
    """Build the implementation with the canonical weights, compare its loss and every gradient."""
    batch = scenarios.make_batch(spec) if batch is None else batch
    weights = scenarios.init_weights(spec) if weights is None else weights
    expected_loss, expected_grads = reference.loss_and_grads(spec, weights, batch)
    loss, grads = common.build(framework, implementation, spec, batch, weights).loss_and_grads()
    assert abs(loss - expected_loss) <= LOSS_RTOL * abs(expected_loss), (loss, expected_loss)
    assert sorted(grads) == sorted(expected_grads)
    for name, expected in expected_grads.items():
        assert grads[name].shape == expected.shape, name
        error = np.linalg.norm(grads[name] - expected)
        assert error <= GRAD_RTOL * np.linalg.norm(expected) + GRAD_ATOL, (name, error, np.linalg.norm(expected))
    return loss, grads
