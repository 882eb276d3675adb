"""Lasagne and the shared Theano set-up: the weight mapping, the compile cache outside the repository,
numpy's OpenBLAS really linked, the thread pool, the warp-ctc root and header, the skips. The generic
checks (parity, training, CTC lengths, non-finite loss) are in test_implementations.py."""
import hashlib
import importlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, tiny_spec
from benchmarks import common, scenarios
from benchmarks.frameworks import _theano
from benchmarks.frameworks import lasagne as lasagne_impl

needs_lasagne = pytest.mark.skipif(lasagne_impl.lasagne is None, reason="lasagne is not installed here")
needs_warpctc = pytest.mark.skipif(_theano.warpctc_library() is None, reason="warpctc_pytorch is not installed here")


def _run(code, **env):
    """Run ``code`` in a fresh interpreter of this environment (theano's flags are fixed per process)."""
    environ = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", **env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=600)


def _inside(path, directory):
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([path, directory]) == directory


# --- weight mapping (numpy only: runs everywhere) ---------------------------------------------------

def test_canonical_weights_map_to_lasagne_gates_and_back():
    spec = tiny_spec("4x320/CTC-long")
    weights = scenarios.init_weights(spec)
    h = spec.hidden
    for prefix, _, _, in_size in scenarios.lstm_prefixes(spec):
        gates = lasagne_impl.to_lasagne(weights, prefix, h)
        assert list(gates) == ["ingate", "forgetgate", "cell", "outgate"]
        for k, (w_in, w_hid, b) in enumerate(gates.values()):
            assert w_in.shape == (in_size, h) and w_hid.shape == (h, h) and b.shape == (h,)
            assert w_in.dtype == w_hid.dtype == b.dtype == np.float32
            # Lasagne computes x W_in: column j of W_in is row k*H+j of the canonical w_ih.
            np.testing.assert_array_equal(w_in, weights[prefix + ".w_ih"][k * h:(k + 1) * h].T)
            np.testing.assert_array_equal(w_hid, weights[prefix + ".w_hh"][k * h:(k + 1) * h].T)
            np.testing.assert_array_equal(
                b, (weights[prefix + ".b_ih"] + weights[prefix + ".b_hh"])[k * h:(k + 1) * h])
        back = lasagne_impl.to_canonical(gates, prefix)
        np.testing.assert_array_equal(back[prefix + ".w_ih"], weights[prefix + ".w_ih"])
        np.testing.assert_array_equal(back[prefix + ".w_hh"], weights[prefix + ".w_hh"])
        # One bias in Lasagne: its gradient is the gradient of both canonical biases.
        np.testing.assert_array_equal(back[prefix + ".b_ih"], back[prefix + ".b_hh"])
        assert back[prefix + ".b_ih"] is not back[prefix + ".b_hh"]


def test_flags_outside_the_repository_and_per_environment():
    flags = _theano.defaults()
    assert flags["floatX"] == "float32" and flags["device"] == "cpu"
    assert not _inside(flags["base_compiledir"], ROOT)
    assert _theano.cache_dir() in flags["base_compiledir"]
    prefix_hash = hashlib.sha1(os.path.realpath(sys.prefix).encode("utf-8")).hexdigest()[:12]
    assert os.path.basename(_theano.cache_dir()) == prefix_hash  # one cache per environment
    if "ctc.root" in flags:
        assert not _inside(flags["ctc.root"], ROOT)


def test_user_flags_win(monkeypatch):
    monkeypatch.setenv("THEANO_FLAGS", "floatX=float64,base_compiledir=/tmp/elsewhere")
    monkeypatch.setitem(_theano._state, "flags_set", False)
    _theano._set_flags()
    parsed = _theano.parse_flags(os.environ["THEANO_FLAGS"])  # later keys win, as in Theano
    assert parsed["floatX"] == "float64" and parsed["base_compiledir"] == "/tmp/elsewhere"
    assert parsed["device"] == "cpu"
    if _theano.numpy_openblas() is not None:
        assert "openblas" in parsed["blas.ldflags"]


def test_without_warpctc_no_ctc_root_is_set(monkeypatch):
    monkeypatch.setattr(_theano, "warpctc_library", lambda: None)
    assert "ctc.root" not in _theano.defaults()


# --- Theano itself ----------------------------------------------------------------------------------

