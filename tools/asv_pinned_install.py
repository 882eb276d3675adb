"""asv plugin (asv.conf.json's "plugins"): install a stack's pins in one pip call.

asv 0.6's virtualenv environment installs each requirement with its own ``pip install --upgrade``, so a
later requirement can move an earlier pin: in ``jax-0.4.20``, installing ``flax==0.7.5`` alone brought the
newest releases of its dependencies (orbax-checkpoint, chex), which need a newer jax, and pip replaced jax
0.4.20 with a release that needs numpy 2, so the suite could not even be imported there. One call lets pip
resolve every pin of the stack together, as ``tools/env_matrix.py`` does for the test environments, so an
asv environment holds what the tests ran. asv's own parsing of each requirement is kept.

asv imports the plugin from the directory it runs in (the repository root; the Makefile runs it there).
"""
import os

from asv import util
from asv.plugins.virtualenv import Virtualenv


def pip_arguments(requirements):
    """``pip install`` arguments for every requirement at once, each parsed as asv parses it alone."""
    arguments = []
    for key, value in requirements.items():
        name = key[len("pip+"):] if key.startswith("pip+") else key
        declaration = util.ParsedPipDeclaration("{} {}".format(name, value).strip())
        single = util.construct_pip_call(lambda args: args, declaration)()  # ['install', '-v', '--upgrade', ...]
        arguments.extend(single[3:])
    return ["install", "-v", "--upgrade"] + arguments


def _install_requirements(self):
    env = dict(os.environ)
    env.update(self.build_env_vars)
    self._run_pip(["install", "-v", "wheel", "pip>=8"], env=env)
    requirements = {**self._requirements, **self._base_requirements}
    if requirements:
        self._run_pip(pip_arguments(requirements), env=env)


def setup():
    """Called by asv's plugin manager when it loads this module."""
    if not hasattr(Virtualenv, "_install_requirements"):
        raise RuntimeError("asv_pinned_install: this asv's Virtualenv has no _install_requirements to replace; "
                           "check the plugin against the installed asv")
    Virtualenv._install_requirements = _install_requirements
