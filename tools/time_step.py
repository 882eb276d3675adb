"""Time one cell (framework, implementation, scenario, profile) outside asv: build, warm up, then a tight
perf_counter loop over the same checked training step asv times. Prints each step and the median.

    python tools/time_step.py pytorch nn.LSTM 4x320/CTC-long --profile seed --steps 3

Useful to try a cell quickly, and to cross-check asv's numbers. It warms up by the scenario's own count
(scenarios.Size.warmup_steps), as asv's setup does; ``--warmup-steps 0`` shows a fresh process's first
steps, to see how long a cell takes to settle; ``--flush-denormal`` (PyTorch only: ``torch.set_flush_denormal(True)``) runs the same steps with
subnormal floats flushed to zero, to tell whether they are what makes those steps slow:

    python tools/time_step.py pytorch nn.LSTM 1x320/CE-long --warmup-steps 0 --steps 16 [--flush-denormal]

On an Intel Xeon guest the first 8 steps of that cell took 510-830 ms and the rest 36-52 ms; flushed, 77 ms
and then 37-42 ms (README, "Warm-up steps per scenario", which gives the counts these measurements set).
PyTorch leaves subnormals alone by default, as the suite does.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common, scenarios  # noqa: E402


def flush_denormal(framework):
    """Flush subnormal floats to zero in this process, through the framework's own switch."""
    if framework != "pytorch":
        raise ValueError("--flush-denormal is PyTorch's torch.set_flush_denormal; {} has no such switch here"
                         .format(framework))
    import torch

    if not torch.set_flush_denormal(True):
        raise ValueError("this CPU cannot flush subnormal floats (torch.set_flush_denormal needs SSE3)")


def time_steps(framework, implementation, scenario, profile, steps, on_ready=None, warmup_steps=None):
    """(build and warm-up seconds, [seconds per timed step], workload). ``on_ready``: called with no arguments
    after the warm-up, just before the first timed step; ``warmup_steps``: the scenario's at the profile unless given."""
    start = time.perf_counter()
    workload = common.prepared_workload(framework, implementation, scenario, profile, warmup_steps)
    ready = time.perf_counter() - start
    if on_ready:
        on_ready()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        common.checked_step(workload)
        times.append(time.perf_counter() - start)
    return ready, times, workload


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=sorted(common.FRAMEWORKS))
    parser.add_argument("implementation")
    parser.add_argument("scenario", choices=scenarios.SCENARIO_NAMES)
    parser.add_argument("--profile", default=common.DEFAULT_PROFILE, choices=scenarios.PROFILES)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup-steps", type=int,
                        help="untimed steps before the timed ones (default: the suite's for the scenario)")
    parser.add_argument("--flush-denormal", action="store_true",
                        help="flush subnormal floats to zero first (PyTorch only)")
    args = parser.parse_args(argv)
    if args.warmup_steps is None:
        args.warmup_steps = scenarios.spec(args.scenario, args.profile).warmup_steps
    if args.steps < 1 or args.warmup_steps < 0:
        parser.error("--steps must be at least 1 and --warmup-steps at least 0")
    try:
        if args.flush_denormal:
            flush_denormal(args.framework)
        ready, times, workload = time_steps(args.framework, args.implementation, args.scenario, args.profile,
                                            args.steps, warmup_steps=args.warmup_steps)
    except (ValueError, NotImplementedError, ImportError) as error:
        sys.exit("time_step: {}".format(error))
    print("{} {} {} [{}] on {}{}: build + {} warm-up steps {:.1f} s".format(
        args.framework, args.implementation, args.scenario, args.profile, workload.device,
        ", subnormals flushed to zero" if args.flush_denormal else "", args.warmup_steps, ready))
    print("steps (ms): " + " ".join("{:.1f}".format(t * 1e3) for t in times))
    print("median: {:.1f} ms".format(statistics.median(times) * 1e3))


if __name__ == "__main__":
    main()
