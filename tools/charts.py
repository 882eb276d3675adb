"""Draw the study's charts from the stored asv results into html/charts/ (SVG files and an index page).

    python tools/charts.py [--html html] [--results-dir results]

For every machine in results/ and every size profile it ran (charts are named <machine>-<profile>-...):

- ``bars-<scenario>.svg``: the study's bar chart per scenario, one bar per (stack, implementation) with a
  time, ms per step (asv's median; the whisker is the interquartile range), labelled with its ratio to the
  fastest bar. Stacks marked ``timeline`` in env_matrix/stacks.json are left out: they are releases that
  fill a framework's history, and dozens of them would bury the comparison of implementations.
- ``releases-<framework>.svg``: one panel per scenario, x the framework's releases (the stacks that ran it,
  oldest first), y ms per step, one line per implementation (per Keras backend for Keras).
- ``speed-checks.svg``: where results/<machine>/speed_checks.csv keeps the machine's speed checks
  (tools/speed_check.py), each control cell's time over its reference at every check, in order, with the
  band a check must stay within: how steady the machine was while its results were taken.
- ``index.html``: the charts with the machine, the profile and the source commits named; `make publish`
  links it from asv's dashboard.

Every figure is read from results/ (the newest result per stack and cell, as tools/results_table.py
reads them); a chart is never drawn from anything else.
"""
import argparse
import collections
import html as html_escape
import os
import re
import shutil
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

# Text stays text in the SVGs: smaller files, searchable and selectable in the browser.
matplotlib.rcParams["svg.fonttype"] = "none"
# The same results draw the same file: no creation date, and fixed ids, so a republish without new results
# leaves html/charts unchanged in git.
matplotlib.rcParams["svg.hashsalt"] = "rnnbench"
SVG_METADATA = {"Date": None}

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import env_matrix  # noqa: E402
import export_csv  # noqa: E402
import results_table  # noqa: E402
import speed_check  # noqa: E402

SCENARIOS = list(export_csv.STUDY_EXPERIMENTS)


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def step_cells(result_sets):
    """[(stack, framework, implementation, scenario, seconds, iqr seconds, framework version, backend)] of
    every timed cell, the newest result per stack and cell."""
    versions, backends = {}, {}
    for result in result_sets:
        stack = results_table._stack(result.env_name)
        backends[stack] = result.env_vars.get("KERAS_BACKEND", "")
        for framework in export_csv.FRAMEWORK_PACKAGES:
            versions[(stack, framework)] = export_csv.framework_version(framework, result.params)
    out = []
    for (stack, framework, implementation, scenario), (value, stat) in results_table.cells(
            result_sets, results_table.STEP).items():
        if results_table._missing(value):
            continue
        iqr = (stat["q_75"] - stat["q_25"]) if stat and stat.get("q_25") is not None else 0.0
        out.append((stack, framework, implementation, scenario, value, iqr, versions.get((stack, framework), ""),
                    backends.get(stack, "") if framework == "keras" else ""))
    return out


def bar_chart(cells, scenario, machine, profile, path):
    rows = sorted((c for c in cells if c[3] == scenario), key=lambda c: c[4])
    if not rows:
        return False
    fastest = rows[0][4]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.4))
    labels = ["{} {} ({})".format(c[1], c[2], c[0]) for c in rows]
    ms = [c[4] * 1e3 for c in rows]
    ax.barh(range(len(rows)), ms, xerr=[c[5] * 1e3 / 2 for c in rows], color="#4c72b0", ecolor="#555555")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()  # fastest on top, as the study drew them
    for i, c in enumerate(rows):
        ax.text(ms[i], i, "  {:.0f} ms  x{:.1f}".format(ms[i], c[4] / fastest), va="center", fontsize=7)
    ax.set_xlim(0, max(ms) * 1.3)
    ax.set_xlabel("ms per training step (median; whisker: interquartile range)")
    ax.set_title("{} ({} profile), {}".format(scenario, profile, machine), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, metadata=SVG_METADATA)
    plt.close(fig)
    return True