@needs_lasagne
def test_theano_uses_the_flags_and_numpys_openblas():
    theano = _theano.import_theano()
    assert theano.config.floatX == "float32" and theano.config.device == "cpu"
    assert not _inside(theano.config.base_compiledir, ROOT)
    library = _theano.numpy_openblas()
    assert library is not None, "numpy's wheel bundles no OpenBLAS here"
    assert theano.config.blas.ldflags.startswith("-L" + os.path.dirname(library))
    assert "-lopenblas" in theano.config.blas.ldflags

    t = theano.tensor
    a, b, v, c = t.fmatrix(), t.fmatrix(), t.fvector(), t.fmatrix()
    f = theano.function([a, b, v, c], [t.dot(a, b), t.dot(a, v), c + t.outer(v, v)])
    ops = {type(node.op).__name__ for node in f.maker.fgraph.toposort()}
    assert {"Dot22", "CGemv", "CGer"} <= ops, ops
    ones = np.ones((4, 4), np.float32)
    out = f(ones, ones, np.ones(4, np.float32), ones)
    np.testing.assert_array_equal(out[0], 4 * ones)


@needs_lasagne
def test_compiled_blas_modules_link_numpys_openblas():
    theano = _theano.import_theano()
    t = theano.tensor
    a, b = t.fmatrix(), t.fmatrix()
    theano.function([a, b], t.dot(a, b))(np.ones((3, 3), np.float32), np.ones((3, 3), np.float32))
    if shutil.which("ldd") is None:
        pytest.skip("no ldd here")
    linked = []
    for directory, _, files in os.walk(theano.config.compiledir):
        if "mod.cpp" in files and any(f.endswith(".so") for f in files):
            with open(os.path.join(directory, "mod.cpp")) as source:
                if "sgemm_" not in source.read():
                    continue
            so = next(f for f in files if f.endswith(".so"))
            linked.append(subprocess.check_output(["ldd", os.path.join(directory, so)], universal_newlines=True))
    assert linked, "no compiled BLAS module in the compile cache"
    library = os.path.realpath(_theano.numpy_openblas())
    assert all(os.path.basename(library) in out for out in linked)
    assert any(library in out or os.path.dirname(library) in out for out in linked)


@needs_lasagne
def test_no_numpy_c_api_blas_fallback_and_no_import_order_mistake():
    ok = _run("from benchmarks.frameworks import _theano; t = _theano.import_theano(); import theano.tensor.blas; "
              "print(t.config.blas.ldflags)")
    assert ok.returncode == 0, ok.stderr
    assert "NumPy C-API" not in ok.stderr and "openblas" in ok.stdout
    late = _run("import theano; from benchmarks.frameworks import _theano; _theano.import_theano()")
    assert late.returncode != 0 and "imported before" in late.stderr


@needs_lasagne
def test_configure_pins_the_openblas_pool():
    try:
        assert lasagne_impl.configure(1) == 1
        assert _theano.threads_in_use() == 1
        assert os.environ["OMP_NUM_THREADS"] == os.environ["OPENBLAS_NUM_THREADS"] == "1"
        two = lasagne_impl.configure(2)
        assert two == _theano.threads_in_use() and 1 <= two <= 2
    finally:
        lasagne_impl.configure(1)
    with pytest.raises(ValueError):
        _theano.configure(0)


# --- warp-ctc -----------------------------------------------------------------------------------------

@needs_warpctc
def test_warpctc_root_points_at_the_projects_header_and_the_wheels_library():
    root = _theano.defaults()["ctc.root"]
    header = os.path.join(root, "include", "ctc.h")
    library = os.path.join(root, "lib", "libwarpctc.so")
    assert os.path.realpath(header) == os.path.realpath(os.path.join(ROOT, "benchmarks", "frameworks", "warpctc",
                                                                     "include", "ctc.h"))
    assert os.path.realpath(library) == os.path.realpath(_theano.warpctc_library())
    assert "warpctc_pytorch" in os.path.realpath(library)


