"""Time one cell (framework, implementation, scenario, profile) outside asv: build, warm up, then a tight
perf_counter loop over the same checked training step asv times. Prints each step and the median.

    python tools/time_step.py pytorch nn.LSTM 4x320/CTC-long --profile seed --steps 3

Useful to try a cell quickly, and to cross-check asv's numbers.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common, scenarios  # noqa: E402


def time_steps(framework, implementation, scenario, profile, steps, on_ready=None):
    """(build and warm-up seconds, [seconds per timed step], workload). ``on_ready``: called with no arguments
    after the warm-up, just before the first timed step."""
    start = time.perf_counter()
    workload = common.prepared_workload(framework, implementation, scenario, profile)
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
    args = parser.parse_args(argv)
    try:
        ready, times, workload = time_steps(args.framework, args.implementation, args.scenario, args.profile,
                                            args.steps)
    except (ValueError, NotImplementedError) as error:
        sys.exit("time_step: {}".format(error))
    print("{} {} {} [{}] on {}: build + {} warm-up steps {:.1f} s".format(
        args.framework, args.implementation, args.scenario, args.profile, workload.device,
        common.WARMUP_STEPS, ready))
    print("steps (ms): " + " ".join("{:.1f}".format(t * 1e3) for t in times))
    print("median: {:.1f} ms".format(statistics.median(times) * 1e3))


if __name__ == "__main__":
    main()
