"""Harness check: is asv's number for a cell right, and is it cheap? For one (framework, implementation,
scenario) in one stack's asv environment, three ways of timing the same checked training step:

  asv         asv's own runner (asv/benchmark.py run, as `asv run` spawns it: a fresh process per round,
              the benchmark's setup, warm-up and sampling), its median over the pooled rounds;
  tight loop  a fresh process: build, the suite's warm-up steps, then perf_counter around each step; median;
  study       the 2018 study's method: N steps from the first (default 500), the first 20% discarded, mean.

It prints each estimate, its ratio to the tight loop, its 95% confidence half-width, and the wall time each
method needed to reach a half-width of --half-width (default 2%): asv by whole rounds (it runs `rounds`
of them, 2 here; more rounds are what `-a rounds=K` would add), the tight loop and the study by the first
number of steps whose estimate is that tight. Wall times include each process's start, imports and build.
Medians' intervals are asv's own (asv_runner.statistics.quantile_ci, distribution-free); the mean's is
normal (+-1.96 s / sqrt(n), with n >= 30).

    python tools/harness_check.py --stack torch-2.13 pytorch nn.LSTM 1x320/CE-short
    python tools/harness_check.py --stack tensorflow-1.15 tensorflow LSTMBlockFusedCell 1x320/CE-short

Needs the stack's asv environment built (`make run STACKS=...`). Run it on a quiet machine: it times.
The --child mode is what it runs inside the stack's environment (Python 3.7 there: standard library only).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MARKER = "RNNBENCH_HARNESS "
STUDY_DISCARD = 0.2
MIN_MEAN_SAMPLES = 30


def child(framework, implementation, scenario, profile, steps):
    """In the stack's environment: build, then ``steps`` checked steps from the very first, each timed."""
    start = time.perf_counter()
    from benchmarks import common, scenarios

    spec = scenarios.spec(scenario, profile)
    workload = common.build(framework, implementation, spec)
    built = time.perf_counter() - start
    times, stamps = [], []
    for _ in range(steps):
        begin = time.perf_counter()
        common.checked_step(workload)
        end = time.perf_counter()
        times.append(end - begin)
        stamps.append(end - start)
    print(MARKER + json.dumps({"build_s": built, "times": times, "stamps": stamps, "device": workload.device,
                               "warmup_steps": spec.warmup_steps}))


def _run_json(command, env, cwd=None, marker=None, result_file=None):
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          env=env, cwd=cwd)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        sys.exit("harness_check: {} failed: {}".format(os.path.basename(command[1]), lines[-1] if lines else "?"))
    if result_file is not None:
        with open(result_file) as handle:
            return json.load(handle)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(marker):
            return json.loads(line[len(marker):])
    sys.exit("harness_check: no result from {}".format(" ".join(command)))


def asv_environment(stack, profile):
    """(python path, environment variables as asv sets them) of a built asv environment."""
    from asv import environment
    from asv.config import Config

    conf = Config.load(os.path.join(ROOT, "asv.conf.json"))
    for env in environment.get_environments(conf, None, verbose=False):
        if env.env_vars.get("RNNBENCH_STACK") == stack and env.env_vars.get("RNNBENCH_PROFILE") == profile:
            python = os.path.join(env._path, "bin", "python")
            if not os.path.exists(python):
                sys.exit("harness_check: asv environment {} is not built; run `make run STACKS={} PROFILE={}` "
                         "first".format(env.name, stack, profile))
            variables = dict(os.environ)
            variables.update(env.env_vars)
            variables["ASV_ENV_NAME"] = env.name
            return python, variables
    sys.exit("harness_check: no asv.conf.json entry runs stack {!r} at profile {!r}".format(stack, profile))


def asv_rounds(python, variables, framework, implementation, scenario, rounds, enough=lambda out: False):
    """asv's sampling of the cell: up to ``rounds`` fresh processes of asv's runner, stopping early once
    ``enough(rounds so far)``. [(samples, wall end)]."""
    import importlib

    import asv

    bench = importlib.import_module("benchmarks.bench_" + framework)
    names, implementations = bench.TrainingStep.params
    index = names.index(scenario) * len(implementations) + implementations.index(implementation)
    benchmark_id = "bench_{}.TrainingStep.time_step-{}".format(framework, index)
    runner = os.path.join(os.path.dirname(asv.__file__), "benchmark.py")
    out, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        result_file = os.path.join(scratch, "result.json")
        for _ in range(rounds):
            result = _run_json([python, runner, "run", os.path.join(ROOT, "benchmarks"), benchmark_id, "{}",
                                "None", result_file], variables, cwd=scratch, result_file=result_file)
            if not isinstance(result, dict):
                sys.exit("harness_check: asv skipped or failed the cell ({!r})".format(result))
            out.append((result["samples"], time.perf_counter() - start))
            if enough(out):
                break
    return out


def median_and_half_width(samples):
    """Median and relative 95% half-width of its interval, by asv's own estimator."""
    from asv_runner.statistics import quantile_ci

    median, (low, high) = quantile_ci(samples, 0.5, alpha_min=0.95)
    return median, (high - low) / 2.0 / median


