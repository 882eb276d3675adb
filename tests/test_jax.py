"""JAX-specific checks: the mapping to Flax's per-gate parameters and back, Flax's bidirectional reversal
within each length, the thread pin and the skip without JAX. The generic checks (parity in every
scenario, training, CTC lengths, non-finite loss, phases) are in test_implementations.py."""
import importlib
import sys

import numpy as np
import pytest

from conftest import tiny_spec
from benchmarks import common, scenarios

pytest.importorskip("jax")
from benchmarks.frameworks import jax as jax_impl  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    jax_impl.configure(1)


def test_flax_gate_mapping_round_trips():
    spec = tiny_spec("4x320/CE-long")
    weights = scenarios.init_weights(spec)
    prefix, hidden = "lstm.l1.bwd", spec.hidden
    params = jax_impl.flax_cell_params(prefix, weights)
    assert sorted(params) == ["hf", "hg", "hi", "ho", "if", "ig", "ii", "io"]
    # gate blocks i, f, g, o of the canonical rows, transposed; one bias: b_ih + b_hh, on the hidden side
    np.testing.assert_array_equal(params["if"]["kernel"], weights[prefix + ".w_ih"][hidden:2 * hidden].T)
    np.testing.assert_array_equal(params["hg"]["kernel"], weights[prefix + ".w_hh"][2 * hidden:3 * hidden].T)
    np.testing.assert_allclose(params["ho"]["bias"], (weights[prefix + ".b_ih"] + weights[prefix + ".b_hh"])[3 * hidden:])
    assert "bias" not in params["ii"]
    back = jax_impl.canonical_from_flax(prefix, params)
    np.testing.assert_array_equal(back[prefix + ".w_ih"], weights[prefix + ".w_ih"])
    np.testing.assert_array_equal(back[prefix + ".w_hh"], weights[prefix + ".w_hh"])
    np.testing.assert_array_equal(back[prefix + ".b_ih"], back[prefix + ".b_hh"])


def _nnx_missing():
    """Why this Flax cannot run the NNX rows (older Flax), or None."""
    try:
        jax_impl._nnx_module()
    except NotImplementedError as error:
        return str(error)
    return None


def test_flax_cells_agree_after_training(spec):
    # Same parameters (Flax's per-gate Dense layers, one bias), same batch, same Adam: linen and NNX, plain
    # and optimised cells stay on one trajectory. (lax.scan keeps the canonical two biases, on which Adam's
    # steps differ, so it is checked by parity only.) An older Flax has linen's cells only.
    names = [name for name in jax_impl.IMPLEMENTATIONS
             if name != "lax.scan" and not (name.startswith("nnx.") and _nnx_missing())]
    workloads = [common.build("jax", name, spec) for name in names]
    trajectories = [[w.step() for _ in range(5)] for w in workloads]
    np.testing.assert_allclose(trajectories[1:], [trajectories[0]] * (len(workloads) - 1), rtol=1e-5)


@pytest.mark.parametrize("name", [name for name in jax_impl.IMPLEMENTATIONS if name.startswith("nnx.")])
def test_nnx_rows_run_or_skip_with_what_this_flax_lacks(name):
    import flax

    missing = _nnx_missing()
    if missing is None:
        assert np.isfinite(common.build("jax", name, tiny_spec("1x320/CE-short")).step())
    else:
        assert missing.startswith("Flax {} has no ".format(flax.__version__))
        with pytest.raises(NotImplementedError, match="Flax .* has no (flax.nnx|nnx.RNN)"):
            common.build("jax", name, tiny_spec("1x320/CE-short"))


def test_configure_reports_the_pinned_thread_count():
    assert jax_impl.configure(1) == jax_impl.configure(2) >= 1  # fixed once XLA has started
    assert common.build("jax", "lax.scan", tiny_spec("1x320/CE-short")).device.startswith(("cpu", "gpu"))


def test_missing_jax_is_a_skip_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)
    try:
        module = importlib.reload(jax_impl)
        assert module.jax is None
        with pytest.raises(NotImplementedError, match="jax is not installed"):
            module.require()
    finally:
        monkeypatch.undo()
        importlib.reload(jax_impl)
