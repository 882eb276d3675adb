"""What a step time alone does not say: forward and backward apart, the first step (build, trace and compile
included), achieved FLOP/s and its fraction of the machine's peak, the device's peak memory.

Every cell is measured in a fresh process (``python -m benchmarks.metrics cell FRAMEWORK IMPLEMENTATION
SCENARIO``), so that its first step pays for its own compiles and imports and for nothing another cell
left behind. In that process:

- first step: seconds from the factory call (batch and weights already made) to the end of the first
  checked training step: building, tracing, compiling, the first run;
- then the rest of the warm-up, and each phase warmed up once (Theano and Keras compile their loss-only
  functions on first use), then sampled in turn with the same loop (``sample``): forward (forward and
  loss), forward+backward (gradients computed, no update) and the whole step. Backward is
  forward+backward minus forward, as a graph framework cannot run its backward pass alone;
- FLOP/s: the FLOP model (``benchmarks.flops``) over the median step.

The peak is measured in its own fresh process of the same environment (``... peak FRAMEWORK``): float32
square products in that framework, on the same device with the same threads, the size doubled from 1024
until one product takes 50 ms, then sampled like a phase.

The asv classes (``common.StepMetrics``) run all of a framework's cells once per environment in their
``setup_cache``, so a cell costs one build, not one per metric.
"""
import json
import math
import os
import subprocess
import sys
import time

from . import common, flops, scenarios

MARKER = "RNNBENCH_METRICS "  # prefixes the child's result line: frameworks print to stdout too
QUICK_VAR = "RNNBENCH_METRICS_QUICK"  # "1": one sample per phase (tests, asv --quick dry runs), not for results
# Comma-separated scenario names: setup_cache measures only their cells, and the others skip with that reason
# (a look at one scenario, or a smoke run, without every cell's process). Unset: every scenario.
SCENARIOS_VAR = "RNNBENCH_METRICS_SCENARIOS"
MIN_SAMPLES = 5
MAX_SAMPLES = 50
SAMPLE_BUDGET_S = 10.0        # per phase, once MIN_SAMPLES are taken
CELL_TIMEOUT_S = 3600.0       # one cell's process: build, compile, warm-up and three phases
PEAK_START_SIZE = 1024
PEAK_MAX_SIZE = 16384
PEAK_MIN_SECONDS = 0.05       # a product at least this long: above per-call overheads


def sample(run, min_samples=MIN_SAMPLES, max_samples=MAX_SAMPLES, budget_s=SAMPLE_BUDGET_S):
    """Seconds of ``run()`` call by call: at least min_samples, then more until budget_s or max_samples
    (one sample, whatever is asked, when RNNBENCH_METRICS_QUICK=1)."""
    if os.environ.get(QUICK_VAR) == "1":
        min_samples, max_samples = 1, 1
    times = []
    start = time.perf_counter()
    while len(times) < max_samples and (len(times) < min_samples or time.perf_counter() - start < budget_s):
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    return times


def quartiles(times):
    """Median and quartiles (linear interpolation, as numpy's default) of a list of seconds."""
    ordered = sorted(times)

    def quantile(q):
        position = q * (len(ordered) - 1)
        low = int(math.floor(position))
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {"median": quantile(0.5), "q25": quantile(0.25), "q75": quantile(0.75), "samples": len(ordered)}


def _checked(run):
    def checked():
        loss = run()
        if not math.isfinite(loss):
            raise common.NonFiniteLossError("a phase gave a non-finite loss ({!r}); no time is reported".format(loss))
    return checked


def measure_cell(framework, implementation, spec):
    """All metrics of one cell (a scenarios.Spec), in this process (call it in a fresh one: see the module's
    docstring)."""
    batch = scenarios.make_batch(spec)
    weights = scenarios.init_weights(spec)
    module = common.framework_module(framework)
    start = time.perf_counter()
    workload = common.build(framework, implementation, spec, batch, weights)
    common.checked_step(workload)
    first_step = time.perf_counter() - start
    for _ in range(spec.warmup_steps - 1):
        common.checked_step(workload)
    phases = [("forward", workload.forward), ("forward_backward", workload.forward_backward),
              ("step", lambda: common.checked_step(workload))]
    result = {"device": workload.device, "threads": module.configure(common.configured_threads()),
              "first_step_s": first_step}
    for name, run in phases:
        if run is None:
            continue
        run = _checked(run) if name != "step" else run
        run()  # warm-up of this phase (loss-only functions compile on first use)
        result[name + "_s"] = quartiles(sample(run))
    model = flops.step_flops(spec, batch)
    result["flops"] = model._asdict()
    result["gflops"] = model.total / result["step_s"]["median"] / 1e9
    if "forward_s" in result and "forward_backward_s" in result:
        result["backward_median_s"] = result["forward_backward_s"]["median"] - result["forward_s"]["median"]
    result["device_peak_bytes"] = workload.device_peak_bytes()
    return result


