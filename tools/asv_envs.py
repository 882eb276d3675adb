"""Print the asv environment names of one profile (and, optionally, some stacks), one per line, for
`asv run -E NAME`.

    python tools/asv_envs.py --profile small [--stack torch-2.13 ...] [--include-timeline]

The names come from asv's own reading of asv.conf.json; a profile or stack no entry declares is an error.
Without --stack, the stacks marked ``timeline`` in env_matrix/stacks.json are left out unless
--include-timeline is given: `make run` holds every environment it runs at once, and the timeline's
dozens of releases are for `make matrix`, which builds and prunes them one at a time.
"""
import argparse
import os
import sys

from asv import environment
from asv.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILE_VAR = "RNNBENCH_PROFILE"
STACK_VAR = "RNNBENCH_STACK"


def env_names(profile, stacks=None, config=os.path.join(ROOT, "asv.conf.json")):
    conf = Config.load(config)
    return [env.name for env in environment.get_environments(conf, None, verbose=False)
            if env.env_vars.get(PROFILE_VAR) == profile and (not stacks or env.env_vars.get(STACK_VAR) in stacks)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--stack", action="append", default=[], help="a stack of env_matrix/stacks.json")
    parser.add_argument("--include-timeline", action="store_true",
                        help="without --stack, also the stacks marked timeline")
    args = parser.parse_args(argv)
    names = env_names(args.profile)
    if not names:
        sys.exit("asv_envs: no asv.conf.json entry sets {}={!r}".format(PROFILE_VAR, args.profile))
    for stack in args.stack:
        if not env_names(args.profile, [stack]):
            sys.exit("asv_envs: no asv.conf.json entry runs stack {!r} at profile {!r}".format(stack, args.profile))
    stacks = args.stack
    if not stacks and not args.include_timeline:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import env_matrix

        timeline = env_matrix.timeline_stacks()
        stacks = [s["name"] for s in env_matrix.load_stacks() if s["name"] not in timeline]
    print("\n".join(env_names(args.profile, stacks)))


if __name__ == "__main__":
    main()
