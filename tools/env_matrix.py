"""The framework-version matrix: validate env_matrix/stacks.json and turn it into asv's entries.

    python tools/env_matrix.py check              validate, and check asv.conf.json's entries are current
    python tools/env_matrix.py write              validate, and rewrite asv.conf.json's "include" list
    python tools/env_matrix.py list [--ci]        stack names (--ci: those whose tests make test runs)
    python tools/env_matrix.py venv STACK         build .venv-stacks/STACK, a test environment of STACK
    python tools/env_matrix.py test STACK [ARGS]  run STACK's tests in it (ARGS go to pytest)
    python tools/env_matrix.py install-extras     (asv's install_command) the extra pip steps of the
                                                  stack named by RNNBENCH_STACK, in the running Python

Each stack becomes one asv matrix entry per profile: its pins as asv requirements, RNNBENCH_STACK (a build
variable, so each stack has its own environment and a readable name) and, as env_nobuild variables,
RNNBENCH_PROFILE and the stack's own variables (e.g. KERAS_BACKEND). A malformed or contradictory stack
is refused with one line naming it. Standard library only, Python 3.7 and newer: install-extras runs
inside the legacy environments.
"""
import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACKS_FILE = os.path.join(ROOT, "env_matrix", "stacks.json")
ASV_CONF = os.path.join(ROOT, "asv.conf.json")
STACK_VAR = "RNNBENCH_STACK"
PROFILE_VAR = "RNNBENCH_PROFILE"
PROFILES = ("small", "seed")  # benchmarks.scenarios.PROFILES, checked by the tests
# What each framework key needs installed: a stack serving a framework must pin one of these.
FRAMEWORK_PACKAGES = {
    "pytorch": ("torch",),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
    "lasagne": ("lasagne",),
    "jax": ("jax",),
    "pytensor": ("pytensor",),
}
# Keras backend -> the packages that provide it.
KERAS_BACKENDS = {"tensorflow": ("tensorflow", "tensorflow-cpu"), "theano": ("theano",), "jax": ("jax",),
                  "torch": ("torch",)}
# The pytest each Python can run, for the test environments of `venv`.
PYTEST_PINS = {"3.7": "pytest==7.4.4"}
DEFAULT_PYTEST = "pytest==9.2.0"

FIELDS = {"name", "python", "frameworks", "req", "pip", "env", "profiles", "ci", "timeline", "note"}
NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")
PYTHON = re.compile(r"^3\.\d+$")
EXACT_VERSION = re.compile(r"^\d+(\.\d+)*([a-z]+\d+)?(\.post\d+)?$")
INCLUDE_BLOCK = re.compile(r'(    "include": \[\n)(.*?)(\n    \])', re.S)


class MatrixError(ValueError):
    """A malformed or contradictory matrix; the message is one line naming the stack."""


def _no_duplicate_keys(pairs):
    seen = collections.OrderedDict()
    for key, value in pairs:
        if key in seen:
            raise MatrixError("key {!r} is given twice".format(key))
        seen[key] = value
    return seen


def _load(path):
    try:
        with open(path) as f:
            return json.load(f, object_pairs_hook=_no_duplicate_keys)
    except MatrixError as error:
        raise MatrixError("{}: {}".format(os.path.relpath(path, ROOT), error))
    except ValueError as error:
        raise MatrixError("{}: not valid JSON ({})".format(os.path.relpath(path, ROOT), error))


def _string_map(stack, field):
    value = stack.get(field, {})
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise MatrixError("'{}' must map names to strings".format(field))
    return value


