"""TensorFlow 2-specific checks: XLA and the plain while_loop train alike, the
contrib cells' skip reasons on TF 2 and the TF 2 implementations' skip on TF 1. The generic checks are in
test_implementations.py."""
import numpy as np
import pytest

from conftest import tiny_spec
from benchmarks import common

tf = pytest.importorskip("tensorflow")
from benchmarks.frameworks import _tf2, tensorflow as tfm  # noqa: E402

pytestmark = pytest.mark.skipif(int(tf.__version__.split(".")[0]) < 2, reason="TensorFlow 2 checks")


@pytest.fixture(autouse=True)
def one_thread():
    tfm.configure(1)


def _version():
    return tuple(int(part) for part in tf.__version__.split(".")[:2])


# Where XLA cannot compile the bidirectional while_loop's gradient: TF 2.3 (a shape argument of
# StridedSliceGrad it cannot fold to a constant); TF 2.7 and later compile it. (TF 2.5's XLA crashes on every
# scenario: XLA_CRASHES; no stack has 2.4 or 2.6.)
XLA_BIDIRECTIONAL_SKIPS = _version() < (2, 7)
XLA_CRASHES = _version() in _tf2.XLA_CRASHES


def _expect_xla_crash_skip(spec):
    with pytest.raises(NotImplementedError, match=r"XLA on TensorFlow [\d.]+ crashes the process"):
        common.build("tensorflow", "while_loop+XLA", spec)


@pytest.mark.parametrize("scenario", ["1x320/CE-short", "4x320/CE-long"])
def test_xla_and_the_plain_while_loop_agree_after_training(scenario):
    # Same parameters (the canonical two biases), same batch, same Adam: one trajectory. (BlockLSTM keeps
    # one summed bias, on which Adam's steps differ, so it is checked by parity only.)
    spec = tiny_spec(scenario)
    if XLA_CRASHES:
        return _expect_xla_crash_skip(spec)
    if spec.bidirectional and XLA_BIDIRECTIONAL_SKIPS:
        with pytest.raises(NotImplementedError, match="cannot compile this step: a shape argument of StridedSliceGrad"):
            common.build("tensorflow", "while_loop+XLA", spec)
        return
    workloads = [common.build("tensorflow", name, spec) for name in ("while_loop", "while_loop+XLA")]
    trajectories = [[w.step() for _ in range(5)] for w in workloads]
    np.testing.assert_allclose(trajectories[1], trajectories[0], rtol=1e-5)


@pytest.mark.parametrize("name", ["LSTMBlockCell", "LSTMBlockFusedCell"])
def test_contrib_cells_skip_with_their_reason(name):
    with pytest.raises(NotImplementedError, match="tf.contrib"):
        common.build("tensorflow", name, tiny_spec("1x320/CE-short"))


def test_tf2_implementations_skip_on_tf1_with_their_reason(monkeypatch):
    monkeypatch.setattr(tfm.tf, "__version__", "1.15.5")
    with pytest.raises(NotImplementedError, match="needs TensorFlow 2"):
        common.build("tensorflow", "BlockLSTM", tiny_spec("1x320/CE-short"))


def test_xla_ctc_runs_or_skips_with_the_kernel_xla_lacks():
    # TF 2.15's tf.nn.ctc_loss (dense labels) uses InplaceAdd, which XLA cannot compile; TF 2.16+ compiles it.
    spec = tiny_spec("4x320/CTC-long")
    if XLA_CRASHES:
        return _expect_xla_crash_skip(spec)
    if _version() < (2, 16):
        with pytest.raises(NotImplementedError, match=r"cannot compile this step: no XLA_\w+_JIT kernel for .*InplaceAdd"):
            common.build("tensorflow", "while_loop+XLA", spec)
    else:
        assert np.isfinite(common.build("tensorflow", "while_loop+XLA", spec).step())


def test_the_studys_lstm_cell_runs_where_tf2_keeps_v1_cells_and_skips_where_not():
    spec = tiny_spec("4x320/CTC-long")  # the stacked bidirectional layers, written out without contrib
    if not hasattr(tf.compat.v1.nn, "rnn_cell") or not hasattr(tf.compat.v1.nn.rnn_cell, "LSTMCell"):
        with pytest.raises(NotImplementedError, match="tf.compat.v1.nn.rnn_cell"):
            common.build("tensorflow", "LSTMCell", spec)
    else:
        assert np.isfinite(common.build("tensorflow", "LSTMCell", spec).step())
