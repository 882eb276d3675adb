"""Is this machine at its usual speed? Time a few control cells here and set each beside what the stored
results say this machine, by name, does. Run it before a session's numbers join older ones of that name.

    make speed-check                                   # MACHINE as for make run
    .venv/bin/python tools/speed_check.py --machine amd-epyc-2cpu-small [--factor 1.15] [--steps 30] [--no-log]
    .venv/bin/python tools/speed_check.py --machine amd-epyc-2cpu-small --history   # the stored checks, by day

asv names a machine by what it is told, and a cloud guest of one name ("AMD EPYC", 2 CPUs) can land on
hosts, or go through hours, where the same code runs 1.5 to 2 times slower (README, "A slower machine").
The control cells run in the project's own environment, .venv, which has the control stack's pins
(torch-2.13: torch 2.13.0, numpy 2.4.6), so the check needs no asv environment and takes about a minute.
Each cell runs in a fresh process: build, the suite's warm-up steps, then --steps checked steps, each timed
with perf_counter (the harness check found asv's median within 1.1% of such a loop's). Its median is set
beside the cell's reference: the median, over every commit stored for the control stack on this machine
and profile, of asv's median of that cell. Run it on an otherwise idle machine, like any timing.

Each check is appended to results/<machine>/speed_checks.csv (time, suite commit, cell, here and reference
in ms, ratio, verdict: usual, slow, fast or mixed, host steal; --no-log: not), so a machine's fast and slow
spells are kept with its results. "Host steal" is the share of the CPU time the guest's CPUs wanted during
a cell's timed steps that the hypervisor gave to others (Linux's steal time, /proc/stat): a slow check with
little steal was slowed by something the guest cannot see (a busy host's shared caches and memory, its
clock).

Exit status: 0 when every cell is within --factor of its reference, either way; 1 when one is not (the
machine is not at its usual speed: do not file this session's times under this machine's name); a one-line
error when it cannot check (this environment lacks the control stack's pins, or nothing is stored).
"""
import argparse
import csv
import datetime
import json
import os
import statistics
import subprocess
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
import env_matrix  # noqa: E402
import results_table  # noqa: E402

CONTROL_STACK = "torch-2.13"
# nn.LSTM is one fused kernel per layer (arithmetic); LSTMCell-basic is hundreds of small ops a step (the
# framework's per-op overhead): a slow host can hit the two unequally, so both are checked.
CONTROL_CELLS = (("pytorch", "nn.LSTM", "1x320/CE-short"),
                 ("pytorch", "nn.LSTM", "1x320/CE-long"),
                 ("pytorch", "LSTMCell-basic", "1x320/CE-long"))
MARKER = "RNNBENCH_SPEED_CHECK "
# A new machine's reference is its first control-stack run; one run can sit at either end of a cell's own
# spread (the Zen 5 guest's CE-short cell read 14.4 ms in its first run and 14.4 to 17.8 ms in checks after).
STEADY_REFERENCE_RUNS = 3
# The largest ratio, either way, a check may read against its reference (or, steadying a reference, the check
# after a run against the one before it).
FACTOR = 1.15
# Every check is kept beside the machine's results (asv reads only *.json there), one row per cell, so a
# machine's slow spells are data that the README's accounts of them can be checked against.
LOG_NAME = "speed_checks.csv"
LOG_COLUMNS = ("utc", "commit", "profile", "cell", "here_ms", "reference_ms", "reference_runs", "ratio", "factor",
               "verdict", "steal_share")
# The first line of /proc/stat sums every CPU's time since boot, in clock ticks: user nice system idle iowait
# irq softirq steal ...
PROC_STAT = "/proc/stat"


def installed_version(package):
    from importlib import metadata
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def pins_mismatch(stack, version_of=installed_version):
    """Why this environment cannot stand in for ``stack`` (a package missing or at another release than its
    pin; a local label such as "+cpu" is ignored), or None."""
    for package, pinned in sorted(stack["req"].items()):
        found = version_of(package)
        if found is None or found.split("+")[0] != pinned:
            return "{} is {} here, stack {} pins {}".format(package, found or "not installed", stack["name"], pinned)
    return None


