"""Shared set-up of the suite: the profile and thread switches, the implementation interface, the
per-process workload cache and the checked training step.

A framework module (``benchmarks.frameworks.<name>``) provides:
  ``require()``          raise NotImplementedError(reason) if the framework cannot run here;
  ``configure(threads)`` pin the framework's thread pool, return the thread count it now uses;
  ``IMPLEMENTATIONS``    an ordered mapping: implementation name -> factory(spec, batch, weights) -> Workload.
"""
import abc
import importlib
import math
import os

from . import scenarios

PROFILE_VAR = "RNNBENCH_PROFILE"
THREADS_VAR = "RNNBENCH_THREADS"
DEFAULT_PROFILE = "small"

# Framework key -> module. One module per framework, written for its oldest and newest releases alike,
# so that one benchmark name follows a framework across its releases.
FRAMEWORKS = {
    "pytorch": "benchmarks.frameworks.pytorch",
    "tensorflow": "benchmarks.frameworks.tensorflow",
    "keras": "benchmarks.frameworks.keras",
    "lasagne": "benchmarks.frameworks.lasagne",
    "jax": "benchmarks.frameworks.jax",
    "pytensor": "benchmarks.frameworks.pytensor",
}
STACK_VAR = "RNNBENCH_STACK"
STACKS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "env_matrix", "stacks.json")


class NonFiniteLossError(RuntimeError):
    """A step produced a NaN or infinite loss: its time must not be reported."""


class Workload(object):
    """What every implementation factory returns, so that one harness times them all.

    step():           one training step on the scenario's batch: host batch to the device, zero grads,
                      forward, loss, backward, Adam update, device synchronised; returns the loss (float).
    loss_and_grads(): forward, loss and backward without an update; returns (loss, {canonical name:
                      gradient as a numpy array}) for the parity check against the numpy reference.
    device:           where it runs, e.g. "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3)".
    The phases of the step, timed apart by benchmarks.metrics (same batch, same host-to-device copy, synchronised,
    nothing updated; None where an implementation cannot run a phase alone):
    forward():          forward and loss, as in a training step (autograd recording where the framework
                        records); returns the loss;
    forward_backward(): forward, loss and every gradient, left on the device; returns the loss.
    device_peak_bytes:  () -> the device's peak allocated bytes since the workload was built, or None on a
                        host-only device.
    """

    def __init__(self, step, loss_and_grads, device, forward=None, forward_backward=None, device_peak_bytes=None):
        self.step = step
        self.loss_and_grads = loss_and_grads
        self.device = device
        self.forward = forward
        self.forward_backward = forward_backward
        self.device_peak_bytes = device_peak_bytes or (lambda: None)


def current_profile():
    """The size profile chosen by RNNBENCH_PROFILE (default: small).

    Under asv, the profile must also be part of the environment's name (asv.conf.json puts it in the
    matrix's env_nobuild), so that reduced sizes are never filed under the full sizes' identity.
    """
    profile = os.environ.get(PROFILE_VAR, DEFAULT_PROFILE)
    if profile not in scenarios.PROFILES:
        raise ValueError("{}={!r} is not a profile; choose from {}".format(
            PROFILE_VAR, profile, ", ".join(scenarios.PROFILES)))
    env_name = os.environ.get("ASV_ENV_NAME")
    if env_name is not None and PROFILE_VAR + profile not in env_name:
        raise RuntimeError("asv environment {!r} does not carry {}={}; run it through the asv.conf.json "
                           "matrix so the results name their profile".format(env_name, PROFILE_VAR, profile))
    return profile


def configured_threads():
    """RNNBENCH_THREADS, or every CPU this process may run on."""
    value = os.environ.get(THREADS_VAR)
    if value is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not value.isdigit() or int(value) < 1:
        raise ValueError("{}={!r} must be a positive integer".format(THREADS_VAR, value))
    return int(value)


def served_frameworks():
    """(stack name, the frameworks it serves) for the env_matrix stack this process runs in (RNNBENCH_STACK),
    or None outside one. A stack measures only what it serves: keras-3-torch has torch installed, but torch's
    own implementations are the torch stacks' to measure."""
    name = os.environ.get(STACK_VAR)
    if name is None or not os.path.exists(STACKS_FILE):
        return None
    import json

    with open(STACKS_FILE) as f:
        for stack in json.load(f)["stacks"]:
            if stack.get("name") == name:
                return name, stack["frameworks"]
    raise ValueError("{}={!r} is not a stack of {}".format(STACK_VAR, name, STACKS_FILE))


def framework_module(framework, require=True):
    """Import a framework module and (require=True) check that the framework is installed and served by
    the running stack (NotImplementedError: skip)."""
    if framework not in FRAMEWORKS:
        raise ValueError("unknown framework {!r}; choose from {}".format(framework, ", ".join(sorted(FRAMEWORKS))))
    module = importlib.import_module(FRAMEWORKS[framework])
    if require:
        _require(framework, module)
    return module


def _require(framework, module):
    served = served_frameworks()
    if served is not None and framework not in served[1]:
        raise NotImplementedError("stack {} does not serve {} (it serves {})".format(
            served[0], framework, ", ".join(served[1])))
    module.require()


def build(framework, implementation, spec, batch=None, weights=None):
    """Build one implementation's workload for ``spec`` on the scenario's batch and initial weights."""
    module = framework_module(framework, require=False)
    if implementation not in module.IMPLEMENTATIONS:  # a typo is an error even where the framework is absent
        raise ValueError("unknown {} implementation {!r}; choose from {}".format(
            framework, implementation, ", ".join(module.IMPLEMENTATIONS)))
    _require(framework, module)
    batch = scenarios.make_batch(spec) if batch is None else batch
    scenarios.check_batch(spec, batch)
    weights = scenarios.init_weights(spec) if weights is None else weights
    module.configure(configured_threads())
    return module.IMPLEMENTATIONS[implementation](spec, batch, weights)


