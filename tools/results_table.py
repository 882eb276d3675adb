"""Markdown table of the stored asv results: median ms per training step, with the interquartile range
as a share of the median, for one machine and profile (the newest commit that has results).

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
    """The newest result set of ``machine`` whose environment carries ``profile``, as {framework:
    Results}; exits with a one-line message if there is none."""
    if not os.path.isdir(os.path.join(results_dir, machine)):
        sys.exit("results_table: no results for machine {!r} in {}".format(machine, results_dir))
    found = [r for r in asv_results.iter_results_for_machine(results_dir, machine)
             if r.env_vars.get("RNNBENCH_PROFILE") == profile]
    if not found:
        sys.exit("results_table: machine {!r} has no results of profile {!r}".format(machine, profile))
    newest = max(r.date for r in found)
    return [r for r in found if r.date == newest]


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


def markdown(result_sets):
    table = {}
    scenarios, implementations = [], []
    for framework, implementation, scenario, value, spread, _ in rows(result_sets):
        name = "{} {}".format(framework, implementation)
        implementations += [] if name in implementations else [name]
        scenarios += [] if scenario in scenarios else [scenario]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            table[name, scenario] = "n/a"  # skipped (e.g. cuDNN on a CPU) or failed: no time
        else:
            table[name, scenario] = "{:.1f} ms ±{:.0f}%".format(value * 1e3, 100 * spread) if spread is not None \
                else "{:.1f} ms".format(value * 1e3)
    lines = ["| implementation | " + " | ".join(scenarios) + " |", "|---" * (len(scenarios) + 1) + "|"]
    for name in implementations:
        lines.append("| {} | {} |".format(name, " | ".join(table.get((name, s), "-") for s in scenarios)))
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