def release_chart(cells, framework, machine, profile, path):
    rows = [c for c in cells if c[1] == framework]
    if not rows:
        return False
    # x: one point per stack (release), ordered by the framework's version, then by stack name
    points = sorted({(c[6], c[0]) for c in rows}, key=lambda p: (results_table.version_key(p[0]), p[1]))
    # a timeline of many releases widens each panel rather than crowding its labels
    width = max(4.2, 0.28 * len(points) + 1.5)
    fig, axes = plt.subplots(1, len(SCENARIOS), figsize=(width * len(SCENARIOS), 4.6), squeeze=False)
    for ax, scenario in zip(axes[0], SCENARIOS):
        x_of = {stack: i for i, (_, stack) in enumerate(points)}
        series = collections.defaultdict(list)
        for c in rows:
            if c[3] == scenario:
                series[c[2] + (" [{}]".format(c[7]) if c[7] else "")].append((x_of[c[0]], c[4] * 1e3))
        for name, values in sorted(series.items()):
            values.sort()
            ax.plot([v[0] for v in values], [v[1] for v in values], marker="o", label=name)
        ax.set_xticks(range(len(points)))
        ax.set_xticklabels(["{} ({})".format(version, stack) for version, stack in points], fontsize=7, rotation=90)
        ax.set_yscale("log")
        ax.set_title(scenario, fontsize=10)
        ax.set_ylabel("ms per step (median)")
        if series:
            ax.legend(fontsize=7)
    fig.suptitle("{} across releases ({} profile), {}".format(framework, profile, machine), fontsize=11)
    fig.tight_layout()
    fig.savefig(path, metadata=SVG_METADATA)
    plt.close(fig)
    return True


