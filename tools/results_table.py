"""Markdown table of the stored asv results: median ms per training step, with the interquartile range
as a share of the median, for one machine and profile (per stack, the newest commit that has results).

    python tools/results_table.py --machine amd-epyc-2cpu --profile small

Every figure in the README comes from here, so it can be traced to a results file.
"""
import argparse
import ast
import itertools
import math
import os
import sys

from asv import results as asv_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARK = "bench_{}.TrainingStep.time_step"


def load(machine, profile, results_dir=os.path.join(ROOT, "results")):
    """Per environment (stack) of ``machine`` that carries ``profile``, its newest result set; exits with
    a one-line message if there is none."""
    if not os.path.isdir(os.path.join(results_dir, machine)):
        sys.exit("results_table: no results for machine {!r} in {}".format(machine, results_dir))
    newest = {}
    for result in asv_results.iter_results_for_machine(results_dir, machine):
        if result.env_vars.get("RNNBENCH_PROFILE") != profile:
            continue
        if result.env_name not in newest or result.date > newest[result.env_name].date:
            newest[result.env_name] = result
    if not newest:
        sys.exit("results_table: machine {!r} has no results of profile {!r}".format(machine, profile))
    return [newest[name] for name in sorted(newest)]


def rows(result_sets):
    """(framework, implementation, scenario, median s, IQR / median, environment) per measured cell."""
    for result in result_sets:
        for key in result.get_all_result_keys():
            if not key.endswith(".TrainingStep.time_step"):
                continue
            framework = key.split(".")[0][len("bench_"):]
            values = result.get_result_value(key, result.get_result_params(key))
            stats = result.get_result_stats(key, result.get_result_params(key))
            params = itertools.product(*result.get_result_params(key))
            for (scenario, implementation), value, stat in zip(params, values, stats):
                spread = None
                if value is not None and stat and stat.get("q_25") is not None:
                    spread = (stat["q_75"] - stat["q_25"]) / value
                # asv stores parameter values as Python literals ("'nn.LSTM'")
                yield (framework, ast.literal_eval(implementation), ast.literal_eval(scenario), value, spread,
                       result.env_name)


def _stack(env_name):
    return env_name.rsplit("RNNBENCH_STACK", 1)[-1]


def markdown(result_sets):
    """One row per (stack, framework, implementation) whose framework ran in that stack's environment."""
    table, measured = {}, set()
    scenarios, names = [], []
    for framework, implementation, scenario, value, spread, env_name in rows(result_sets):
        name = (_stack(env_name), framework, implementation)
        names += [] if name in names else [name]
        scenarios += [] if scenario in scenarios else [scenario]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            table[name, scenario] = "n/a"  # skipped (e.g. cuDNN on a CPU) or failed: no time
        else:
            measured.add(name[:2])
            table[name, scenario] = "{:.1f} ms ±{:.0f}%".format(value * 1e3, 100 * spread) if spread is not None \
                else "{:.1f} ms".format(value * 1e3)
    lines = ["| stack | implementation | " + " | ".join(scenarios) + " |", "|---" * (len(scenarios) + 2) + "|"]
    for name in names:
        if name[:2] in measured:  # a framework absent from a stack's environment has no row there
            lines.append("| {} | {} {} | {} |".format(
                name[0], name[1], name[2], " | ".join(table.get((name, s), "-") for s in scenarios)))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", required=True)
    parser.add_argument("--profile", default="small")
    args = parser.parse_args(argv)
    result_sets = load(args.machine, args.profile)
    print(markdown(result_sets))
    for result in result_sets:
        print("\ncommit {} · environment {} · median of the samples, ±: interquartile range / median".format(
            result.commit_hash[:8], result.env_name))


if __name__ == "__main__":
    main()