def checked_step(workload):
    """Run one training step; fail loudly on a non-finite loss."""
    loss = workload.step()
    if not math.isfinite(loss):
        raise NonFiniteLossError("training step gave a non-finite loss ({!r}); no time is reported".format(loss))
    return loss


_workload_cache = {}


def prepared_workload(framework, implementation, scenario, profile=None, warmup_steps=None):
    """The built and warmed-up workload (``warmup_steps`` steps, the scenario's own at the profile unless
    given: see scenarios.Size), memoised per process.

    asv_runner reruns ``setup`` before every sample; building a model and warming it up each time would
    cost more than the samples, so one workload (the latest) is kept per benchmark process.
    """
    profile = current_profile() if profile is None else profile
    spec = scenarios.spec(scenario, profile)
    warmup_steps = spec.warmup_steps if warmup_steps is None else warmup_steps
    key = (framework, implementation, scenario, profile, warmup_steps)
    if key not in _workload_cache:
        _workload_cache.clear()  # one benchmark per process: free the last model before building the next
        workload = build(framework, implementation, spec)
        for _ in range(warmup_steps):
            checked_step(workload)
        _workload_cache[key] = workload
    return _workload_cache[key]


class TrainingStep(abc.ABC):
    """Base of each framework's asv class: one training step per (scenario, implementation).

    Subclasses name their framework and list its implementations in ``params`` (static lists: asv
    discovers them once, in the first environment). Abstract, so asv does not collect it itself.
    """

    param_names = ["scenario", "implementation"]
    number = 1              # one step per sample: setup is memoised, the scenario's warm-up is done in setup
    # 3..20 samples per process, stopping after 30 s: cheap cells get 20 samples against a shared
    # machine's noise, while the slowest seed-size cells stop at 3.
    repeat = (3, 20, 30.0)
    rounds = 2
    warmup_time = 0.0
    # Per process. The slowest cell, seed-size packed nn.LSTM with CTC on 2 CPU cores, takes about 6 minutes
    # a step (its backward is quadratic in sequence length): build, 2 warm-ups and 3 samples fit in an hour.
    timeout = 3600.0

    @property
    @abc.abstractmethod
    def framework(self):
        """Key of FRAMEWORKS."""

    def setup(self, scenario, implementation):
        self.workload = prepared_workload(self.framework, implementation, scenario)

    def time_step(self, scenario, implementation):
        checked_step(self.workload)

    def peakmem_step(self, scenario, implementation):
        # asv's host peak: the resident set's maximum over the process, build and warm-up included
        checked_step(self.workload)


class StepMetrics(abc.ABC):
    """Base of each framework's asv class of metrics beyond the step time (benchmarks.metrics), per
    (scenario, implementation): forward, backward, first step, achieved GFLOP/s, fraction of the peak.

    Each subclass defines ``setup_cache`` itself, returning ``self.measure_all()``: asv keys a cache by where
    setup_cache is defined, so one defined here would be shared by every framework's class. It measures
    every cell of the framework once per environment, each in a fresh process; the track methods read it.
    """

    param_names = ["scenario", "implementation"]
    # For setup_cache, which measures every cell: a cell's process may take up to an hour (metrics.CELL_TIMEOUT_S).
    timeout = 6 * 3600.0

    @property
    @abc.abstractmethod
    def framework(self):
        """Key of FRAMEWORKS."""

    def measure_all(self):
        from . import metrics

        return metrics.measure_framework(self.framework, self.params[0], self.params[1], current_profile())

    def setup(self, cache, scenario, implementation):
        from . import metrics

        self.cell = metrics.cell_of(cache, scenario, implementation)

    def _phase_ms(self, name):
        return self.cell[name + "_s"]["median"] * 1e3 if name + "_s" in self.cell else float("nan")

    def track_forward(self, cache, scenario, implementation):
        return self._phase_ms("forward")

    def track_backward(self, cache, scenario, implementation):
        return self.cell.get("backward_median_s", float("nan")) * 1e3

    def track_first_step(self, cache, scenario, implementation):
        return self.cell["first_step_s"]

    def track_gflops(self, cache, scenario, implementation):
        return self.cell["gflops"]

    def track_peak_fraction(self, cache, scenario, implementation):
        return 100.0 * self.cell["peak_fraction"]

    def track_matmul_peak(self, cache, scenario, implementation):
        return self.cell["peak_gflops"]

    def track_device_peak_memory(self, cache, scenario, implementation):
        peak = self.cell.get("device_peak_bytes")
        return float("nan") if peak is None else peak / 2.0 ** 20

    track_forward.unit = track_backward.unit = "ms"
    track_first_step.unit = "s"
    track_gflops.unit = track_matmul_peak.unit = "GFLOP/s"
    track_peak_fraction.unit = "% of matmul peak"
    track_device_peak_memory.unit = "MiB"


class Runtime(abc.ABC):
    """Base of each framework's record of how it ran: the thread count it was pinned to."""

    @property
    @abc.abstractmethod
    def framework(self):
        """Key of FRAMEWORKS."""

    def setup(self):
        self.threads = framework_module(self.framework).configure(configured_threads())

    def track_threads(self):
        return self.threads

    track_threads.unit = "threads"