@needs_warpctc
@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")
def test_the_header_declares_the_librarys_abi(tmp_path):
    # Compiled as Theano compiles its op (C++), linked to the wheel's library: a one-label example whose
    # loss is known. Uniform scores over 3 symbols, 2 frames, label [1]: paths 11, 01, 10 -> p = 3/9.
    root = _theano.defaults()["ctc.root"]
    source = tmp_path / "check.cpp"
    source.write_text(u"""
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "ctc.h"
static int run(int label, int blank) {
    ctcOptions options;
    std::memset(&options, 0, sizeof(options));
    options.loc = CTC_CPU;
    options.num_threads = 1;
    options.blank_label = blank;
    float activations[6] = {0, 0, 0, 0, 0, 0}, gradients[6], cost = -1;
    int labels[1] = {label}, label_lengths[1] = {1}, input_lengths[1] = {2};
    size_t bytes = 0;
    if (get_workspace_size(label_lengths, input_lengths, 3, 1, options, &bytes) != CTC_STATUS_SUCCESS) return 2;
    void *workspace = std::malloc(bytes);
    ctcStatus_t status = compute_ctc_loss(activations, gradients, labels, label_lengths, input_lengths, 3, 1,
                                          &cost, workspace, options);
    std::printf("%d|%s|%.6f|%.6f\\n", get_warpctc_version(), ctcGetStatusString(status), cost,
                gradients[0] + gradients[1] + gradients[2]);
    std::free(workspace);
    return status == CTC_STATUS_SUCCESS ? 0 : 1;
}
int main() {
    /* blank 0 as Theano uses it; then blank 2 with label 0, which only works if blank_label is read */
    return run(1, 0) || run(0, 2);
}
""")
    binary = str(tmp_path / "check")
    subprocess.check_call(["g++", "-Wall", "-Werror", str(source), "-I", os.path.join(root, "include"),
                           "-L", os.path.join(root, "lib"), "-lwarpctc", "-Wl,-rpath," + os.path.join(root, "lib"),
                           "-o", binary])
    lines = subprocess.check_output([binary], universal_newlines=True).strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        version, status, cost, grad_sum = line.split("|")
        assert int(version) >= 1 and status.lower().startswith("no error")
        assert float(cost) == pytest.approx(np.log(3.0), rel=1e-5)
        assert float(grad_sum) == pytest.approx(0.0, abs=1e-6)  # gradient w.r.t. pre-softmax scores
    # The header is plain C as well.
    if shutil.which("gcc") is not None:
        subprocess.check_call(["gcc", "-std=c11", "-Wall", "-Werror", "-fsyntax-only", "-x", "c",
                               os.path.join(root, "include", "ctc.h")])


@needs_lasagne
@needs_warpctc
def test_theano_finds_warpctc():
    assert _theano.ctc_unavailable_reason() is None


@needs_lasagne
def test_ctc_scenario_skips_without_warpctc():
    # THEANO_FLAGS=ctc.root= (user wins): what an environment without warpctc_pytorch sees.
    result = _run("from benchmarks import common, scenarios\n"
                  "spec = scenarios.spec('4x320/CTC-long', 'small')._replace(hidden=4, features=3, batch=3, "
                  "time=7, min_length=5, labels=2)\n"
                  "try:\n"
                  "    common.build('lasagne', 'LSTMLayer', spec)\n"
                  "except NotImplementedError as reason:\n"
                  "    print('SKIP', reason)\n",
                  THEANO_FLAGS="ctc.root=")
    assert result.returncode == 0, result.stderr
    assert "SKIP Lasagne's CTC scenario uses warp-ctc: warp-ctc is not installed" in result.stdout


# --- the module without its framework ----------------------------------------------------------------

def test_missing_lasagne_is_a_skip_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "lasagne", None)
    try:
        module = importlib.reload(lasagne_impl)
        assert module.lasagne is None
        from benchmarks import bench_lasagne
        with pytest.raises(NotImplementedError, match="lasagne is not installed in this environment"):
            bench_lasagne.TrainingStep().setup("1x320/CE-short", "LSTMLayer")
    finally:
        monkeypatch.undo()
        importlib.reload(lasagne_impl)


def test_missing_theano_is_a_skip_not_a_crash(monkeypatch):
    if _theano._state["theano"] is not None:
        monkeypatch.setitem(_theano._state, "theano", None)
        monkeypatch.setitem(_theano._state, "flags_set", True)
    monkeypatch.setitem(sys.modules, "theano", None)
    with pytest.raises(NotImplementedError, match="theano is not installed in this environment"):
        _theano.import_theano()


def test_asv_module_lists_the_implementations():
    from benchmarks import bench_lasagne
    assert bench_lasagne.TrainingStep.framework == "lasagne"
    assert bench_lasagne.TrainingStep.params == [scenarios.SCENARIO_NAMES, ["LSTMLayer"]]
    assert common.FRAMEWORKS["lasagne"] == "benchmarks.frameworks.lasagne"