def _check_stack(stack):
    """Raise MatrixError (without the stack's name) if one stack is malformed or contradicts itself."""
    unknown = sorted(set(stack) - FIELDS)
    if unknown:
        raise MatrixError("unknown field {!r}; fields are {}".format(unknown[0], ", ".join(sorted(FIELDS))))
    for field in ("name", "python", "frameworks", "req"):
        if field not in stack:
            raise MatrixError("missing field {!r}".format(field))
    if not isinstance(stack["python"], str) or not PYTHON.match(stack["python"]):
        raise MatrixError("python {!r} is not of the form 3.X".format(stack["python"]))
    frameworks = stack["frameworks"]
    if not isinstance(frameworks, list) or not frameworks:
        raise MatrixError("'frameworks' must be a non-empty list")
    req = _string_map(stack, "req")
    for package, version in req.items():
        if "+" in version:
            raise MatrixError("{}=={}: asv drops a local version tag (+...); install it with a 'pip' step"
                              .format(package, version))
        if not EXACT_VERSION.match(version):
            raise MatrixError("{} {!r} is not an exact version (pins only, no ranges)".format(package, version))
    lowered = {package.lower() for package in req}
    for framework in frameworks:
        if framework not in FRAMEWORK_PACKAGES:
            raise MatrixError("unknown framework {!r}; choose from {}".format(
                framework, ", ".join(sorted(FRAMEWORK_PACKAGES))))
        if not lowered.intersection(FRAMEWORK_PACKAGES[framework]):
            raise MatrixError("serves {} but pins none of {}".format(
                framework, ", ".join(FRAMEWORK_PACKAGES[framework])))
    pip = stack.get("pip", [])
    if not isinstance(pip, list) or not all(
            isinstance(args, list) and args and all(isinstance(a, str) for a in args) for args in pip):
        raise MatrixError("'pip' must be a list of pip argument lists")
    env = _string_map(stack, "env")
    for reserved in (STACK_VAR, PROFILE_VAR):
        if reserved in env:
            raise MatrixError("{} is set by the matrix itself, not by 'env'".format(reserved))
    backend = env.get("KERAS_BACKEND")
    if ("keras" in frameworks) != (backend is not None):
        raise MatrixError("a stack serving keras must set KERAS_BACKEND, and only such a stack")
    if backend is not None and backend not in KERAS_BACKENDS:
        raise MatrixError("KERAS_BACKEND {!r} is not one of {}".format(backend, ", ".join(sorted(KERAS_BACKENDS))))
    if backend is not None and not lowered.intersection(KERAS_BACKENDS[backend]):
        raise MatrixError("KERAS_BACKEND={} but the stack pins none of {}".format(
            backend, ", ".join(KERAS_BACKENDS[backend])))
    profiles = stack.get("profiles", list(PROFILES))
    if not isinstance(profiles, list) or not profiles or len(set(profiles)) != len(profiles) or \
            not set(profiles) <= set(PROFILES):
        raise MatrixError("'profiles' must list distinct profiles from {}".format(", ".join(PROFILES)))
    for flag in ("ci", "timeline"):
        if not isinstance(stack.get(flag, False), bool):
            raise MatrixError("'{}' must be true or false".format(flag))


def load_stacks(path=STACKS_FILE):
    """The validated stacks, in file order."""
    data = _load(path)
    where = os.path.relpath(path, ROOT)
    if not isinstance(data, dict) or not isinstance(data.get("stacks"), list) or not data["stacks"]:
        raise MatrixError("{}: expected an object with a non-empty 'stacks' list".format(where))
    names, identities = set(), {}
    for index, stack in enumerate(data["stacks"]):
        label = "stack #{}".format(index + 1)
        if not isinstance(stack, dict):
            raise MatrixError("{}: {} is not an object".format(where, label))
        name = stack.get("name")
        if isinstance(name, str):
            label = "stack {!r}".format(name)
            if not NAME.match(name):
                raise MatrixError("{}: {}: name must be lower-case letters, digits, '.' and '-'".format(where, label))
            if name in names:
                raise MatrixError("{}: {}: the name is used twice".format(where, label))
            names.add(name)
        try:
            _check_stack(stack)
        except MatrixError as error:
            raise MatrixError("{}: {}: {}".format(where, label, error))
        identity = json.dumps([stack["python"], stack["req"], stack.get("pip", []), stack.get("env", {})],
                              sort_keys=True)
        if identity in identities:
            raise MatrixError("{}: {}: installs the same as stack {!r}".format(where, label, identities[identity]))
        identities[identity] = name
    return data["stacks"]


def timeline_stacks(path=STACKS_FILE):
    """Names of the stacks marked timeline: releases that only fill a framework's history."""
    return {stack["name"] for stack in load_stacks(path) if stack.get("timeline", False)}


def asv_entries(stacks):
    """asv.conf.json "include" entries: one per stack and profile."""
    entries = []
    for stack in stacks:
        for profile in stack.get("profiles", PROFILES):
            nobuild = collections.OrderedDict([(PROFILE_VAR, profile)])
            nobuild.update(sorted(stack.get("env", {}).items()))
            entries.append(collections.OrderedDict([
                ("python", stack["python"]),
                ("req", collections.OrderedDict(stack["req"])),
                ("env", {STACK_VAR: stack["name"]}),
                ("env_nobuild", nobuild),
            ]))
    return entries


def include_block(stacks):
    return ",\n".join("        " + json.dumps(entry) for entry in asv_entries(stacks))


def _conf_text():
    with open(ASV_CONF) as f:
        return f.read()


def write(stacks):
    text = _conf_text()
    if not INCLUDE_BLOCK.search(text):
        raise MatrixError("asv.conf.json: no '\"include\": [' block to rewrite")
    new = INCLUDE_BLOCK.sub(lambda m: m.group(1) + include_block(stacks) + m.group(3), text, count=1)
    with open(ASV_CONF, "w") as f:
        f.write(new)


def check(stacks):
    match = INCLUDE_BLOCK.search(_conf_text())
    if not match or match.group(2) != include_block(stacks):
        raise MatrixError("asv.conf.json's entries differ from env_matrix/stacks.json; "
                          "run `python tools/env_matrix.py write`")