def speed_check_chart(log_rows, machine, profile, path):
    """Each control cell's ratio to its reference at every check of the profile, oldest first; the gate's
    band drawn at the newest check's factor. False where the log has no check of the profile."""
    rows = [row for row in log_rows if row["profile"] == profile]
    if not rows:
        return False
    checks = list(dict.fromkeys(row["utc"] for row in rows))
    x_of = {utc: i for i, utc in enumerate(checks)}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.16 * len(checks) + 2.5), 4.2))
    for cell in dict.fromkeys(row["cell"] for row in rows):
        mine = [row for row in rows if row["cell"] == cell]
        line, = ax.plot([x_of[row["utc"]] for row in mine], [float(row["ratio"]) for row in mine], marker="o",
                        markersize=3, linewidth=0.8, label=cell)
        slow = [row for row in mine if row["verdict"] != "usual"]
        ax.plot([x_of[row["utc"]] for row in slow], [float(row["ratio"]) for row in slow], linestyle="none",
                marker="o", markersize=6, markerfacecolor="none", color=line.get_color())
    factor = float(rows[-1]["factor"])
    for bound in (factor, 1.0 / factor):
        ax.axhline(bound, color="#999999", linestyle="--", linewidth=0.8)
    ax.axhline(1.0, color="#cccccc", linewidth=0.6)
    step = max(1, len(checks) // 24)  # a label every few checks where there are many
    ax.set_xticks(range(0, len(checks), step))
    ax.set_xticklabels([checks[i][5:16].replace("T", " ") for i in range(0, len(checks), step)], fontsize=7,
                       rotation=90)
    ax.set_xlabel("check (UTC; in order, not to scale)")
    ax.set_ylabel("time here / reference")
    usual = sum(len({row["verdict"] for row in rows if row["utc"] == utc} - {"usual"}) == 0 for utc in checks)
    ax.set_title("speed checks ({} profile), {}\n{} of {} within {:.2f}x either way (dashed); ringed: a check "
                 "that was not".format(profile, machine, usual, len(checks), factor), fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata=SVG_METADATA)
    plt.close(fig)
    return True


def index_page(sections):
    """The charts page: one section per (machine, profile), each chart with its caption and source commits."""
    body = []
    for machine, profile, commits, charts in sections:
        body.append("<h2>{} ({} profile)</h2>\n<p>Suite commits: {}.</p>".format(
            html_escape.escape(machine), html_escape.escape(profile), html_escape.escape(", ".join(commits))))
        body.extend('<figure><img src="{0}" alt="{1}"><figcaption>{1}</figcaption></figure>'.format(
            html_escape.escape(name), html_escape.escape(caption)) for name, caption in charts)
    return """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rnnbench: the study's charts</title>
<link rel="icon" href="../swallow.ico">
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} img{{max-width:100%;border:1px solid #ddd}}
figure{{margin:2em 0}}</style></head>
<body><h1>rnnbench: one LSTM training step</h1>
<p>Drawn by tools/charts.py from the asv results in results/, per machine and size profile (the small
profile is a reduced size, never the study's; sizes are in the README). <a href="../index.html">asv's
dashboard</a> has every benchmark's history.</p>
{body}
</body></html>
""".format(body="\n".join(body) if body else "<p>No results yet.</p>")


def machine_profiles(results_dir):
    """(machine, profile) of every machine folder in results_dir and every profile its results carry."""
    out = []
    for machine in sorted(os.listdir(results_dir)) if os.path.isdir(results_dir) else []:
        if os.path.isdir(os.path.join(results_dir, machine)):
            profiles = {r.env_vars.get("RNNBENCH_PROFILE") for r in
                        results_table.asv_results.iter_results_for_machine(results_dir, machine)}
            out.extend((machine, profile) for profile in sorted(p for p in profiles if p))
    return out


def draw(machine, profile, result_sets, out_dir, timeline=None, log=None):
    """Every chart of one machine and profile into out_dir: [(file name, caption)]. ``timeline``: the stacks
    drawn in the release charts only (default: those marked so in env_matrix/stacks.json); ``log``: the
    machine's speed-check log, where it has one."""
    cells = step_cells(result_sets)
    timeline = env_matrix.timeline_stacks() if timeline is None else timeline
    prefix = "{}-{}".format(_slug(machine), _slug(profile))
    charts = []
    for scenario in SCENARIOS:
        name = "{}-bars-{}.svg".format(prefix, _slug(scenario))
        bars = [c for c in cells if c[0] not in timeline]
        if bar_chart(bars, scenario, machine, profile, os.path.join(out_dir, name)):
            charts.append((name, "{}: every implementation, ms per step, relative to the fastest".format(scenario)))
    for framework in export_csv.FRAMEWORK_PACKAGES:
        name = "{}-releases-{}.svg".format(prefix, framework)
        if release_chart(cells, framework, machine, profile, os.path.join(out_dir, name)):
            charts.append((name, "{} across its releases: ms per step per implementation".format(framework)))
    name = "{}-speed-checks.svg".format(prefix)
    if log and os.path.exists(log) and speed_check_chart(speed_check.read_log(log), machine, profile,
                                                         os.path.join(out_dir, name)):
        charts.append((name, "the machine's speed checks: each control cell's time over its reference, with the "
                             "band its results were filed within"))
    return charts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", default=os.path.join(results_table.ROOT, "html"))
    parser.add_argument("--results-dir", default=os.path.join(results_table.ROOT, "results"))
    args = parser.parse_args(argv)
    out_dir = os.path.join(args.html, "charts")
    shutil.rmtree(out_dir, ignore_errors=True)  # no chart of an earlier drawing is left behind
    os.makedirs(out_dir)
    sections = []
    for machine, profile in machine_profiles(args.results_dir):
        result_sets = results_table.load(machine, profile, args.results_dir)
        charts = draw(machine, profile, result_sets, out_dir,
                      log=speed_check.log_path(machine, args.results_dir))
        sources = set()
        results_table.cells(result_sets, results_table.STEP, sources)
        commits = sorted({r.commit_hash[:8] for r in result_sets if id(r) in sources})
        if charts:
            sections.append((machine, profile, commits, charts))
    with open(os.path.join(out_dir, "index.html"), "w") as f:
        f.write(index_page(sections))
    print("charts: {} charts of {} machine/profile pairs in {}".format(
        sum(len(s[3]) for s in sections), len(sections), out_dir))


if __name__ == "__main__":
    main()
