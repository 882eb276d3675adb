"""Run the project's tests and each CI stack's tests, a few at a time, and sum up what they found.

    python tools/run_tests.py [--jobs N] [JOB ...]

A job is ``project`` (pytest over tests/ in this Python, i.e. .venv) or a stack's name (its tests in its own
environment, built first: ``tools/env_matrix.py test STACK``). Without JOB names: project and every stack
marked ``ci`` in env_matrix/stacks.json. The jobs known to take longest start first (EXPECTED_MINUTES).

Why in parallel: most of a stack's test time is one core's work (pip installs, C and LLVM compiles, test
models pinned to one thread), so on 2 cores two jobs at once take about half the wall time, which keeps
every CI stack, PyTensor's cold compiles included, within CI's 90 minutes.

Each job writes to .test-logs/JOB.log; a job's log is printed whole when it ends (never interleaved), and
the last line sums the pytest counts of every job. The exit status is 1 if any job failed.
"""
import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG_DIR = os.path.join(ROOT, ".test-logs")
PROJECT = "project"
COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped)\b")
CLOSING = re.compile(r"\d+ (passed|failed|errors?|skipped)\b.* in [\d.]+s")  # pytest's last line
POLL_S = 2.0
# Minutes each job took on 2 cores, two at a time (the CI run of b745718): the longest start first, so that
# no long job is left running alone at the end. A job not listed starts after these, in its given order.
EXPECTED_MINUTES = {"theano-1.0": 25, "pytensor-3": 17, "tensorflow-1.15": 12, "keras-3-jax": 11,
                    "tensorflow-2.21": 7, PROJECT: 4, "keras-3-torch": 1, "torch-1.4-warpctc": 1}


def stacks():
    """(every stack's name, the names of those marked ci), in env_matrix/stacks.json's order."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import env_matrix

    loaded = env_matrix.load_stacks()
    return [s["name"] for s in loaded], [s["name"] for s in loaded if s.get("ci", False)]


def command(job):
    if job == PROJECT:
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests"]
    return [sys.executable, os.path.join("tools", "env_matrix.py"), "test", job]


def pytest_counts(text):
    """{"passed": n, "failed": n, "errors": n, "skipped": n} from pytest's closing line in ``text``."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    closing = [line for line in text.splitlines() if CLOSING.search(line)]
    for number, word in COUNT.findall(closing[-1] if closing else ""):
        counts["errors" if word.startswith("error") else word] += int(number)
    return counts


def run(jobs, parallel, out=None):
    """Run ``jobs`` with at most ``parallel`` at once; print each log as its job ends; return the exit status."""
    out = out or sys.stdout
    os.makedirs(LOG_DIR, exist_ok=True)
    waiting = sorted(jobs, key=lambda job: -EXPECTED_MINUTES.get(job, 0))  # stable: the rest keep their order
    running, results = {}, []
    while waiting or running:
        while waiting and len(running) < parallel:
            job = waiting.pop(0)
            log = open(os.path.join(LOG_DIR, job + ".log"), "w")
            process = subprocess.Popen(command(job), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            running[job] = (process, log, time.time())
            print("run_tests: started {} ({} running, {} waiting)".format(job, len(running), len(waiting)),
                  file=out, flush=True)
        time.sleep(POLL_S if running else 0)
        for job in [j for j, (p, _, _) in running.items() if p.poll() is not None]:
            process, log, started = running.pop(job)
            log.close()
            with open(log.name) as f:
                text = f.read()
            seconds = time.time() - started
            results.append((job, process.returncode, seconds, pytest_counts(text)))
            print("\n===== {}: {} (exit {}) in {:.0f} s =====".format(
                job, "passed" if process.returncode == 0 else "FAILED", process.returncode, seconds), file=out)
            print(text.rstrip("\n"), file=out, flush=True)
    print("\n===== summary =====", file=out)
    for job, code, seconds, counts in results:
        print("{:<20} exit {:<3} {:>6.0f} s  {passed} passed, {failed} failed, {errors} errors, {skipped} skipped"
              .format(job, code, seconds, **counts), file=out)
    total = {key: sum(r[3][key] for r in results) for key in ("passed", "failed", "errors", "skipped")}
    failed_jobs = [job for job, code, _, _ in results if code != 0]
    if failed_jobs:
        print("run_tests: failed: {}".format(", ".join(failed_jobs)), file=out)
    print("tests: {passed} passed, {failed} failed, {skipped} skipped".format(
        passed=total["passed"], failed=total["failed"] + total["errors"], skipped=total["skipped"]), file=out,
        flush=True)
    return 1 if failed_jobs else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="how many jobs run at once (default 2)")
    parser.add_argument("job", nargs="*", help="project or a stack's name (default: project and the CI stacks)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    names, ci = stacks()
    jobs = args.job or [PROJECT] + ci
    unknown = [job for job in jobs if job != PROJECT and job not in names]
    if unknown:
        parser.error("unknown job {}: choose {} or a stack of env_matrix/stacks.json".format(
            ", ".join(unknown), PROJECT))
    sys.exit(run(jobs, args.jobs))


if __name__ == "__main__":
    main()
