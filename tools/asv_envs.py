"""Print the asv environment names of one profile, one per line, for `asv run -E NAME`.

    python tools/asv_envs.py --profile small

The names come from asv's own reading of asv.conf.json; a profile no entry declares is an error.
"""
import argparse
import os
import sys

from asv import environment
from asv.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILE_VAR = "RNNBENCH_PROFILE"


def env_names(profile, config=os.path.join(ROOT, "asv.conf.json")):
    conf = Config.load(config)
    return [env.name for env in environment.get_environments(conf, None, verbose=False)
            if env.env_vars.get(PROFILE_VAR) == profile]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    args = parser.parse_args(argv)
    names = env_names(args.profile)
    if not names:
        sys.exit("asv_envs: no asv.conf.json entry sets {}={!r}".format(PROFILE_VAR, args.profile))
    print("\n".join(names))


if __name__ == "__main__":
    main()
