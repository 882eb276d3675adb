"""The framework-version matrix: env_matrix/stacks.json is valid, asv.conf.json's entries come from it,
and malformed or contradictory stacks are refused with one line naming them."""
import copy
import json
import os
import sys

import pytest

from conftest import ROOT
from benchmarks import common, scenarios

sys.path.insert(0, os.path.join(ROOT, "tools"))
import env_matrix  # noqa: E402


def test_the_matrix_is_valid_and_asv_conf_is_generated_from_it():
    stacks = env_matrix.load_stacks()
    env_matrix.check(stacks)
    assert set(env_matrix.FRAMEWORK_PACKAGES) == set(common.FRAMEWORKS)
    assert set(env_matrix.PROFILES) == set(scenarios.PROFILES)


def test_every_framework_has_a_stack_and_ci_covers_the_legacy_stacks():
    stacks = env_matrix.load_stacks()
    served = {framework for stack in stacks for framework in stack["frameworks"]}
    assert served == set(common.FRAMEWORKS)
    ci = {framework for stack in stacks if stack.get("ci") for framework in stack["frameworks"]}
    assert {"tensorflow", "lasagne", "keras", "pytorch"} <= ci


def test_the_torch_timeline_spans_a_dozen_releases_and_the_bars_keep_the_headline_stacks():
    stacks = env_matrix.load_stacks()
    torch = sorted({s["req"]["torch"] for s in stacks if "pytorch" in s["frameworks"]},
                   key=lambda v: tuple(int(p) for p in v.split(".")))
    assert len(torch) >= 12 and torch[0] == "1.0.0", torch
    timeline = env_matrix.timeline_stacks()
    assert {"torch-1.1", "torch-1.12"} <= timeline
    # the study's stacks and the newest of each framework are never timeline-only
    assert not timeline & {"torch-1.0", "torch-1.4-warpctc", "torch-2.13", "tensorflow-1.15", "theano-1.0"}


def test_entries_carry_stack_profile_and_backend():
    stacks = env_matrix.load_stacks()
    entries = env_matrix.asv_entries(stacks)
    assert len(entries) == sum(len(s.get("profiles", env_matrix.PROFILES)) for s in stacks)
    theano = [e for e in entries if e["env"] == {"RNNBENCH_STACK": "theano-1.0"}]
    assert [e["env_nobuild"] for e in theano] == [{"RNNBENCH_PROFILE": "small", "KERAS_BACKEND": "theano"}]


def _refused(tmp_path, mutate):
    data = json.load(open(env_matrix.STACKS_FILE))
    stacks = data["stacks"]
    mutate(stacks)
    path = tmp_path / "stacks.json"
    path.write_text(json.dumps(data))
    with pytest.raises(env_matrix.MatrixError) as error:
        env_matrix.load_stacks(str(path))
    message = str(error.value)
    assert "\n" not in message
    return message


def _stack(name):
    def get(stacks):
        return next(s for s in stacks if s["name"] == name)
    return get


