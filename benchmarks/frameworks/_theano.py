"""Shared Theano set-up for every Theano user of the suite (Lasagne, Keras on the Theano backend).

API (stable; other modules rely on it):

  ``import_theano()``   Call it BEFORE importing theano, lasagne or keras-on-theano anywhere in the
                        process. It sets ``THEANO_FLAGS`` (see below), imports theano and returns the
                        module; it raises ``NotImplementedError("theano is not installed ...")`` where
                        theano cannot be imported (asv then skips), and ``RuntimeError`` if theano was
                        already imported without these flags (its configuration is fixed at import).
                        Idempotent: later calls return the same module.
  ``configure(threads)`` Pin the BLAS thread pool (OpenBLAS) to ``threads`` and return the count it
                        really uses. Callable at any time, before or after ``import_theano()``.
  ``ctc_unavailable_reason()``  None when theano.tensor.nnet.ctc (warp-ctc) can be used here, else a
                        one-line reason (for a NotImplementedError skip). Calls ``import_theano()``.
  ``threads_in_use()``  The BLAS pool's current thread count (what ``configure`` returns).
  ``defaults()``        The flags this module would set, as an ordered dict (for tests and reports).

Flags set (any flag the user already put in ``THEANO_FLAGS`` wins; flags from ``~/.theanorc`` are
overridden by these, as THEANO_FLAGS always overrides the config file):

  ``floatX=float32``, ``device=cpu``
  ``base_compiledir``  ``$XDG_CACHE_HOME/rnnbench/theano/<hash of sys.prefix>`` (default cache
                       ``~/.cache``): one compile cache per environment, outside the repository, so the
                       minutes of cold compilation are paid once per environment.
  ``blas.ldflags``     links the OpenBLAS that numpy's wheel bundles (``numpy/.libs/libopenblas*.so``):
                       ``-L<dir> -l<name>`` (Theano adds the matching rpath itself). Without it
                       Theano falls back to its slow NumPy C-API BLAS. The compiled modules then
                       load the very library numpy already loaded (same soname), so one thread
                       setting governs both. Left empty (Theano's own detection) if numpy bundles none.
  ``ctc.root``         a directory ``<cache>/warpctc`` with ``lib/libwarpctc.so`` -> the CPU library of
                       the installed ``warpctc_pytorch`` wheel (found without importing it or torch) and
                       ``include/ctc.h`` -> the project's header ``benchmarks/frameworks/warpctc/include/ctc.h``.
                       Not set when warpctc_pytorch is absent (then CTC is unavailable). Point the flag
                       at another warp-ctc build to use that one instead.

Threads: OpenBLAS reads its thread count when it loads, which is usually before this module runs
(numpy loads it). ``configure`` therefore calls ``openblas_set_num_threads`` on the loaded library and
also exports ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` for libraries and processes started later.
Limits: the count is capped by OpenBLAS's build-time maximum; Theano's own C loops (elementwise ops,
scan) run on one thread (Theano's default ``openmp=False``; its OpenMP elementwise kernels would only
start above 200,000 elements anyway); warp-ctc runs on one thread inside Theano (its op passes
``num_threads`` = 1 when compiled without OpenMP). The returned count is the BLAS pool's, or 1 when
no OpenBLAS is linked.
"""
import collections
import ctypes
import glob
import hashlib
import importlib.util
import os
import shlex
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CTC_HEADER = os.path.join(HERE, "warpctc", "include", "ctc.h")

_state = {"theano": None, "flags_set": False}


def cache_dir(framework="theano"):
    """This environment's cache directory for ``framework`` (outside the repository), created on demand."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha1(os.path.realpath(sys.prefix).encode("utf-8")).hexdigest()[:12]
    path = os.path.join(base, "rnnbench", framework, digest)
    os.makedirs(path, exist_ok=True)
    return path


def numpy_openblas():
    """Path of the OpenBLAS bundled in numpy's wheel (numpy/.libs), or None."""
    spec = importlib.util.find_spec("numpy")
    if spec is None or spec.origin is None:
        return None
    found = sorted(glob.glob(os.path.join(os.path.dirname(spec.origin), ".libs", "libopenblas*.so*")))
    return found[0] if found else None


def _blas_ldflags(library):
    directory, name = os.path.split(library)
    if not name.endswith(".so"):
        # -lNAME only finds libNAME.so; -l:FILE would defeat Theano's check that the -L directory holds it.
        return "-L{0} -l:{1}".format(directory, name)
    # Theano adds -Wl,-rpath,DIR for each -L DIR itself (a comma here would split THEANO_FLAGS).
    return "-L{0} -l{1}".format(directory, name[3:-3])


