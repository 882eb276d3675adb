"""The FLOP model of one training step: every matrix product of the LSTM layers and the output layer.

One multiply-add counts as 2 FLOPs. Element-wise work (gate non-linearities, the cell update, the loss,
Adam) is left out: it is a few percent of the products at these sizes, and counting it would depend on
how each implementation fuses it. The counts are the same for every implementation of a scenario, so an
achieved FLOP/s is a step time expressed against the work the model needs, never against what an
implementation chose to compute:

- frames are the useful (sample, time step) positions: for CTC, the sum of the input lengths. An
  implementation that also computes on padding pays for it in time, not in credited FLOPs;
- forward, per frame of a layer and direction with input size I and hidden size H: the input product
  2*I*4H and the recurrent product 2*H*4H;
- backward, per frame: each product's weight gradient and its input gradient, 2x its forward count,
  except the gradients nothing needs: the bottom layer's input gradient (with respect to the data), and
  the recurrent product's input gradient at each sample's first frame (the initial state is a constant 0);
- the output layer (no bias) runs on the last frame of each sample (CE) or on every frame (CTC):
  2*D*C forward, 4*D*C backward, with D = H * directions and C classes.

Uses the standard library and scenarios only (it runs in every environment, Python 3.7 included).
"""
import collections

from . import scenarios

# forward and backward FLOPs of a step, and their sum
StepFlops = collections.namedtuple("StepFlops", "forward backward total")


def frames(spec, batch=None):
    """Useful (sample, time step) positions of the scenario's batch."""
    lengths = scenarios.input_lengths(spec) if batch is None else batch.input_lengths
    return int(sum(int(n) for n in lengths))


def step_flops(spec, batch=None):
    """The FLOPs of one training step of ``spec`` (forward, backward, total), per the model above."""
    n = frames(spec, batch)
    gates = 4 * spec.hidden
    forward = backward = 0
    for _, layer, _, in_size in scenarios.lstm_prefixes(spec):
        input_product = 2 * in_size * gates * n
        recurrent_product = 2 * spec.hidden * gates * n
        forward += input_product + recurrent_product
        state_gradient = 2 * spec.hidden * gates * (n - spec.batch)
        backward += (1 if layer == 0 else 2) * input_product + recurrent_product + state_gradient
    width = spec.hidden * len(scenarios.directions(spec))
    head_rows = spec.batch if spec.loss == "ce" else n
    head_product = 2 * width * spec.classes * head_rows
    forward += head_product
    backward += 2 * head_product
    return StepFlops(forward, backward, forward + backward)


def matmul_flops(size):
    """FLOPs of one (size x size) @ (size x size) product: the peak reference."""
    return 2 * size ** 3
