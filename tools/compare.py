"""Compare two stacks (two framework releases) measured at the same suite commit: asv-spyglass's table, with
asv's significance test and a change factor.

    make compare A=torch-1.0 B=torch-1.4-warpctc [FACTOR=1.1] [SPLIT=1]
    .venv-compare/bin/python tools/compare.py torch-1.0 torch-1.4-warpctc --machine amd-epyc-2cpu-small
        [--profile small] [--commit SHA] [--factor 1.1] [--split]

asv's own ``asv compare`` compares two commits of one environment; comparing two environments (two
releases of a framework) at one commit is what asv's maintainers wrote asv-spyglass for. It needs Python
>= 3.12, so it has its own environment, .venv-compare (requirements-compare.txt; `make compare` builds
it), and this script runs there.

The two result files are the stacks' results at one commit of the suite, on one machine and profile:
``--commit`` names it, else the newest commit at which both stacks have results. Each row is a benchmark
cell: Before (A) and After (B) as median ± half the interquartile range, the ratio B/A, and the change
mark asv uses: ``-`` B is faster, ``+`` B is slower (both beyond ``--factor`` and significant by asv's
test on the recorded statistics), ``~`` a difference within the noise, ``x`` a time on one side only. Cells neither stack ran (other
frameworks' benchmarks, cuDNN on a CPU) are left out. ``--split`` groups the rows as asv compare does.
The exit status is 0 whatever the comparison found (it is a report, not a gate).
"""
import argparse
import contextlib
import glob
import io
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACK_VAR, PROFILE_VAR = "RNNBENCH_STACK", "RNNBENCH_PROFILE"
STEP = r"\.TrainingStep\.time_step$"
SECTIONS = [("-", "Benchmarks that have improved:"), ("+", "Benchmarks that have got worse:"),
            ("~", "Benchmarks that have stayed the same (within the noise or the factor):"),
            ("x", "Benchmarks that are not comparable (one stack only has a time):")]


def result_files(results_dir, machine, profile, stack, bench=STEP):
    """{commit hash: (date, results file)} of one stack at one profile on one machine, where the file has a
    result for a benchmark matching ``bench`` (a metrics-only run has no step times)."""
    found = {}
    for path in glob.glob(os.path.join(results_dir, machine, "*.json")):
        if os.path.basename(path) == "machine.json":
            continue
        with open(path) as f:
            data = json.load(f)
        env_vars = data.get("env_vars", {})
        if env_vars.get(STACK_VAR) == stack and env_vars.get(PROFILE_VAR) == profile \
                and any(re.search(bench, key) for key in data.get("results", {})):
            found[data["commit_hash"]] = (data.get("date", 0), path)
    return found


def pick(results_dir, machine, profile, stack_a, stack_b, commit=None, bench=STEP):
    """The two results files (A, B) at the chosen commit, or SystemExit with a one-line reason."""
    if not os.path.isdir(os.path.join(results_dir, machine)):
        raise SystemExit("compare: no results for machine {!r} in {}".format(machine, results_dir))
    files = {}
    for stack in (stack_a, stack_b):
        files[stack] = result_files(results_dir, machine, profile, stack, bench)
        if not files[stack]:
            raise SystemExit("compare: stack {!r} has no results of profile {!r} matching {!r} on machine {!r}".format(
                stack, profile, bench, machine))
    common = set(files[stack_a]) & set(files[stack_b])
    if commit is not None:
        common = {sha for sha in common if sha.startswith(commit)}
    if not common:
        raise SystemExit("compare: {} and {} were never measured at {} (commits: {}: {}; {}: {})".format(
            stack_a, stack_b, "commit " + commit if commit else "one commit",
            stack_a, ", ".join(sorted(sha[:8] for sha in files[stack_a])),
            stack_b, ", ".join(sorted(sha[:8] for sha in files[stack_b]))))
    # the newest shared commit: the later of the two stacks' dates at each commit
    sha = max(common, key=lambda sha: max(files[stack_a][sha][0], files[stack_b][sha][0]))
    return sha, files[stack_a][sha][1], files[stack_b][sha][1]


def rows(table, bench=STEP):
    """The data rows of spyglass's GitHub table, as cell lists, of the benchmarks matching ``bench``, without
    the cells neither side ran; a cell only one side ran is marked x."""
    out = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] == "Change" or set(cells[0]) <= {"-"} and cells[1].startswith("---"):
            continue
        if (cells[1] == "n/a" and cells[2] == "n/a") or not re.search(bench, cells[4].split("(")[0].split(" [")[0]):
            continue
        if "n/a" in (cells[1], cells[2]):
            cells[0] = "x"
        out.append(cells)
    return out


def render(cell_rows, split):
    header = "| Change | Before | After | Ratio | Benchmark (Parameter) |\n|---|---|---|---|---|"

    def table(group):
        return "\n".join([header] + ["| " + " | ".join(cells) + " |" for cells in group])

    if not split:
        return table(cell_rows)
    parts = []
    for mark, title in SECTIONS:
        group = [cells for cells in cell_rows if (cells[0] if cells[0] in ("-", "+", "x") else "~") == mark]
        if group:
            parts.append(title + "\n\n" + table(group))
    return "\n\n".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack_a", help="the baseline stack (Before), e.g. torch-1.0")
    parser.add_argument("stack_b", help="the contender stack (After), e.g. torch-1.4-warpctc")
    parser.add_argument("--machine", required=True)
    parser.add_argument("--profile", default="small")
    parser.add_argument("--commit", help="the suite commit (a prefix will do); default: the newest shared one")
    parser.add_argument("--factor", type=float, default=1.1, help="smallest ratio that counts as a change")
    parser.add_argument("--split", action="store_true", help="group rows: improved, worse, unchanged")
    parser.add_argument("--bench", default=STEP, help="regular expression of the benchmarks to compare (default: the "
                        "step time; the metrics' track_ values are compared as lower-is-better too)")
    parser.add_argument("--results-dir", default=os.path.join(ROOT, "results"))
    args = parser.parse_args(argv)
    sha, file_a, file_b = pick(args.results_dir, args.machine, args.profile, args.stack_a, args.stack_b, args.commit,
                                args.bench)
    try:
        from asv_spyglass.compare import do_compare
    except ImportError:
        raise SystemExit("compare: asv-spyglass is not installed here; run `make compare` (it builds .venv-compare) "
                         "or use .venv-compare/bin/python")
    with contextlib.redirect_stdout(io.StringIO()):  # spyglass prints its section title itself
        table, _, _ = do_compare(file_a, file_b, os.path.join(args.results_dir, "benchmarks.json"),
                                 factor=args.factor, label_before=args.stack_a, label_after=args.stack_b)
    print("{} (Before) against {} (After), suite commit {}, machine {}, profile {}, factor {}".format(
        args.stack_a, args.stack_b, sha[:8], args.machine, args.profile, args.factor))
    print()
    print(render(rows(table, args.bench), args.split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
