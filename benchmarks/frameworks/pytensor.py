"""PyTensor implementations (Theano's maintained successor), each a short factory (spec, batch, weights) ->
common.Workload.

The model is what a Theano user wrote, in PyTensor: each layer and direction a ``pytensor.scan`` over time
of the cell in tensor operations (the parameters in the canonical layout: no mapping), the suite stacking
layers and reversing the backward direction within each sample's length; gradients by ``pytensor.grad``;
Adam as shared-variable updates of the compiled function (PyTensor ships no optimisers; these are
Lasagne's ``adam`` updates, which the Lasagne row runs on Theano). The function is compiled in the factory
(graph rewriting and C or LLVM code generation), so the timed step only runs it; its compile time is in
benchmarks.metrics' first step.

Implementations, one per backend (a compile mode):
  scan        mode CVM: C implementations of the ops, compiled with the machine's C++ compiler, run by
              the C VM; Theano's FAST_RUN. Named, not left to the default: PyTensor 3's default mode
              is NUMBA, which would make both rows the same backend.
  scan+numba  mode NUMBA: the graph compiled to LLVM through numba (tens of seconds on the first compile)
CTC: PyTensor has no CTC loss (Theano's warp-ctc op did not survive into it), and the suite does not
hand-write one, so the CTC scenario is skipped with that reason.

BLAS: the C mode calls a Fortran BLAS (``sgemm_`` and kin) that it links by ``blas__ldflags``. A pip
install has none PyTensor can find: numpy 2's bundled OpenBLAS renames its symbols, so PyTensor warns
that BLAS operations "will be severely degraded" and compiles its dot products without one. The stack
therefore installs Intel's ``mkl`` wheel (the first BLAS PyTensor's own detection looks for), and this
module sets ``blas__ldflags`` to its ``libmkl_rt`` before any function compiles, unless the user's
PYTENSOR_FLAGS set it. The wheel ships only ``libmkl_rt.so.N``, which ``-lmkl_rt`` cannot name, so the
flags point at a ``libmkl_rt.so`` symlink in this environment's cache (outside the repository) and add an
rpath to the wheel's directory. The numba mode does not use these flags: numba calls scipy's BLAS.
"""
import collections
import contextlib
import inspect
import os
import tempfile

import numpy as np

from .. import common, scenarios
from . import _theano

MKL_RUNTIME = "libmkl_rt.so"


def mkl_runtime():
    """Path of the runtime library the ``mkl`` wheel installed here (``<prefix>/lib/libmkl_rt.so.N``), or
    None."""
    import importlib.metadata  # here, not at the top: Python 3.7 (the legacy stacks) has none, and asv
    # imports this module in every environment

    try:
        files = importlib.metadata.distribution("mkl").files or ()
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name.startswith(MKL_RUNTIME):
            path = os.path.realpath(str(file.locate()))
            if os.path.isfile(path):
                return path
    return None


def blas_ldflags():
    """The ``blas__ldflags`` linking the mkl wheel's runtime, or None when the wheel is not installed."""
    library = mkl_runtime()
    if library is None:
        return None
    link_directory = os.path.join(_theano.cache_dir("pytensor"), "blas")
    _theano.point(os.path.join(link_directory, MKL_RUNTIME), library)
    return "-L{} -lmkl_rt -Wl,-rpath,{}".format(link_directory, os.path.dirname(library))


def _link_blas():
    """Set blas__ldflags to the mkl wheel's, unless the user's PYTENSOR_FLAGS set it. PyTensor computes
    its default lazily, on first use, so setting it after import (which tests and asv may have done
    before this module) still comes before any function compiles."""
    if "blas__ldflags" in _theano.parse_flags(os.environ.get("PYTENSOR_FLAGS", "")):
        return
    flags = blas_ldflags()
    if flags is not None:
        pytensor.config.blas__ldflags = flags


try:
    import pytensor
    import pytensor.tensor as pt
except ImportError as error:  # asv imports every module at discovery; require() turns this into a skip
    pytensor = pt = None
    _IMPORT_ERROR = "{} is not installed in this environment".format(error.name or error)