CASES = [
    (lambda s: _stack("torch-1.0")(s)["req"].update(torch=">=1.0"),
     "stack 'torch-1.0': torch '>=1.0' is not an exact version"),
    (lambda s: _stack("torch-1.0")(s)["req"].update({"warpctc-pytorch": "0.2.1+torch14.cpu"}),
     "stack 'torch-1.0': warpctc-pytorch==0.2.1+torch14.cpu: asv drops a local version tag"),
    (lambda s: _stack("theano-1.0")(s)["env"].pop("KERAS_BACKEND"),
     "stack 'theano-1.0': a stack serving keras must set KERAS_BACKEND"),
    (lambda s: _stack("theano-1.0")(s)["env"].update(KERAS_BACKEND="tensorflow"),
     "stack 'theano-1.0': KERAS_BACKEND=tensorflow but the stack pins none of tensorflow, tensorflow-cpu"),
    (lambda s: _stack("torch-1.0")(s)["frameworks"].append("chainer"),
     "stack 'torch-1.0': unknown framework 'chainer'"),
    (lambda s: _stack("torch-1.0")(s)["frameworks"].append("tensorflow"),
     "stack 'torch-1.0': serves tensorflow but pins none of tensorflow, tensorflow-cpu"),
    (lambda s: _stack("torch-1.0")(s).update(profiles=["tiny"]),
     "stack 'torch-1.0': 'profiles' must list distinct profiles"),
    (lambda s: _stack("torch-1.0")(s).update(pythn="3.7"), "stack 'torch-1.0': unknown field 'pythn'"),
    (lambda s: _stack("torch-1.0")(s).update(python="3"), "stack 'torch-1.0': python '3' is not of the form 3.X"),
    (lambda s: _stack("torch-1.0")(s).update(pip="warpctc"), "stack 'torch-1.0': 'pip' must be a list"),
    (lambda s: _stack("torch-1.0")(s).update(env={"RNNBENCH_PROFILE": "seed"}),
     "stack 'torch-1.0': RNNBENCH_PROFILE is set by the matrix itself"),
    (lambda s: s.append(copy.deepcopy(_stack("torch-1.0")(s))), "stack 'torch-1.0': the name is used twice"),
    (lambda s: s.append(dict(copy.deepcopy(_stack("torch-1.0")(s)), name="torch-1.0-again")),
     "stack 'torch-1.0-again': installs the same as stack 'torch-1.0'"),
    (lambda s: _stack("torch-1.0")(s).pop("req"), "stack 'torch-1.0': missing field 'req'"),
    (lambda s: _stack("torch-1.0")(s).update(timeline="yes"), "stack 'torch-1.0': 'timeline' must be true or false"),
    (lambda s: s.insert(6, "torch"), "stack #7 is not an object"),
]


@pytest.mark.parametrize("mutate, message", CASES)
def test_malformed_stacks_are_refused_with_one_line_naming_them(tmp_path, mutate, message):
    assert message in _refused(tmp_path, mutate)


def test_duplicate_keys_and_bad_json_are_refused(tmp_path):
    path = tmp_path / "stacks.json"
    path.write_text('{"stacks": [{"name": "a", "name": "b"}]}')
    with pytest.raises(env_matrix.MatrixError, match="key 'name' is given twice"):
        env_matrix.load_stacks(str(path))
    path.write_text('{"stacks": [')
    with pytest.raises(env_matrix.MatrixError, match="not valid JSON"):
        env_matrix.load_stacks(str(path))


def test_a_stale_asv_conf_is_reported(monkeypatch):
    stacks = env_matrix.load_stacks()
    stacks[0] = dict(stacks[0], req=dict(stacks[0]["req"], numpy="2.4.5"))
    with pytest.raises(env_matrix.MatrixError, match="differ from env_matrix/stacks.json; run"):
        env_matrix.check(stacks)


def test_install_extras_runs_the_named_stacks_pip_steps(monkeypatch):
    calls = []
    monkeypatch.setattr(env_matrix, "_pip", lambda python, args: calls.append(args))
    monkeypatch.setenv("RNNBENCH_STACK", "torch-1.4-warpctc")
    env_matrix.install_extras(env_matrix.load_stacks())
    assert calls == [["--use-deprecated=legacy-resolver", "--no-deps", "warpctc-pytorch==0.2.1+torch14.cpu"]]
    monkeypatch.setenv("RNNBENCH_STACK", "torch-2.13")
    env_matrix.install_extras(env_matrix.load_stacks())
    assert len(calls) == 1
    monkeypatch.setenv("RNNBENCH_STACK", "torch-9")
    with pytest.raises(env_matrix.MatrixError, match="unknown stack 'torch-9'; choose from torch-2.13"):
        env_matrix.install_extras(env_matrix.load_stacks())


def test_each_stack_tests_its_frameworks():
    stacks = env_matrix.load_stacks()
    files = env_matrix.test_files(env_matrix.find(stacks, "torch-1.4-warpctc"))
    assert os.path.join("tests", "test_pytorch.py") in files
    assert os.path.join("tests", "test_implementations.py") in files
