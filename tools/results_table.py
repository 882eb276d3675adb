"""Markdown table of the stored asv results: median ms per training step, with the interquartile range
as a share of the median, for one machine and profile (per stack and benchmark, the newest commit that has
a result for it: a run of some benchmarks only, e.g. `--bench StepMetrics`, leaves the others' figures);
with --metrics, every metric of each cell (benchmarks.metrics, asv's peakmem).

    python tools/results_table.py --machine amd-epyc-2cpu --profile small [--metrics] [--exclude-timeline]
    python tools/results_table.py --machine amd-epyc-2cpu --releases pytorch
    python tools/results_table.py --machine amd-epyc-family26-model2-2cpu-small --versus amd-epyc-2cpu-small

--exclude-timeline leaves out the stacks marked ``timeline`` in env_matrix/stacks.json (releases that fill a
framework's history); --releases FRAMEWORK gives that framework's rows only, its releases oldest first;
--versus OTHER sets each cell beside the same cell (stack, implementation, scenario) of machine OTHER, with
the ratio of the two medians, for the cells both machines measured.

Every figure in the README comes from here, so it can be traced to a results file.
"""
import argparse
import ast
import collections
import itertools
import math
import os
import re
import sys

from asv import results as asv_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(machine, profile, results_dir=os.path.join(ROOT, "results")):
    """Every result set of ``machine`` that carries ``profile``, by environment (stack) and, within one, oldest
    first, so that `cells` lets a newer result of a benchmark replace an older one; exits with a one-line
    message if there is none."""
    if not os.path.isdir(os.path.join(results_dir, machine)):
        sys.exit("results_table: no results for machine {!r} in {}".format(machine, results_dir))
    found = [result for result in asv_results.iter_results_for_machine(results_dir, machine)
             if result.env_vars.get("RNNBENCH_PROFILE") == profile]
    if not found:
        sys.exit("results_table: machine {!r} has no results of profile {!r}".format(machine, profile))
    return sorted(found, key=lambda result: (result.env_name, result.date))


STEP = "TrainingStep.time_step"
# The metrics table's columns: (heading, benchmark, format of its value, scale applied to asv's value).
METRICS = [
    ("forward", "StepMetrics.track_forward", "{:.1f} ms", 1),
    ("backward", "StepMetrics.track_backward", "{:.1f} ms", 1),
    ("first step", "StepMetrics.track_first_step", "{:.1f} s", 1),
    ("GFLOP/s", "StepMetrics.track_gflops", "{:.1f}", 1),
    ("% of peak", "StepMetrics.track_peak_fraction", "{:.1f}%", 1),
    ("matmul peak GFLOP/s", "StepMetrics.track_matmul_peak", "{:.0f}", 1),
    ("host peak", "TrainingStep.peakmem_step", "{:.0f} MiB", 2.0 ** -20),  # asv's peakmem is in bytes
    ("device peak", "StepMetrics.track_device_peak_memory", "{:.0f} MiB", 1),
]


def _stack(env_name):
    return env_name.rsplit("RNNBENCH_STACK", 1)[-1]


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def cells(result_sets, benchmark, sources=None):
    """{(stack, framework, implementation, scenario): (value, asv's stats)} of every bench_<framework>.<benchmark>,
    in the order the results list them; where several result sets have a cell, the last one's (``load``
    sorts them oldest first) that has a value. A None or NaN value is a skip (e.g. cuDNN on a CPU), a failure,
    or a cell a run left out (``asv run --bench`` with parameters stores the others as missing): it never
    replaces a measured value. ``sources``, if given, is a set that receives each result set a value was
    taken from."""
    out = collections.OrderedDict()
    origin = {}
    for result in result_sets:
        for key in result.get_all_result_keys():
            if not key.endswith("." + benchmark):
                continue
            framework = key.split(".")[0][len("bench_"):]
            params = result.get_result_params(key)
            values, stats = result.get_result_value(key, params), result.get_result_stats(key, params)
            for (scenario, implementation), value, stat in zip(itertools.product(*params), values, stats):
                # asv stores parameter values as Python literals ("'nn.LSTM'")
                name = (_stack(result.env_name), framework, ast.literal_eval(implementation),
                        ast.literal_eval(scenario))
                if _missing(value) and name in out and not _missing(out[name][0]):
                    continue
                out[name] = (value, stat)
                origin[name] = result
    if sources is not None:
        sources.update(id(result) for result in origin.values())
    return out


def version_key(version):
    """Sort key of a release number: "1.10.2" after "1.9.1"."""
    return tuple(int(part) if part.isdigit() else 0 for part in re.split(r"[.+-]", version))


def framework_versions(result_sets, framework, packages):
    """{stack: the version of ``framework`` it pins} (``packages``: the pip names that provide it)."""
    out = {}
    for result in result_sets:
        version = next((result.params[p] for p in packages if result.params.get(p)), None)
        if version is not None:
            out[_stack(result.env_name)] = version
    return out


def _spread(value, stat):
    """IQR / median of a timing, or None without quartiles."""
    if _missing(value) or not stat or stat.get("q_25") is None:
        return None
    return (stat["q_75"] - stat["q_25"]) / value


