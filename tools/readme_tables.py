"""Rewrite the README's result tables from results/, so that every figure in them is traceable to a results
file: each table follows a marker line

    <!-- results_table ARGS -->

and is replaced by the table that ``tools/results_table.py ARGS`` prints (its table lines; the footnote
naming commits and environments is not copied). With ``--releases``, implementations that have no time in
any scenario of a stack (e.g. an implementation the release lacks) are left out of the history.

    python tools/readme_tables.py            # rewrite README.md in place
    python tools/readme_tables.py --check    # exit 1, naming the stale tables, if README.md is not current
"""
import argparse
import contextlib
import io
import os
import re
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = re.compile(r"^<!-- results_table (?P<args>.*) -->$")


class ReadmeError(Exception):
    pass


def table_for(args):
    """The table lines ``results_table.py args`` prints."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            results_table.main(args)
    except SystemExit as error:  # results_table's one-line errors, and argparse's
        raise ReadmeError("results_table {}: {}".format(" ".join(args), error.code))
    lines = [line for line in printed.getvalue().splitlines() if line.startswith("|")]
    if "--releases" in args:
        lines = lines[:2] + [line for line in lines[2:] if any(cell.strip() != "n/a" for cell in line.split("|")[3:-1])]
    return lines


def rewrite(text):
    """``text`` with every marked table regenerated, and the markers whose table changed."""
    lines, out, stale, index = text.split("\n"), [], [], 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        match = MARKER.match(line)
        if not match:
            continue
        end = index
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        if end == index:
            raise ReadmeError("no table after the line {!r}".format(line))
        table = table_for(shlex.split(match.group("args")))
        if table != lines[index:end]:
            stale.append(match.group("args"))
        out.extend(table)
        index = end
    return "\n".join(out), stale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    args = parser.parse_args(argv)
    with open(args.readme) as f:
        text = f.read()
    try:
        new, stale = rewrite(text)
    except ReadmeError as error:
        sys.exit("readme_tables: {}".format(error))
    if args.check:
        if stale:
            sys.exit("readme_tables: {} table(s) differ from results/: {} (run tools/readme_tables.py)".format(
                len(stale), "; ".join(stale)))
        return
    if new != text:
        with open(args.readme, "w") as f:
            f.write(new)
    print("readme_tables: {} table(s) rewritten".format(len(stale)))


if __name__ == "__main__":
    main()
