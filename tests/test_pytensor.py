"""PyTensor-specific checks: its two backends train alike, the C mode links the mkl wheel's BLAS, numba's
generated sources stay out of the temporary directory, CTC is skipped with its reason, and the skip
without PyTensor. The generic checks are in test_implementations.py."""
import importlib
import os
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


def _loaded_libraries():
    with open("/proc/self/maps") as maps:
        return {os.path.basename(line.split()[-1]) for line in maps if "/" in line}


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux's /proc to see loaded libraries")
def test_c_mode_links_the_mkl_wheels_blas():
    # Without blas__ldflags PyTensor's C mode runs without a BLAS ("severely degraded"); the stack pins mkl.
    library = pytensor_impl.mkl_runtime()
    assert library is not None, "the mkl wheel is not installed: the pytensor stacks pin it"
    import pytensor

    assert "-lmkl_rt" in pytensor.config.blas__ldflags.split()
    product = pytensor_impl.matmul(64)
    product()
    assert os.path.basename(library) in _loaded_libraries()  # the compiled gemm really loaded MKL
    workload = common.build("pytensor", "scan", tiny_spec("1x320/CE-short"))
    assert "BLAS mkl " in workload.device


def test_blas_flags_link_through_the_cache_and_yield_to_the_users(monkeypatch):
    if pytensor_impl.mkl_runtime() is None:
        pytest.skip("the mkl wheel is not installed")
    flags = pytensor_impl.blas_ldflags().split()
    link_directory = flags[0][2:]
    assert os.path.realpath(os.path.join(link_directory, "libmkl_rt.so")) == pytensor_impl.mkl_runtime()
    assert not os.path.realpath(link_directory).startswith(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import pytensor

    monkeypatch.setattr(pytensor.config, "blas__ldflags", "")
    monkeypatch.setenv("PYTENSOR_FLAGS", "floatX=float32")
    pytensor_impl._link_blas()
    assert pytensor.config.blas__ldflags == pytensor_impl.blas_ldflags()
    pytensor.config.blas__ldflags = "-lopenblas"
    monkeypatch.setenv("PYTENSOR_FLAGS", "blas__ldflags=-lopenblas")
    pytensor_impl._link_blas()
    assert pytensor.config.blas__ldflags == "-lopenblas"  # the user's choice wins


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