else:
    _IMPORT_ERROR = None
    # Python constants (Adam's betas, the learning rate) follow floatX: float32, as every framework here
    pytensor.config.floatX = "float32"
    _link_blas()

LEARNING_RATE = 1e-3
C_MODE = "CVM"  # C ops under the C VM (Theano's default); PyTensor 3 defaults to NUMBA
BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8
GATES = ("w_ih", "w_hh", "b_ih", "b_hh")
CTC_REASON = ("PyTensor has no CTC loss (Theano's warp-ctc op was not carried over), and the suite does not "
              "write one by hand")
_threads = None


def require():
    if pytensor is None:
        raise NotImplementedError(_IMPORT_ERROR)


def configure(threads):
    """PyTensor's C ops call numpy's BLAS (and numba its own threads): both read the thread count from the
    environment when first loaded, so it is set here for libraries not loaded yet and recorded."""
    global _threads
    _threads = int(threads)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(variable, str(_threads))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(_threads)
    except ImportError:
        pass
    return _threads


def linked_blas():
    """What the C mode's BLAS ops link: the library named by blas__ldflags, or "no BLAS"."""
    names = [flag[2:] for flag in pytensor.config.blas__ldflags.split() if flag.startswith("-l")]
    if not names:
        return "no BLAS"
    if "mkl_rt" in names:
        import importlib.metadata

        return "BLAS mkl {}".format(importlib.metadata.version("mkl"))
    return "BLAS " + " ".join(names)


def _describe(mode):
    linker = type(pytensor.compile.mode.get_mode(mode).linker).__name__
    # numba compiles its own calls into scipy's BLAS, so only the C mode names the linked one
    blas = ", " + linked_blas() if mode == C_MODE else ""
    return "cpu (pytensor {} {} mode: {}{}, {} threads)".format(pytensor.__version__, mode, linker, blas, _threads)


def _direction(x, p, hidden):
    """One layer and direction: scan over time-major x of the cell in canonical parameters."""

    def cell(x_t, h, c, w_ih, w_hh, b_ih, b_hh):
        gates = pt.dot(x_t, w_ih.T) + b_ih + pt.dot(h, w_hh.T) + b_hh
        i, f, g, o = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
        c = pt.sigmoid(f) * c + pt.sigmoid(i) * pt.tanh(g)
        return pt.sigmoid(o) * pt.tanh(c), c

    zeros = pt.zeros((x.shape[1], hidden), dtype="float32")
    options = dict(sequences=x, outputs_info=[zeros, zeros], non_sequences=[p[g] for g in GATES], strict=True)
    if "return_updates" in inspect.signature(pytensor.scan).parameters:  # the newer return signature
        outputs, _ = pytensor.scan(cell, return_updates=False, **options)
    else:
        (outputs, _), _ = pytensor.scan(cell, **options)
    return outputs


def _adam(params, grads):
    """Lasagne's adam updates (the Lasagne row's optimiser), as (shared, new value) pairs."""
    t = pytensor.shared(np.float32(0.0))
    t_next = t + 1
    rate = LEARNING_RATE * pt.sqrt(1 - BETA2 ** t_next) / (1 - BETA1 ** t_next)
    updates = [(t, t_next)]
    for param, grad in zip(params, grads):
        value = param.get_value(borrow=True)
        m = pytensor.shared(np.zeros_like(value))
        v = pytensor.shared(np.zeros_like(value))
        m_next = BETA1 * m + (1 - BETA1) * grad
        v_next = BETA2 * v + (1 - BETA2) * grad ** 2
        updates += [(m, m_next), (v, v_next), (param, param - rate * m_next / (pt.sqrt(v_next) + EPSILON))]
    return updates


@contextlib.contextmanager
def _sources_in_the_compiledir(mode):
    """PyTensor's NUMBA linker writes each generated function's source to a temporary file it never deletes
    (numba reads it back to cache and trace), while it compiles and again on the function's first call:
    thousands per test run. They go to the compile cache instead, which is outside the repository and per
    PyTensor version, rather than into the machine's /tmp."""
    if mode != "NUMBA":
        yield
        return
    sources = os.path.join(pytensor.config.compiledir, "numba-sources")
    os.makedirs(sources, exist_ok=True)
    previous, tempfile.tempdir = tempfile.tempdir, sources
    try:
        yield
    finally:
        tempfile.tempdir = previous


