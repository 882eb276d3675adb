"""The FLOP model: hand-counted at the study's sizes, and against PyTorch's own FLOP counter on a cell loop
(every matrix product of a forward and backward pass, as autograd runs them)."""
import pytest

from conftest import tiny_spec
from benchmarks import common, flops, scenarios


def test_one_layer_cross_entropy_by_hand():
    spec = scenarios.spec("1x320/CE-short", "seed")  # 64 x 100 x 123, 320 hidden, 10 classes
    frames, gates = 64 * 100, 4 * 320
    forward = 2 * (123 + 320) * gates * frames + 2 * 320 * 10 * 64
    # no input gradient for the data; no state gradient at each sample's first step
    backward = 2 * 123 * gates * frames + 2 * 320 * gates * frames + 2 * 320 * gates * (frames - 64) \
        + 2 * 2 * 320 * 10 * 64
    assert flops.step_flops(spec) == (forward, backward, forward + backward)


def test_ctc_counts_useful_frames_and_a_head_on_every_frame():
    spec = scenarios.spec("4x320/CTC-long", "seed")
    frames = flops.frames(spec)
    assert frames == sum(scenarios.input_lengths(spec)) < spec.batch * spec.time
    model = flops.step_flops(spec)
    head = 2 * 640 * 59 * frames
    lstm_forward = 2 * 2 * 4 * 320 * frames * ((123 + 320) + 3 * (640 + 320))
    assert model.forward == lstm_forward + head
    assert 1.9 < model.backward / model.forward < 2.0  # about twice the forward, less what nothing needs


def test_matmul_flops():
    assert flops.matmul_flops(1024) == 2 * 1024 ** 3


@pytest.mark.parametrize("scenario", ["1x320/CE-short", "4x320/CE-long"])
def test_model_matches_torch_flop_counter_on_the_cell_loop(scenario):
    flop_counter = pytest.importorskip("torch.utils.flop_counter")
    spec = tiny_spec(scenario)
    workload = common.build("pytorch", "LSTMCell-basic", spec)
    with flop_counter.FlopCounterMode(display=False) as counter:
        workload.forward_backward()
    assert counter.get_total_flops() == flops.step_flops(spec).total
