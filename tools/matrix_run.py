"""Run the environment matrix entry by entry, pruning each environment after its run, resumable.

    python tools/matrix_run.py --machine NAME [--profile small] [--stack S ...] [--keep-envs]
                               [--speed-check [--wait-for-speed MINUTES] [--retries N]] [-- ASV RUN ARGUMENTS]

A whole matrix of framework releases does not fit on a small disk at once (a torch, TensorFlow or JAX
environment takes 1 to 6 GB). So, for each asv environment of the profile (each stack, in
env_matrix/stacks.json's order), this runs ``asv run -E <entry> --skip-existing --record-samples HEAD^!`` (the
checked-out commit, unless the asv arguments name commits), then deletes that environment's directory under .asv/env. asv saves each entry's results as it
goes; because of ``--skip-existing``, running the same command again skips every benchmark that already
has a result (or a failure) at this commit, so a stopped run resumes where it stopped, and a finished
entry costs only its environment's rebuild. pip's own cache is left alone, so a rebuild downloads nothing
where pip keeps one.

Each entry's outcome is printed as one line at the end; the exit status is 0 only if every entry ran
without a failed benchmark.

With --speed-check (`make matrix` passes it unless SPEED_CHECK=0), tools/speed_check.py's control cells run
before the first entry and after each one: asv files results under the machine's name, and a guest of one
name can be 1.5 to 2 times slower on some hosts or in some hours. If the machine is not at its usual speed
before the first entry, nothing runs; if it is not after an entry, that entry's results are in doubt: the
result files its run wrote or changed are moved to .asv/doubtful/<machine>/ (what was there before is put
back), so that only times taken between two passing checks are filed, and the run stops there, or, with
--retries N (`make matrix SPEED_RETRIES=N`), waits for the machine's usual speed and runs that entry again, up
to N times. Where the machine has no reference yet (no stored result of the control stack), the check is
skipped with a note. A machine's slow spells come and go (on
the guest this suite's results name, they lasted hours); --wait-for-speed MINUTES (`make matrix
SPEED_WAIT=MINUTES`) checks again every RECHECK_MINUTES for up to that long before giving up, instead of
giving up at once.

A new machine's reference is its first control-stack run, and that run may have sat at one end of the
machine's spread, so that checks at its other end keep failing, the control stack's own runs meant to steady
the reference included. While the reference rests on fewer than speed_check.STEADY_REFERENCE_RUNS runs and
nothing but the control stack is stored for the machine (nothing else was filed against it yet),
--steady-reference (`make matrix STACKS=torch-2.13 STEADY_REFERENCE=1`) runs the control stack between two
checks and files it when the run's own medians of the control cells and the check after it each agree with
the check before within the factor, whatever the thin reference says: the machine was steady across the run,
at whatever speed it had. Both checks are logged as any other.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from asv import environment
from asv.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asv_envs  # noqa: E402
import speed_check  # noqa: E402


def entries(profile, stacks=None, config=os.path.join(ROOT, "asv.conf.json")):
    """The (environment name, environment directory) of each matrix entry to run, in the matrix's order."""
    conf = Config.load(config)
    known = {env.env_vars.get(asv_envs.STACK_VAR) for env in environment.get_environments(conf, None, verbose=False)
             if env.env_vars.get(asv_envs.PROFILE_VAR) == profile}
    if not known:
        raise SystemExit("matrix_run: no asv.conf.json entry sets {}={!r}".format(asv_envs.PROFILE_VAR, profile))
    for stack in stacks or ():
        if stack not in known:
            raise SystemExit("matrix_run: no asv.conf.json entry runs stack {!r} at profile {!r}".format(stack, profile))
    return [(env.name, os.path.join(env_root(conf), env.dir_name))
            for env in environment.get_environments(conf, None, verbose=False)
            if env.env_vars.get(asv_envs.PROFILE_VAR) == profile
            and (not stacks or env.env_vars.get(asv_envs.STACK_VAR) in stacks)]


def env_root(conf):
    """asv's environment folder (asv.conf.json's env_dir, relative to the repository)."""
    return os.path.join(ROOT, conf.env_dir)


def _names_commits(asv_args):
    """Whether asv's arguments name the commits to run (a range such as ``abc123^!`` or ``a..b``, or one of
    asv's words for a set of commits)."""
    return any("^!" in arg or ".." in arg or arg in ("ALL", "EXISTING", "NEW", "HASHFILE") for arg in asv_args)