def markdown(result_sets, sources=None, stacks=None, framework_only=None):
    """Step times: one row per (stack, framework, implementation) whose framework ran in that stack's
    environment, one column per scenario. ``stacks``: the order of the rows' stacks (default: the results'
    order); ``framework_only``: one framework's rows."""
    table, measured, scenarios, names = {}, set(), [], []
    for (stack, framework, implementation, scenario), (value, stat) in cells(result_sets, STEP, sources).items():
        if framework_only not in (None, framework):
            continue
        name = (stack, framework, implementation)
        names += [] if name in names else [name]
        scenarios += [] if scenario in scenarios else [scenario]
        if _missing(value):
            table[name, scenario] = "n/a"  # skipped (e.g. cuDNN on a CPU) or failed: no time
        else:
            measured.add(name[:2])
            spread = _spread(value, stat)
            table[name, scenario] = "{:.1f} ms ±{:.0f}%".format(value * 1e3, 100 * spread) if spread is not None \
                else "{:.1f} ms".format(value * 1e3)
    lines = ["| stack | implementation | " + " | ".join(scenarios) + " |", "|---" * (len(scenarios) + 2) + "|"]
    if stacks is not None:
        names.sort(key=lambda name: list(stacks).index(name[0]))  # stable: implementations keep their order
    for name in names:
        if name[:2] in measured:  # a framework absent from a stack's environment has no row there
            lines.append("| {} | {} {} | {} |".format(
                name[0], name[1], name[2], " | ".join(table.get((name, s), "-") for s in scenarios)))
    return "\n".join(lines)


def versus_markdown(result_sets, other_sets, sources=None):
    """Step times of one machine beside another's: one row per (stack, framework, implementation) that both
    measured in some scenario; each cell "here / there ms (ratio)", "-" where either lacks a time."""
    here, there = cells(result_sets, STEP, sources), cells(other_sets, STEP, sources)
    both = [name for name in here if name in there and not _missing(here[name][0])
            and not _missing(there[name][0])]
    scenarios = [scenario for scenario in dict.fromkeys(name[3] for name in here)]
    rows = list(dict.fromkeys(name[:3] for name in both))
    lines = ["| stack | implementation | " + " | ".join(scenarios) + " |", "|---" * (len(scenarios) + 2) + "|"]
    for row in rows:
        texts = []
        for scenario in scenarios:
            name = row + (scenario,)
            if name not in both:
                texts.append("-")
                continue
            mine, theirs = here[name][0], there[name][0]
            texts.append("{:.1f} / {:.1f} ms ({:.2f})".format(mine * 1e3, theirs * 1e3, mine / theirs))
        lines.append("| {} | {} {} | {} |".format(row[0], row[1], row[2], " | ".join(texts)))
    return "\n".join(lines)


def metrics_markdown(result_sets, sources=None):
    """Every metric of every measured cell: one row per (stack, implementation, scenario) with a step time."""
    steps = cells(result_sets, STEP, sources)
    columns = [cells(result_sets, benchmark, sources) for _, benchmark, _, _ in METRICS]
    lines = ["| stack | implementation | scenario | step (IQR/median) | " + " | ".join(m[0] for m in METRICS) + " |",
             "|---" * (len(METRICS) + 4) + "|"]
    for name, (value, stat) in steps.items():
        if _missing(value):
            continue
        spread = _spread(value, stat)
        row = ["{:.1f} ms ({})".format(value * 1e3, "-" if spread is None else "{:.0f}%".format(100 * spread))]
        for (_, _, form, scale), column in zip(METRICS, columns):
            metric = column.get(name, (None, None))[0]
            row.append("-" if _missing(metric) else form.format(metric * scale))
        lines.append("| {} | {} {} | {} | {} |".format(name[0], name[1], name[2], name[3], " | ".join(row)))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", required=True)
    parser.add_argument("--profile", default="small")
    parser.add_argument("--metrics", action="store_true",
                        help="every metric per cell (forward, backward, first step, FLOP/s, peak, memory)")
    parser.add_argument("--exclude-timeline", action="store_true",
                        help="leave out the stacks marked timeline in env_matrix/stacks.json")
    parser.add_argument("--releases", metavar="FRAMEWORK",
                        help="one framework's step times, its releases oldest first")
    parser.add_argument("--versus", metavar="OTHER_MACHINE",
                        help="each step time beside OTHER_MACHINE's (same profile), with their ratio")
    args = parser.parse_args(argv)
    if args.versus and (args.releases or args.metrics):
        parser.error("--versus compares step times: it does not combine with --releases or --metrics")
    result_sets, sources = load(args.machine, args.profile), set()
    if args.versus:
        other_sets = load(args.versus, args.profile)
        if args.exclude_timeline:
            import env_matrix

            timeline = env_matrix.timeline_stacks()
            result_sets = [r for r in result_sets if _stack(r.env_name) not in timeline]
        print("step times on {} / on {}, ms (ratio)".format(args.machine, args.versus))
        print(versus_markdown(result_sets, other_sets, sources))
        result_sets = result_sets + other_sets
    elif args.releases:
        import export_csv

        if args.releases not in export_csv.FRAMEWORK_PACKAGES:
            sys.exit("results_table: unknown framework {!r}; choose from {}".format(
                args.releases, ", ".join(sorted(export_csv.FRAMEWORK_PACKAGES))))
        versions = framework_versions(result_sets, args.releases, export_csv.FRAMEWORK_PACKAGES[args.releases])
        order = sorted(versions, key=lambda stack: (version_key(versions[stack]), stack))
        result_sets = [r for r in result_sets if _stack(r.env_name) in versions]
        print(markdown(result_sets, sources, stacks=order, framework_only=args.releases))
    else:
        if args.exclude_timeline:
            import env_matrix

            timeline = env_matrix.timeline_stacks()
            result_sets = [r for r in result_sets if _stack(r.env_name) not in timeline]
        print(metrics_markdown(result_sets, sources) if args.metrics else markdown(result_sets, sources))
    for result in result_sets:
        if id(result) in sources:
            print("\ncommit {} · environment {} · median of the samples, ±: interquartile range / median".format(
                result.commit_hash[:8], result.env_name))


if __name__ == "__main__":
    main()