def mean_and_half_width(samples):
    mean = statistics.mean(samples)
    return mean, 1.96 * statistics.stdev(samples) / len(samples) ** 0.5 / mean


def first_reaching(prefixes, target):
    """The first (estimate, half-width, wall, label) whose half-width is within target, else None."""
    for estimate, half_width, wall, label in prefixes:
        if half_width <= target:
            return estimate, half_width, wall, label
    return None


def tight_prefixes(run, from_step=10):
    times = run["times"][run["warmup_steps"]:]
    for n in range(from_step, len(times) + 1):
        median, half = median_and_half_width(times[:n])
        yield median, half, run["stamps"][run["warmup_steps"] + n - 1], "{} steps".format(n)


def study_prefixes(run, from_steps):
    kept_min = MIN_MEAN_SAMPLES
    for n in range(from_steps, len(run["times"]) + 1):
        kept = run["times"][int(round(n * STUDY_DISCARD)):n]
        if len(kept) < kept_min:
            continue
        mean, half = mean_and_half_width(kept)
        yield mean, half, run["stamps"][n - 1], "N={}".format(n)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework")
    parser.add_argument("implementation")
    parser.add_argument("scenario")
    parser.add_argument("--stack", help="env_matrix stack whose asv environment runs the cell")
    parser.add_argument("--profile", default="small")
    parser.add_argument("--half-width", type=float, default=0.02, help="target relative 95%% half-width")
    parser.add_argument("--study-steps", type=int, default=500)
    parser.add_argument("--max-rounds", type=int, default=6, help="asv rounds to try to reach the target")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.framework, args.implementation, args.scenario, args.profile, args.study_steps)
    if args.stack is None:
        parser.error("--stack is required")

    python, variables = asv_environment(args.stack, args.profile)
    cell = "{} {} {} [{}, stack {}]".format(args.framework, args.implementation, args.scenario, args.profile,
                                            args.stack)
    start = time.perf_counter()
    run = _run_json([python, os.path.abspath(__file__), "--child", "--profile", args.profile, "--study-steps",
                     str(args.study_steps), args.framework, args.implementation, args.scenario], variables,
                    marker=MARKER)
    loop_wall = time.perf_counter() - start
    # stamps are from the child's start (imports included); the process start is charged from here
    offset = loop_wall - run["stamps"][-1]
    run["stamps"] = [s + offset for s in run["stamps"]]

    from benchmarks import common

    default_rounds = common.TrainingStep.rounds
    def asv_estimate(done, count):
        """asv's median and its half-width over the first ``count`` rounds, and the wall time they took."""
        pooled = [s for samples, _ in done[:count] for s in samples]
        return median_and_half_width(pooled) + (done[count - 1][1], "{} round{}".format(count, "" if count == 1 else "s"))

    rounds = asv_rounds(python, variables, args.framework, args.implementation, args.scenario, args.max_rounds,
                        enough=lambda done: len(done) >= default_rounds and asv_estimate(done, len(done))[1] <= args.half_width)
    asv_default = asv_estimate(rounds, default_rounds)
    asv_reached = first_reaching((asv_estimate(rounds, k) for k in range(1, len(rounds) + 1)), args.half_width)
    tight = median_and_half_width(run["times"][run["warmup_steps"]:])
    tight_reached = first_reaching(tight_prefixes(run), args.half_width)
    kept = run["times"][int(round(len(run["times"]) * STUDY_DISCARD)):]
    study = mean_and_half_width(kept)
    study_reached = first_reaching(study_prefixes(run, 2), args.half_width)

    print("Harness check: {} on {}, Python {}".format(cell, run["device"], python))
    print("target: 95% half-width <= {:.1%}; study: {} steps, first {:.0%} discarded".format(
        args.half_width, args.study_steps, STUDY_DISCARD))
    print("| method | estimate (ms) | ratio to tight loop | 95% half-width | wall to reach target |")
    print("|---|---|---|---|---|")
    rows = [("asv median ({} rounds, asv's default)".format(default_rounds), asv_default[:2], asv_reached),
            ("tight loop median ({} steps)".format(len(run["times"]) - run["warmup_steps"]), tight, tight_reached),
            ("study mean ({} steps, {:.0%} discarded)".format(args.study_steps, STUDY_DISCARD), study, study_reached)]
    for label, (estimate, half_width), reached in rows:
        wall = "not reached" if reached is None else "{:.1f} s ({})".format(reached[2], reached[3])
        print("| {} | {:.3f} | {:.3f} | {:.2%} | {} |".format(label, estimate * 1e3, estimate / tight[0],
                                                             half_width, wall))
    within = abs(asv_default[0] / tight[0] - 1)
    cheaper = (asv_reached is not None and
               (study_reached is None or asv_reached[2] < study_reached[2]))
    print("asv within 3% of the tight loop: {} ({:+.1%}); asv cheaper than the study's method to reach the "
          "target: {}".format("yes" if within <= 0.03 else "NO", asv_default[0] / tight[0] - 1,
                              "yes" if cheaper else "NO"))


if __name__ == "__main__":
    main()
