"""PyTensor-specific checks: its two backends train alike, numba's generated sources stay out of the
temporary directory, CTC is skipped with its reason, and the skip without PyTensor. The generic checks are in test_implementations.py."""
import importlib
import sys

import numpy as np
import pytest

from conftest import tiny_spec
from benchmarks import common

pytest.importorskip("pytensor")
from benchmarks.frameworks import pytensor as pytensor_impl  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    pytensor_impl.configure(1)


@pytest.mark.parametrize("scenario", ["1x320/CE-short", "4x320/CE-long"])
def test_backends_agree_after_training(scenario):
    spec = tiny_spec(scenario)
    workloads = [common.build("pytensor", name, spec) for name in pytensor_impl.IMPLEMENTATIONS]
    trajectories = [[w.step() for _ in range(5)] for w in workloads]
    np.testing.assert_allclose(trajectories[1], trajectories[0], rtol=1e-5)


@pytest.mark.parametrize("name, linker", [("scan", "VMLinker"), ("scan+numba", "NumbaLinker")])
def test_each_row_runs_the_backend_it_names(name, linker):
    # PyTensor 3's default mode is NUMBA: the C row must name its mode, or both rows would run numba.
    workload = common.build("pytensor", name, tiny_spec("1x320/CE-short"))
    assert ": {},".format(linker) in workload.device
    if name == "scan":
        import pytensor

        assert pytensor.compile.mode.get_mode(pytensor_impl.C_MODE).linker.c_thunks


def test_numba_leaves_no_sources_in_the_temporary_directory(tmp_path, monkeypatch):
    # PyTensor's NUMBA linker keeps every generated source as a temporary file: they go to its compile cache.
    pytest.importorskip("numba")
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    workload = common.build("pytensor", "scan+numba", tiny_spec("1x320/CE-short"))
    workload.step()
    workload.step()
    workload.loss_and_grads()
    workload.forward()
    assert sorted(p.name for p in scratch.iterdir()) == []
    assert tempfile.tempdir == str(scratch)  # restored after each compile


@pytest.mark.parametrize("name", list(pytensor_impl.IMPLEMENTATIONS))
def test_ctc_is_skipped_with_its_reason(name):
    with pytest.raises(NotImplementedError, match="PyTensor has no CTC loss"):
        common.build("pytensor", name, tiny_spec("4x320/CTC-long"))


def test_missing_pytensor_is_a_skip_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytensor", None)
    try:
        module = importlib.reload(pytensor_impl)
        with pytest.raises(NotImplementedError, match="pytensor is not installed"):
            module.require()
    finally:
        monkeypatch.undo()
        importlib.reload(pytensor_impl)