def asv_run_command(env_name, machine, asv_args=()):
    # --record-samples: every sample is kept, for the comparisons' significance tests and the study's CSV.
    # HEAD^!: asv's default is the newest commit of asv.conf.json's branches (main), while the benchmarks it
    # imports are this checkout's; naming the checked-out commit keeps the two the same on any branch.
    commits = [] if _names_commits(asv_args) else ["HEAD^!"]
    return [sys.executable, "-m", "asv", "run", "--machine", machine, "--show-stderr", "--skip-existing",
            "--record-samples", "-E", env_name] + commits + list(asv_args)


def prune(env_dir, env_root):
    """Delete one environment's directory, never anything outside asv's environment folder."""
    env_dir, env_root = os.path.realpath(env_dir), os.path.realpath(env_root)
    if os.path.dirname(env_dir) != env_root:
        raise SystemExit("matrix_run: refusing to delete {}: not an environment of {}".format(env_dir, env_root))
    if os.path.isdir(env_dir):
        shutil.rmtree(env_dir)
        return True
    return False


# Between two checks of a slow machine: long enough for a check (about a minute of both cores) not to load
# the host itself, short enough not to miss much of a fast spell.
RECHECK_MINUTES = 7


def speed_gate(machine, profile, when, exclude_runs=(), measured=None):
    """speed_check's verdict (True/False), or None where it cannot check (a note is printed); ``measured``: as
    speed_check.check's."""
    print("matrix_run: speed check {}".format(when), flush=True)
    try:
        return speed_check.check(machine, profile, out=lambda line: print(line, flush=True),
                                 log=speed_check.log_path(machine), exclude_runs=exclude_runs, measured=measured)
    except speed_check.CannotCheck as reason:
        print("matrix_run: speed check skipped: {}".format(reason), flush=True)
        return None


def wait_for_speed(machine, profile, minutes, when="before the first entry"):
    """The first speed check's verdict, checking again every RECHECK_MINUTES while the machine is slow, for up
    to `minutes` in all (0: one check)."""
    give_up = time.monotonic() + minutes * 60
    verdict = speed_gate(machine, profile, when)
    while verdict is False and time.monotonic() < give_up:
        pause = min(RECHECK_MINUTES * 60, give_up - time.monotonic())
        print("matrix_run: not at its usual speed; checking again in {:.0f} min (until {:.0f} min have "
              "passed)".format(pause / 60, minutes), flush=True)
        time.sleep(pause)
        verdict = speed_gate(machine, profile, when + ", again")
    return verdict


def results_folder(conf, machine):
    """Where asv files this machine's results."""
    return os.path.join(ROOT, conf.results_dir, machine)


def doubtful_folder(machine):
    """Where results taken while the machine was slow are set aside (ignored by git and by asv publish)."""
    return os.path.join(ROOT, ".asv", "doubtful", machine)


def snapshot(folder):
    """{name: content} of a machine's result files, to tell afterwards what one entry's run wrote."""
    if not os.path.isdir(folder):
        return {}
    snap = {}
    for name in os.listdir(folder):
        if name.endswith(".json") and name != "machine.json":
            with open(os.path.join(folder, name), "rb") as f:
                snap[name] = f.read()
    return snap


def written_since(folder, before):
    """{name: content} of the result files written or changed since `before` (a snapshot)."""
    return {name: content for name, content in snapshot(folder).items() if before.get(name) != content}


def runs_of(written):
    """The runs result files hold: (suite commit, environment), asv's commit_hash and env_name in each. Not the
    commits alone: the control stack may have run at the same commit as the entry, and its results there are
    the reference the entry's after-check needs."""
    return {(data.get("commit_hash"), data.get("env_name"))
            for data in (json.loads(content.decode("utf-8")) for content in written.values())}


def set_aside(folder, before, aside):
    """Move the result files written or changed since `before` (a snapshot) into `aside`, each under a UTC
    stamp, and put back what they held before: the names moved."""
    moved = []
    for name in sorted(written_since(folder, before)):
        os.makedirs(aside, exist_ok=True)
        shutil.move(os.path.join(folder, name),
                    os.path.join(aside, "{}-{}".format(time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), name)))
        if name in before:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(before[name])
        moved.append(name)
    return moved


def run_asv(args, conf, env_name, env_dir):
    """asv run of one entry, its environment pruned after unless kept: (exit code, outcome)."""
    code = subprocess.call(asv_run_command(env_name, args.machine, args.asv_args), cwd=ROOT)
    # asv exits 2 when a benchmark failed (its results are saved all the same), 1 when it could not run.
    outcome = {0: "ok", 2: "some benchmarks failed"}.get(code, "asv run exited {}".format(code))
    if not args.keep_envs and prune(env_dir, env_root(conf)):
        outcome += ", environment pruned"
    return code, outcome