def reference_medians(result_sets, stack, cells):
    """{cell: [asv's median of the cell at each stored commit of ``stack``, oldest first]}."""
    stored = {cell: [] for cell in cells}
    for result in result_sets:
        if results_table._stack(result.env_name) != stack:
            continue
        for (_, framework, implementation, scenario), (value, _) in results_table.cells(
                [result], results_table.STEP).items():
            cell = (framework, implementation, scenario)
            if cell in stored and not results_table._missing(value):
                stored[cell].append(value)
    return stored


def thin_reference_note(stored, stack=CONTROL_STACK):
    """A line saying the reference rests on fewer than STEADY_REFERENCE_RUNS stored runs, or None."""
    runs = min(len(values) for values in stored.values())
    if runs >= STEADY_REFERENCE_RUNS:
        return None
    return ("note: the reference rests on {} stored {} run{}, so the band is only as sure as {}; file more "
            "runs of it on an idle machine (make matrix STACKS={}; STEADY_REFERENCE=1 where the checks keep "
            "disagreeing with {})".format(runs, stack, "" if runs == 1 else "s",
                                          "that run" if runs == 1 else "those runs", stack,
                                          "it" if runs == 1 else "them"))


def reference_state(machine, profile):
    """(how many stored runs of the control stack the reference rests on, the other stacks stored) for
    ``machine`` and ``profile``; raises CannotCheck where nothing is stored."""
    try:
        result_sets = results_table.load(machine, profile)
    except SystemExit as error:  # results_table's one-line refusal
        raise CannotCheck(str(error).split(": ", 1)[-1])
    stored = reference_medians(result_sets, CONTROL_STACK, CONTROL_CELLS)
    others = sorted({results_table._stack(result.env_name) for result in result_sets} - {CONTROL_STACK})
    return min(len(values) for values in stored.values()), others


def run_medians(machine, profile, runs):
    """{control cell: asv's median of it in the stored results of these (suite commit, environment) runs, or
    None where they have none}; raises CannotCheck where nothing is stored."""
    try:
        result_sets = results_table.load(machine, profile)
    except SystemExit as error:  # results_table's one-line refusal
        raise CannotCheck(str(error).split(": ", 1)[-1])
    runs = set(runs)
    stored = reference_medians([result for result in result_sets if (result.commit_hash, result.env_name) in runs],
                               CONTROL_STACK, CONTROL_CELLS)
    return {cell: values[-1] if values else None for cell, values in stored.items()}


def cpu_times(path=PROC_STAT):
    """(busy, steal) clock ticks summed over the guest's CPUs since boot, or None where the kernel does not
    say (not Linux, or no steal column)."""
    try:
        with open(path) as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(field) for field in fields[1:9])
    return user + nice + system + irq + softirq, steal


def steal_share(before, after):
    """Of the CPU time wanted between two cpu_times() samples (run, or ready but held back by the hypervisor),
    the share held back, or None when either sample is missing or nothing ran."""
    if before is None or after is None:
        return None
    busy, steal = after[0] - before[0], after[1] - before[1]
    return steal / float(busy + steal) if busy + steal > 0 else None


def percent(share):
    return "-" if share is None else "{:.0f}%".format(share * 100)


def verdict(rows, factor):
    """rows: [(cell, measured seconds, reference seconds)] -> (ratios, whether every ratio is within factor)."""
    ratios = [measured / reference for _, measured, reference in rows]
    return ratios, all(1.0 / factor <= ratio <= factor for ratio in ratios)


def off_speed_word(ratios, factor):
    """Which way a check that failed went: 'slow' (some cell above the band), 'fast' (some below it), or 'mixed'
    (both), so the log tells a slow host from a fast one."""
    slow = any(ratio > factor for ratio in ratios)
    fast = any(ratio < 1.0 / factor for ratio in ratios)
    return "mixed" if slow and fast else "slow" if slow else "fast" if fast else "usual"


def child(framework, implementation, scenario, profile, steps):
    """In a fresh process: build, warm up, then ``steps`` timed checked steps (tools/time_step.py's loop), and
    the host's steal over those steps alone."""
    import time_step
    ready = []
    _, times, workload = time_step.time_steps(framework, implementation, scenario, profile, steps,
                                              on_ready=lambda: ready.append(cpu_times()))
    print(MARKER + json.dumps({"times": times, "device": workload.device,
                               "steal": steal_share(ready[0], cpu_times())}))


