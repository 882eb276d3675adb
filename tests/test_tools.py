"""The tools/ scripts: dashboard made offline, machine names, results table."""
import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import machine_name  # noqa: E402
import offline_dashboard  # noqa: E402


def test_the_dashboard_loads_no_library_from_the_network():
    import asv
    with open(os.path.join(os.path.dirname(asv.__file__), "www", "index.html")) as f:
        html = offline_dashboard.localise(f.read())
    for match in offline_dashboard.EXTERNAL_TAG.finditer(html):
        assert match.group(1) == "link" and 'rel="stylesheet"' not in match.group(0), match.group(0)
    for local in offline_dashboard.LOCAL.values():
        assert local in html
        assert os.path.exists(os.path.join(offline_dashboard.VENDOR, local[len("vendor/"):])), local


def test_an_unknown_cdn_library_is_an_error():
    with pytest.raises(SystemExit, match="no vendored copy of https://cdn.example/new.js"):
        offline_dashboard.localise('<script src="https://cdn.example/new.js"></script>')


def test_registered_machines_carry_the_hardware(tmp_path, monkeypatch):
    from asv.machine import MachineCollection
    monkeypatch.setattr(MachineCollection, "get_machine_file_path", staticmethod(lambda: str(tmp_path / "m.json")))
    machine_name.register("test-box-small")
    info = MachineCollection.load("test-box-small")
    assert info["machine"] == "test-box-small"
    assert info["num_cpu"] == str(os.cpu_count()) and info["cpu"] and info["ram"] and info["os"] and info["arch"]


def test_machine_name_is_a_clean_slug():
    name = machine_name.machine_name()
    assert name and all(c.isalnum() or c == "-" for c in name) and name == name.lower()
    assert machine_name._slug("Intel(R) Xeon(R) Platinum 8480C CPU @ 2.00GHz") == "intel-xeon-platinum-8480c"
    assert machine_name._slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"


import results_table  # noqa: E402


def _committed_machines():
    results = os.path.join(ROOT, "results")
    return sorted(d for d in os.listdir(results) if os.path.isdir(os.path.join(results, d))) \
        if os.path.isdir(results) else []


@pytest.mark.parametrize("machine", _committed_machines())
def test_committed_results_give_a_complete_table(machine):
    # Every machine's committed results cover every scenario x implementation of their profile, and the
    # table reads them back: a time, or n/a where the cell was skipped (cuDNN on a CPU).
    profile = machine.rsplit("-", 1)[1]
    table = results_table.markdown(results_table.load(machine, profile))
    lines = table.splitlines()
    assert lines[0] == ("| stack | implementation | 1x320/CE-short | 1x320/CE-long | 4x320/CE-long | "
                        "4x320/CTC-long |")
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines[2:]]
    torch = [row for row in rows if row[0] == "torch-2.13"]
    assert [row[1] for row in torch] == [
        "pytorch LSTMCell-basic", "pytorch LSTMCell-fused", "pytorch nn.LSTM", "pytorch cuDNNLSTM",
        "pytorch nn.LSTM+warp-ctc"][:len(torch)]
    cells = [cell for row in torch[:3] for cell in row[2:]]
    assert all(cell.endswith("%") and " ms " in cell for cell in cells), cells
    # Every other cell is a time or n/a (skipped: cuDNN on a CPU, warp-ctc on a CE scenario).
    assert all(cell == "n/a" or (" ms " in cell) for row in rows for cell in row[2:]), rows
    # The metrics table: one row per timed cell, each metric a value or "-" where it was not measured.
    metrics = results_table.metrics_markdown(results_table.load(machine, profile)).splitlines()
    assert metrics[0].startswith("| stack | implementation | scenario | step (IQR/median) | forward | backward |")
    timed = sum(1 for row in rows for cell in row[2:] if cell != "n/a")
    assert len(metrics) - 2 == timed


def test_results_table_refuses_unknown_machines_and_profiles():
    with pytest.raises(SystemExit, match="no results for machine 'no-such-machine'"):
        results_table.load("no-such-machine", "small")


import harness_check  # noqa: E402


def _run(times, warmup=2):
    stamps = [sum(times[:i + 1]) + 1.0 for i in range(len(times))]  # 1 s of start-up, then the steps
    return {"times": times, "stamps": stamps, "warmup_steps": warmup}


def test_harness_check_finds_when_each_method_reaches_the_target():
    steady = _run([0.5, 0.3] + [0.1] * 60)
    reached = harness_check.first_reaching(harness_check.tight_prefixes(steady), 0.02)
    assert reached[0] == pytest.approx(0.1) and reached[3] == "10 steps"
    assert reached[2] == pytest.approx(1.0 + 0.5 + 0.3 + 0.1 * 10)
    # the study's mean needs 30 kept steps after discarding the first 20%: N = 37 (37 - round(7.4) = 30)
    study = harness_check.first_reaching(harness_check.study_prefixes(steady, 2), 0.02)
    assert study[3] == "N=37" and study[0] == pytest.approx(0.1)
    noisy = _run([0.1, 0.3] * 40)
    assert harness_check.first_reaching(harness_check.tight_prefixes(noisy), 0.02) is None


def test_harness_check_child_times_every_step_from_the_first(capsys):
    pytest.importorskip("torch")
    harness_check.child("pytorch", "nn.LSTM", "1x320/CE-short", "small", steps=3)
    out = capsys.readouterr().out.splitlines()[-1]
    assert out.startswith(harness_check.MARKER)
    run = harness_check.json.loads(out[len(harness_check.MARKER):])
    assert len(run["times"]) == len(run["stamps"]) == 3 and run["stamps"] == sorted(run["stamps"])
    assert run["build_s"] > 0 and run["warmup_steps"] == 2


def test_harness_check_refuses_a_stack_without_an_entry():
    with pytest.raises(SystemExit, match="no asv.conf.json entry runs stack 'no-such-stack' at profile 'small'"):
        harness_check.main(["--stack", "no-such-stack", "pytorch", "nn.LSTM", "1x320/CE-short"])