def run_entry(args, conf, checking, env_name, env_dir, folder, aside):
    """Run one matrix entry (again, up to args.retries times, while the machine slowed down during it):
    (exit code, outcome line, whether the matrix run stops here)."""
    for attempt in range(args.retries + 1):
        print("matrix_run: {}{}".format(env_name, " (again)" if attempt else ""), flush=True)
        before = snapshot(folder)
        code, outcome = run_asv(args, conf, env_name, env_dir)
        # The check is judged against the reference as it stood before this entry: where the entry is the
        # control stack itself, its own new times would otherwise pull the reference towards them.
        if not checking or speed_gate(args.machine, args.profile, "after " + env_name,
                                      runs_of(written_since(folder, before))) is not False:
            return code, outcome + (" (run {} times)".format(attempt + 1) if attempt else ""), False
        # Times taken while the machine was slow are not filed under its name; set aside, not deleted, they
        # can still be looked at.
        moved = set_aside(folder, before, aside)
        outcome += ("; the machine was NOT at its usual speed afterwards, so this entry's results at this commit "
                    "are in doubt: {} moved to {}".format(", ".join(moved) or "nothing", aside))
        if attempt == args.retries or wait_for_speed(args.machine, args.profile, args.wait_for_speed,
                                                     "before running {} again".format(env_name)) is False:
            return code or 1, outcome + "; the run stopped here", True
        print("matrix_run: {}: {}; running it again".format(env_name, outcome), flush=True)


def steady_refusal(machine, profile, stacks):
    """Why --steady-reference cannot run here (one line), or None."""
    control = speed_check.CONTROL_STACK
    if stacks != [control]:
        return "--steady-reference runs the control stack alone: pass --stack {} and no other".format(control)
    try:
        runs, others = speed_check.reference_state(machine, profile)
    except speed_check.CannotCheck as reason:
        return "{}; the first {} run is filed by make matrix as usual".format(reason, control)
    if runs == 0:
        return "machine {!r} has no stored {} run yet; make matrix files the first one".format(machine, control)
    if runs >= speed_check.STEADY_REFERENCE_RUNS:
        return "the reference already rests on {} {} runs; make matrix checks them like any stack's".format(
            runs, control)
    if others:
        # Those stacks were filed while the machine matched the reference as it stands; moving the reference by
        # anything but passing checks would leave them at another speed than the one it then describes.
        return "{} filed against the thin reference ({}): steady it through the gate (make matrix STACKS={})".format(
            "stack" if len(others) == 1 else "stacks", ", ".join(others), control)
    return None


def steady_across(speed_before, own, speed_after, factor=None):
    """Whether the machine kept one speed across a control-stack run: the run's own medians of the control
    cells (what the reference is made of) and the check after it, each within the factor of the check before
    it: (verdict, one line saying so)."""
    factor = factor or speed_check.FACTOR
    cells = speed_check.CONTROL_CELLS
    missing = [" ".join(cell[1:]) for cell in cells if own.get(cell) is None]
    if missing:
        return False, "the run has no time for {}, which the reference needs".format(", ".join(missing))
    own_ratios, own_ok = speed_check.verdict([(cell, own[cell], speed_before[cell]) for cell in cells], factor)
    after_ratios, after_ok = speed_check.verdict([(cell, speed_after[cell], speed_before[cell]) for cell in cells],
                                                 factor)
    return own_ok and after_ok, ("against the check before it, the run's own medians read {} and the check after "
                                 "it {} (allowed {:.2f} to {:.2f})".format(
                                     "/".join("{:.2f}".format(ratio) for ratio in own_ratios),
                                     "/".join("{:.2f}".format(ratio) for ratio in after_ratios), 1 / factor, factor))