def time_cell(cell, profile, steps, stack_name):
    variables = dict(os.environ, RNNBENCH_STACK=stack_name)
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"] + list(cell) +
                          ["--profile", profile, "--steps", str(steps)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=variables)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    sys.exit("speed_check: {} failed: {}".format(" ".join(cell), lines[-1] if lines else "no output"))


def log_path(machine, results_dir=os.path.join(ROOT, "results")):
    return os.path.join(results_dir, machine, LOG_NAME)


def suite_commit():
    done = subprocess.run(["git", "rev-parse", "--short=8", "HEAD"], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, universal_newlines=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def append_log(path, rows, stored, profile, factor, usual, when=None, commit=None, steals=None):
    """Append one check (rows: [(cell, measured s, reference s)]; steals: each cell's steal share or None) to
    the CSV at ``path``."""
    when = when or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    commit = suite_commit() if commit is None else commit
    new = not os.path.exists(path)
    if not new:
        _upgrade_log(path)
    steals = steals or [None] * len(rows)
    word = "usual" if usual else off_speed_word([measured / reference for _, measured, reference in rows], factor)
    with open(path, "a", newline="") as log:
        writer = csv.writer(log)
        if new:
            writer.writerow(LOG_COLUMNS)
        for (cell, measured, reference), steal in zip(rows, steals):
            writer.writerow([when, commit, profile, " ".join(cell[1:]), "{:.2f}".format(measured * 1e3),
                             "{:.2f}".format(reference * 1e3), len(stored[cell]),
                             "{:.3f}".format(measured / reference), factor, word,
                             "" if steal is None else "{:.3f}".format(steal)])


def _upgrade_log(path):
    """Rewrite a log kept under older columns with today's, the columns it lacks left empty in its rows."""
    with open(path, newline="") as log:
        header = next(csv.reader(log), None)
    if header is None or tuple(header) == LOG_COLUMNS:
        return
    unknown = [column for column in header if column not in LOG_COLUMNS]
    if unknown:
        raise CannotCheck("{} has columns this tool does not know ({}); not appending to it".format(
            path, ", ".join(unknown)))
    rows = read_log(path)
    with open(path, "w", newline="") as log:
        writer = csv.DictWriter(log, LOG_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)


def read_log(path):
    """A speed-check log's rows (dicts keyed by LOG_COLUMNS), oldest first."""
    if not os.path.exists(path):
        raise CannotCheck("no speed-check log at {}".format(path))
    with open(path, newline="") as log:
        return list(csv.DictReader(log))


def history(path):
    """Lines summing up a speed-check log by UTC day: checks, how many passed, each cell's ratios, and the
    most host steal any cell saw ("-" where the log did not record it)."""
    rows = read_log(path)
    days = {}
    for row in rows:
        day = days.setdefault(row["utc"][:10], {"checks": {}, "cells": {}, "steals": []})
        day["checks"][row["utc"]] = row["verdict"]
        day["cells"].setdefault(row["cell"], []).append(float(row["ratio"]))
        if row.get("steal_share"):
            day["steals"].append(float(row["steal_share"]))
    lines = ["| UTC day | checks | usual | first-last | " + " | ".join(
        "{} ratios".format(cell) for cell in _cells_in(rows)) + " | most host steal |"]
    lines.append("|---" * (5 + len(_cells_in(rows))) + "|")
    for day, seen in sorted(days.items()):
        times = sorted(seen["checks"])
        lines.append("| {} | {} | {} | {}-{} | {} | {} |".format(
            day, len(times), sum(verdict == "usual" for verdict in seen["checks"].values()), times[0][11:16],
            times[-1][11:16], " | ".join(_span(seen["cells"].get(cell)) for cell in _cells_in(rows)),
            percent(max(seen["steals"]) if seen["steals"] else None)))
    return lines


def _span(ratios):
    return "{:.2f}-{:.2f}".format(min(ratios), max(ratios)) if ratios else "-"


def _cells_in(rows):
    return list(dict.fromkeys(row["cell"] for row in rows))


class CannotCheck(Exception):
    """The check cannot run here: the control stack's pins are missing, or the machine has no reference."""


def check(machine, profile="small", factor=FACTOR, steps=30, out=print, log=None, exclude_runs=(), measured=None):
    """Time the control cells, print the table with ``out``: True when every cell is within ``factor`` of its
    reference, False when not; raises CannotCheck. ``log``: a CSV path the check is appended to.
    ``exclude_runs``: stored results of these (suite commit, environment) runs are left out of the reference
    (a check after a run of the control stack itself must not be judged against that run). ``measured``: a
    dict given gets each cell's median here, in seconds (steadying a reference sets two checks side by side)."""
    stack = env_matrix.find(env_matrix.load_stacks(), CONTROL_STACK)
    why = pins_mismatch(stack)
    if why:
        raise CannotCheck("this environment cannot run the control cells ({}); run it with the project's .venv "
                          "(make speed-check)".format(why))
    try:
        result_sets = results_table.load(machine, profile)
    except SystemExit as error:  # results_table's one-line refusal
        raise CannotCheck(str(error).split(": ", 1)[-1])
    result_sets = [result for result in result_sets if (result.commit_hash, result.env_name) not in set(exclude_runs)]
    stored = reference_medians(result_sets, CONTROL_STACK, CONTROL_CELLS)
    empty = [" ".join(cell) for cell, values in stored.items() if not values]
    if empty:
        raise CannotCheck("machine {!r} has no stored {} result for {}".format(machine, CONTROL_STACK,
                                                                               ", ".join(empty)))
    out("speed check on {} ({} profile), control stack {}, {} steps per cell after warm-up".format(
        machine, profile, CONTROL_STACK, steps))
    out("| cell | here (ms) | reference (ms) | stored commits' medians (ms) | ratio | host steal |")
    out("|---|---|---|---|---|---|")
    rows, steals = [], []
    for cell in CONTROL_CELLS:
        timed = time_cell(cell, profile, steps, CONTROL_STACK)
        here = statistics.median(timed["times"])
        reference = statistics.median(stored[cell])
        rows.append((cell, here, reference))
        steals.append(timed.get("steal"))
        if measured is not None:
            measured[cell] = here
        out("| {} | {:.1f} | {:.1f} | {} | {:.2f} | {} |".format(
            " ".join(cell[1:]), here * 1e3, reference * 1e3,
            ", ".join("{:.1f}".format(value * 1e3) for value in stored[cell]), here / reference,
            percent(steals[-1])))
    ratios, usual = verdict(rows, factor)
    note = thin_reference_note(stored)
    if note:
        out(note)
    if log:
        append_log(log, rows, stored, profile, factor, usual, steals=steals)
    if usual:
        out("usual speed: every cell within {:.2f}x of its reference".format(factor))
    else:
        out("NOT at its usual speed ({}): ratios {} (allowed {:.2f} to {:.2f}); do not file this session's times "
            "under {!r}".format(off_speed_word(ratios, factor), ", ".join("{:.2f}".format(r) for r in ratios),
                                1.0 / factor, factor, machine))
    return usual


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", help="the machine name the stored results are filed under")
    parser.add_argument("--profile", default="small")
    parser.add_argument("--factor", type=float, default=FACTOR,
                        help="the largest ratio, either way, to the reference (default {})".format(FACTOR))
    parser.add_argument("--steps", type=int, default=30, help="timed steps per cell after the warm-up")
    parser.add_argument("--no-log", action="store_true",
                        help="do not append this check to results/<machine>/{}".format(LOG_NAME))
    parser.add_argument("--history", action="store_true",
                        help="sum up the machine's stored speed checks by day instead of checking")
    parser.add_argument("--child", nargs=3, metavar=("FRAMEWORK", "IMPLEMENTATION", "SCENARIO"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child, profile=args.profile, steps=args.steps)
    if not args.machine:
        sys.exit("speed_check: --machine is required (the name of results/<machine>/)")
    if args.factor <= 1.0 or args.steps < 1:
        sys.exit("speed_check: --factor must be above 1 and --steps at least 1")
    try:
        if args.history:
            print("\n".join(history(log_path(args.machine))))
            return 0
        log = None if args.no_log else log_path(args.machine)
        return 0 if check(args.machine, args.profile, args.factor, args.steps, log=log) else 1
    except CannotCheck as error:
        sys.exit("speed_check: {}".format(error))


if __name__ == "__main__":
    sys.exit(main())