def warpctc_library():
    """Path of libwarpctc.so inside the installed warpctc_pytorch package (not imported), or None."""
    try:
        spec = importlib.util.find_spec("warpctc_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = os.path.join(location, "lib", "libwarpctc.so")
        if os.path.isfile(path):
            return path
    return None


def point(link, target):
    """Make ``link`` a symlink to ``target``, atomically (concurrent benchmark processes may race)."""
    if os.path.islink(link) and os.readlink(link) == target:
        return
    os.makedirs(os.path.dirname(link), exist_ok=True)
    temporary = tempfile.mktemp(prefix=".link-", dir=os.path.dirname(link))
    os.symlink(target, temporary)
    os.replace(temporary, link)


def _ctc_root(library):
    root = os.path.join(cache_dir(), "warpctc")
    point(os.path.join(root, "lib", "libwarpctc.so"), library)
    point(os.path.join(root, "include", "ctc.h"), CTC_HEADER)
    return root


def defaults():
    """The flags import_theano() sets unless the user set them."""
    flags = collections.OrderedDict()
    flags["floatX"] = "float32"
    flags["device"] = "cpu"
    flags["base_compiledir"] = os.path.join(cache_dir(), "compiledir")
    library = numpy_openblas()
    if library is not None:
        flags["blas.ldflags"] = _blas_ldflags(library)
    warpctc = warpctc_library()
    if warpctc is not None:
        flags["ctc.root"] = _ctc_root(warpctc)
    return flags


def parse_flags(flags):
    """THEANO_FLAGS split as Theano splits it (theano.configparser; PyTensor parses PYTENSOR_FLAGS the
    same way): comma-separated key=value, shell quoting allowed, later keys win."""
    splitter = shlex.shlex(flags, posix=True)
    splitter.whitespace = ","
    splitter.whitespace_split = True
    out = collections.OrderedDict()
    for item in splitter:
        if "=" in item:
            key, value = item.strip().split("=", 1)
            out[key] = value
    return out


def _set_flags():
    current = os.environ.get("THEANO_FLAGS", "")
    user = parse_flags(current)
    added = ["{}={}".format(k, v) for k, v in defaults().items() if k not in user]
    if added:
        os.environ["THEANO_FLAGS"] = ",".join(added + ([current] if current else []))
    _state["flags_set"] = True


def import_theano():
    """Set THEANO_FLAGS, import theano and return it (NotImplementedError when it is not installed)."""
    if _state["theano"] is not None:
        return _state["theano"]
    if sys.modules.get("theano") is not None and not _state["flags_set"]:
        raise RuntimeError("theano was imported before benchmarks.frameworks._theano.import_theano(): its "
                           "configuration (compile dir, BLAS, warp-ctc) is fixed at import; call "
                           "import_theano() first")
    if importlib.util.find_spec("theano") is None:
        raise NotImplementedError("theano is not installed in this environment")
    _set_flags()
    try:
        import theano
    except ImportError as error:
        raise NotImplementedError("theano is not installed in this environment ({})".format(error))
    _state["theano"] = theano
    return theano


def _loaded_openblas():
    library = numpy_openblas()
    if library is None:
        return None
    try:
        # The path numpy loaded it from: dlopen returns the already-loaded library, no second copy.
        handle = ctypes.CDLL(library)
        handle.openblas_get_num_threads  # noqa: B018 - raises AttributeError if it is not OpenBLAS
        return handle
    except (OSError, AttributeError):
        return None


def configure(threads):
    """Pin the BLAS thread pool to ``threads``; return the number of threads it really uses."""
    threads = int(threads)
    if threads < 1:
        raise ValueError("threads must be >= 1, got {}".format(threads))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    openblas = _loaded_openblas()
    if openblas is not None:
        openblas.openblas_set_num_threads(threads)
    return threads_in_use()


def threads_in_use():
    """The BLAS pool's current thread count (1 when no OpenBLAS is loaded)."""
    openblas = _loaded_openblas()
    return 1 if openblas is None else int(openblas.openblas_get_num_threads())


def ctc_unavailable_reason():
    """None if Theano's warp-ctc op can be built here, else why not (one line)."""
    theano = import_theano()
    if not theano.config.ctc.root:
        return ("warp-ctc is not installed in this environment (Theano's CTC needs warpctc_pytorch's "
                "libwarpctc.so, or THEANO_FLAGS=ctc.root=DIR with DIR/lib/libwarpctc.so)")
    from theano.tensor.nnet import ctc as theano_ctc

    if theano_ctc.ctc_available():
        return None
    message = str(theano_ctc.ctc_available.msg or "unknown reason").strip().splitlines()
    return "warp-ctc is unusable with Theano: {}".format(" ".join(message)[:500])


def matmul(size):
    """One float32 (size x size) product compiled by Theano, linked to the BLAS set up here, into a
    preallocated shared output: the peak reference of Lasagne and of Keras on Theano."""
    theano = import_theano()
    rng = np.random.RandomState(0)
    a, b, out = (theano.shared(rng.uniform(size=(size, size)).astype(np.float32)) for _ in range(3))
    product = theano.function([], [], updates=[(out, theano.tensor.dot(a, b))], name="matmul_peak")
    return product