def steady_entry(args, conf, env_name, env_dir, folder, aside):
    """Run the control stack's entry between two checks, filing it when its own control cells and the check
    after it agree with the check before within the factor (again, up to args.retries times, while they do
    not): (exit code, outcome line)."""
    for attempt in range(args.retries + 1):
        # Each check is judged against the thin reference and logged as any other; what decides here is how the
        # run's own times and the check after it compare with the check before.
        speed_before, speed_after = {}, {}
        if speed_gate(args.machine, args.profile, "before {} (steadying the reference)".format(env_name), (),
                      speed_before) is None:
            return 1, "the speed check could not run; nothing ran"
        print("matrix_run: {}{}".format(env_name, " (again)" if attempt else ""), flush=True)
        before = snapshot(folder)
        code, outcome = run_asv(args, conf, env_name, env_dir)
        runs = runs_of(written_since(folder, before))
        if speed_gate(args.machine, args.profile, "after {} (steadying the reference)".format(env_name), runs,
                      speed_after) is None:
            return 1, outcome + "; the speed check after it could not run"
        steady, agreement = steady_across(speed_before, speed_check.run_medians(args.machine, args.profile, runs),
                                          speed_after)
        print("matrix_run: steadying the reference: {}: {}".format(agreement, "steady" if steady else "not steady"),
              flush=True)
        if steady:
            return code, "{}; {}: filed{}".format(outcome, agreement, " (run {} times)".format(attempt + 1)
                                                   if attempt else "")
        moved = set_aside(folder, before, aside)
        outcome += "; {}: not steady, {} moved to {}".format(agreement, ", ".join(moved) or "nothing", aside)
    return code or 1, outcome


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", required=True, help="asv machine name (make passes the registered one)")
    parser.add_argument("--profile", default="small")
    parser.add_argument("--stack", action="append", default=[], help="a stack of env_matrix/stacks.json (repeatable)")
    parser.add_argument("--keep-envs", action="store_true", help="do not delete each environment after its run")
    parser.add_argument("--speed-check", action="store_true",
                        help="check the machine's speed before the first entry and after each (tools/speed_check.py)")
    parser.add_argument("--wait-for-speed", type=float, default=0, metavar="MINUTES",
                        help="with --speed-check: while the machine is slow before the first entry, check again "
                             "every {} min for up to MINUTES before giving up".format(RECHECK_MINUTES))
    parser.add_argument("--retries", type=int, default=0, metavar="N",
                        help="with --speed-check: when the machine slowed down during an entry, wait for its usual "
                             "speed (as --wait-for-speed) and run that entry again, up to N times")
    parser.add_argument("--steady-reference", action="store_true",
                        help="with --speed-check and --stack {0} alone, while its reference rests on fewer than {1} "
                             "runs and nothing else is stored: file {0} when its own control cells and the check "
                             "after it agree with the check before it, whatever the thin reference says".format(
                                 speed_check.CONTROL_STACK, speed_check.STEADY_REFERENCE_RUNS))
    parser.add_argument("asv_args", nargs="*", help="passed on to asv run (after --)")
    args = parser.parse_args(argv)
    if args.wait_for_speed < 0 or (args.wait_for_speed and not args.speed_check):
        parser.error("--wait-for-speed wants --speed-check and a number of minutes >= 0")
    if args.retries < 0 or (args.retries and not args.speed_check):
        parser.error("--retries wants --speed-check and a number >= 0")
    if args.steady_reference and (not args.speed_check or args.wait_for_speed):
        parser.error("--steady-reference wants --speed-check, and no --wait-for-speed (it files at the speed the "
                     "machine keeps across the run, whatever that is)")
    conf = Config.load(os.path.join(ROOT, "asv.conf.json"))
    todo = entries(args.profile, args.stack)
    folder = results_folder(conf, args.machine)
    aside = doubtful_folder(args.machine)
    if args.steady_reference:
        why = steady_refusal(args.machine, args.profile, args.stack)
        if why:
            raise SystemExit("matrix_run: {}".format(why))
        (env_name, env_dir), = todo
        code, outcome = steady_entry(args, conf, env_name, env_dir, folder, aside)
        print("matrix_run: {}: {}".format(env_name, outcome))
        return 0 if code == 0 else 1
    checking = args.speed_check
    if checking:
        checking = wait_for_speed(args.machine, args.profile, args.wait_for_speed)
        if checking is False:
            raise SystemExit("matrix_run: {} is not at its usual speed (table above): nothing was run; try again "
                             "later (SPEED_WAIT=MINUTES keeps trying) or on another host, or pass SPEED_CHECK=0 to "
                             "file its times anyway".format(args.machine))
    folder = results_folder(conf, args.machine)
    aside = doubtful_folder(args.machine)
    outcomes = []
    for env_name, env_dir in todo:
        code, outcome, stop = run_entry(args, conf, checking, env_name, env_dir, folder, aside)
        outcomes.append((env_name, code, outcome))
        if stop:
            break
    for env_name, _, outcome in outcomes:
        print("matrix_run: {}: {}".format(env_name, outcome))
    return 0 if all(code == 0 for _, code, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