def _function(inputs, outputs, mode, **kwargs):
    with _sources_in_the_compiledir(mode):
        function = pytensor.function(inputs, outputs, mode=pytensor.compile.mode.get_mode(mode), **kwargs)
    if mode != "NUMBA":
        return function
    called = []

    def call(*args):
        # numba compiles on the first call, and writes more sources then; later calls go straight through
        if called:
            return function(*args)
        with _sources_in_the_compiledir(mode):
            result = function(*args)
        called.append(True)
        return result
    return call


def _scan(mode):
    def factory(spec, batch, weights):
        if spec.loss == "ctc":
            raise NotImplementedError(CTC_REASON)
        if mode == "NUMBA":
            try:
                import numba  # noqa: F401
            except ImportError:
                raise NotImplementedError("scan+numba needs numba, which is not installed in this environment")
        params = collections.OrderedDict(
            (prefix, collections.OrderedDict((g, pytensor.shared(weights[prefix + "." + g], name=prefix + "." + g))
                                             for g in GATES))
            for prefix, _, _, _ in scenarios.lstm_prefixes(spec))
        head = pytensor.shared(weights["head.w"], name="head.w")
        inputs = pt.tensor3("inputs", dtype="float32")  # time-major
        targets = pt.lvector("targets")
        # Fixed per workload, like the batch: where each frame of the backward direction reads from.
        reverse = scenarios.within_length_reversal(batch.input_lengths, spec.time)
        samples = np.arange(spec.batch)[None, :]
        x = inputs
        for layer in range(spec.layers):
            outputs = [_direction(x, params["lstm.l{}.fwd".format(layer)], spec.hidden)]
            if spec.bidirectional:
                backward = _direction(x[reverse, samples], params["lstm.l{}.bwd".format(layer)], spec.hidden)
                outputs.append(backward[reverse, samples])
            x = pt.concatenate(outputs, axis=2) if len(outputs) > 1 else outputs[0]
        log_probabilities = pt.special.log_softmax(pt.dot(x[-1], head.T), axis=-1)
        loss = -pt.mean(log_probabilities[pt.arange(targets.shape[0]), targets])
        shared = [p for group in params.values() for p in group.values()] + [head]
        grads = pytensor.grad(loss, shared)
        train = _function([inputs, targets], loss, mode, updates=_adam(shared, grads))
        # Host arrays, prepared once: time-major inputs, int64 targets.
        host = (np.ascontiguousarray(batch.inputs.transpose(1, 0, 2)), batch.targets)
        compiled = {}

        def phase(name):
            # The loss-only and gradient functions compile on first use (the metrics' phase warm-up).
            if name not in compiled:
                outputs = [loss] + (grads if name == "gradients" else [])
                compiled[name] = _function([inputs, targets], outputs, mode)
            return compiled[name](*host)

        def loss_and_grads():
            values = phase("gradients")
            names = [prefix + "." + g for prefix, group in params.items() for g in group] + ["head.w"]
            return float(values[0]), collections.OrderedDict(zip(names, (np.asarray(v) for v in values[1:])))

        return common.Workload(lambda: float(train(*host)), loss_and_grads, _describe(mode),
                               forward=lambda: float(phase("forward")[0]),
                               forward_backward=lambda: float(phase("gradients")[0]))
    return factory


def matmul(size):
    """One float32 (size x size) product in a compiled PyTensor function (C mode: the C BLAS gemm), into a
    shared variable: the peak reference."""
    rng = np.random.RandomState(0)
    a, b, out = (pytensor.shared(rng.uniform(size=(size, size)).astype(np.float32)) for _ in range(3))
    product = pytensor.function([], [], updates=[(out, pt.dot(a, b))], mode=pytensor.compile.mode.get_mode(C_MODE))
    return product


IMPLEMENTATIONS = collections.OrderedDict([
    ("scan", _scan(C_MODE)),
    ("scan+numba", _scan("NUMBA")),
])
