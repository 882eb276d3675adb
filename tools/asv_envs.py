"""Print the asv environment names of one profile (and, optionally, some stacks), one per line, for
`asv run -E NAME`.

    python tools/asv_envs.py --profile small [--stack torch-2.13 ...]

The names come from asv's own reading of asv.conf.json; a profile or stack no entry declares is an error.
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
    args = parser.parse_args(argv)
    names = env_names(args.profile)
    if not names:
        sys.exit("asv_envs: no asv.conf.json entry sets {}={!r}".format(PROFILE_VAR, args.profile))
    for stack in args.stack:
        if not env_names(args.profile, [stack]):
            sys.exit("asv_envs: no asv.conf.json entry runs stack {!r} at profile {!r}".format(stack, args.profile))
    print("\n".join(env_names(args.profile, args.stack)))


if __name__ == "__main__":
    main()