def find(stacks, name):
    for stack in stacks:
        if stack["name"] == name:
            return stack
    raise MatrixError("unknown stack {!r}; choose from {}".format(name, ", ".join(s["name"] for s in stacks)))


def _pip(python, args):
    subprocess.check_call([python, "-m", "pip", "install", "--quiet"] + list(args))


def install_extras(stacks, python=sys.executable):
    name = os.environ.get(STACK_VAR)
    if name is None:
        raise MatrixError("{} is not set; asv sets it from asv.conf.json's matrix".format(STACK_VAR))
    for args in find(stacks, name).get("pip", []):
        _pip(python, args)


def venv_dir(name):
    return os.path.join(ROOT, ".venv-stacks", name)


def build_venv(stacks, name):
    """.venv-stacks/NAME: a test environment of one stack, with the same pins and extra steps as its asv
    environment, plus pytest. Rebuilt only when the stack's definition changed."""
    stack = find(stacks, name)
    directory = venv_dir(name)
    stamp_file = os.path.join(directory, "rnnbench-stack.json")
    stamp = json.dumps(stack, sort_keys=True)
    if os.path.exists(stamp_file):
        with open(stamp_file) as f:
            if f.read() == stamp:
                return directory
    # Seed pip 24.0 (the last for Python 3.7) and never let virtualenv fetch newer seeds outside pip; the
    # Makefile sets the same for asv's environments.
    seeds = {"VIRTUALENV_PIP": "24.0", "VIRTUALENV_SETUPTOOLS": "68.0.0", "VIRTUALENV_WHEEL": "0.42.0",
             "VIRTUALENV_NO_PERIODIC_UPDATE": "1"}
    env = dict(seeds, **os.environ)
    subprocess.check_call([sys.executable, "-m", "virtualenv", "--clear", "--quiet", "-p",
                           _interpreter(stack["python"]), directory], env=env)
    python = os.path.join(directory, "bin", "python")
    _pip(python, ["{}=={}".format(p, v) for p, v in stack["req"].items()]
         + [PYTEST_PINS.get(stack["python"], DEFAULT_PYTEST)])
    for args in stack.get("pip", []):
        _pip(python, args)
    with open(stamp_file, "w") as f:
        f.write(stamp)
    return directory


def test_files(stack):
    """The tests a stack's environment runs: data, reference, matrix, every implementation, and the
    framework-specific tests of the frameworks it serves."""
    files = ["test_scenarios.py", "test_reference.py", "test_env_matrix.py", "test_implementations.py"]
    for framework in stack["frameworks"]:  # test_keras.py and test_keras_3.py, ...
        files += ["test_{}.py".format(framework)] + sorted(
            os.path.basename(f) for f in glob.glob(os.path.join(ROOT, "tests", "test_{}_*.py".format(framework))))
    return [os.path.join("tests", f) for f in files if os.path.exists(os.path.join(ROOT, "tests", f))]


def run_tests(stacks, name, pytest_args=()):
    """Run the stack's tests in its environment, with the stack's variables set as asv sets them."""
    stack = find(stacks, name)
    env = dict(os.environ)
    env.update(stack.get("env", {}))
    env[STACK_VAR] = name
    python = os.path.join(build_venv(stacks, name), "bin", "python")
    command = [python, "-m", "pytest", "-p", "no:cacheprovider"] + test_files(stack) + list(pytest_args)
    print("env_matrix: stack {}: {}".format(name, " ".join(command[1:])), flush=True)
    return subprocess.call(command, cwd=ROOT, env=env)


def _interpreter(version):
    """pythonX.Y from pyenv's version folders (its shims fail) or from PATH."""
    base = "/root/.pyenv/versions"
    if os.path.isdir(base):
        for folder in sorted(os.listdir(base), reverse=True):
            candidate = os.path.join(base, folder, "bin", "python" + version)
            if folder.startswith(version + ".") and os.path.exists(candidate):
                return candidate
    return "python" + version


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    commands.required = True
    commands.add_parser("check")
    commands.add_parser("write")
    listing = commands.add_parser("list")
    listing.add_argument("--ci", action="store_true")
    commands.add_parser("venv").add_argument("stack")
    test = commands.add_parser("test")
    test.add_argument("stack")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    commands.add_parser("install-extras")
    args = parser.parse_args(argv)
    try:
        stacks = load_stacks()
        if args.command == "check":
            check(stacks)
        elif args.command == "write":
            write(stacks)
        elif args.command == "list":
            print("\n".join(s["name"] for s in stacks if s.get("ci", False) or not args.ci))
        elif args.command == "venv":
            build_venv(stacks, args.stack)
        elif args.command == "test":
            sys.exit(run_tests(stacks, args.stack, args.pytest_args))
        else:
            install_extras(stacks)
    except MatrixError as error:
        sys.exit("env_matrix: {}".format(error))


if __name__ == "__main__":
    main()