def measure_peak(framework):
    """GFLOP/s of a float32 square product in ``framework``, on the suite's device with its threads."""
    module = common.framework_module(framework)
    threads = module.configure(common.configured_threads())
    size = PEAK_START_SIZE
    while True:
        product = module.matmul(size)
        product()  # warm-up: allocation, first kernel, Theano's compile
        begin = time.perf_counter()
        product()
        if time.perf_counter() - begin >= PEAK_MIN_SECONDS or size >= PEAK_MAX_SIZE:
            break
        size *= 2
    seconds = quartiles(sample(product))
    return {"size": size, "threads": threads, "seconds": seconds,
            "gflops": flops.matmul_flops(size) / seconds["median"] / 1e9}


def _isolated(args, timeout):
    """Run ``python -m benchmarks.metrics ARGS`` in a fresh process of this environment: its result dict,
    {"skipped": reason} or {"error": last line of its stderr}."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", __package__ + ".metrics"] + list(args)
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              universal_newlines=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after {:.0f} s: {}".format(timeout, " ".join(args))}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return {"error": "{} exited with {}: {}".format(" ".join(args), done.returncode, lines[-1] if lines else "")}


def measure_framework(framework, scenario_names, implementations, profile, timeout=CELL_TIMEOUT_S):
    """Every cell of a framework, each in its own process, and the peak: what StepMetrics' setup_cache
    returns. {"peak": ..., "cells": {"scenario|implementation": ...}} or {"skipped": reason}."""
    try:
        common.framework_module(framework)
    except NotImplementedError as reason:
        return {"skipped": str(reason)}
    chosen = selected_scenarios(scenario_names)
    cache = {"peak": _isolated(["peak", framework], timeout), "cells": {}}
    for scenario in scenario_names:
        for implementation in implementations:
            if scenario in chosen:
                cell = _isolated(["cell", framework, implementation, scenario, "--profile", profile], timeout)
            else:
                cell = {"skipped": "not measured in this run: {}={}".format(SCENARIOS_VAR, os.environ[SCENARIOS_VAR])}
            cache["cells"][cell_key(scenario, implementation)] = cell
    return cache


def selected_scenarios(scenario_names):
    """The scenarios RNNBENCH_METRICS_SCENARIOS names (all when unset); an unknown name is an error."""
    value = os.environ.get(SCENARIOS_VAR, "").strip()
    if not value:
        return list(scenario_names)
    chosen = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in scenario_names]
    if unknown:
        raise ValueError("{}={!r}: unknown scenario {}; choose from {}".format(
            SCENARIOS_VAR, value, ", ".join(unknown), ", ".join(scenario_names)))
    return chosen


def cell_key(scenario, implementation):
    return "{}|{}".format(scenario, implementation)


def cell_of(cache, scenario, implementation):
    """One cell's metrics from measure_framework's result, with the peak it is compared with: raises
    NotImplementedError(reason) for a skipped cell (asv: skip) and RuntimeError for a failed one."""
    if "skipped" in cache:
        raise NotImplementedError(cache["skipped"])
    cell = cache["cells"].get(cell_key(scenario, implementation))
    if cell is None:
        raise RuntimeError("no metrics were measured for {} {}".format(scenario, implementation))
    if "skipped" in cell:
        raise NotImplementedError(cell["skipped"])
    if "error" in cell:
        raise RuntimeError(cell["error"])
    cell = dict(cell)
    peak = cache["peak"]
    cell["peak_gflops"] = peak.get("gflops", float("nan"))
    cell["peak_fraction"] = cell["gflops"] / cell["peak_gflops"] if "gflops" in peak else float("nan")
    return cell


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Measure one cell's metrics, or the framework's peak, in this "
                                                 "process; prints one result line.")
    parser.add_argument("what", choices=("cell", "peak"))
    parser.add_argument("framework", choices=sorted(common.FRAMEWORKS))
    parser.add_argument("implementation", nargs="?")
    parser.add_argument("scenario", nargs="?", choices=scenarios.SCENARIO_NAMES)
    parser.add_argument("--profile", default=common.DEFAULT_PROFILE, choices=scenarios.PROFILES)
    args = parser.parse_args(argv)
    if args.what == "cell" and (args.implementation is None or args.scenario is None):
        parser.error("cell needs an implementation and a scenario")
    try:
        if args.what == "peak":
            result = measure_peak(args.framework)
        else:
            result = measure_cell(args.framework, args.implementation, scenarios.spec(args.scenario, args.profile))
    except NotImplementedError as reason:
        result = {"skipped": str(reason)}
    sys.stdout.flush()
    print(MARKER + json.dumps(result))


if __name__ == "__main__":
    main()
