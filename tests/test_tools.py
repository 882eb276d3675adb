"""The tools/ scripts: dashboard made offline, machine names, results table."""
import json
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
    if machine_name.cpu_info():
        assert info["cpu"] == machine_name.cpu_description() and "family" in info["cpu"]


def test_machine_name_is_a_clean_slug():
    name = machine_name.machine_name()
    assert name and all(c.isalnum() or c == "-" for c in name) and name == name.lower()
    assert machine_name._slug("Intel(R) Xeon(R) Platinum 8480C CPU @ 2.00GHz") == "intel-xeon-platinum-8480c"
    assert machine_name._slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: {family}
model\t\t: {model}
model name\t: {name}
flags\t\t: fpu sse4_2 avx avx2 {extra}

processor\t: 1
model name\t: another CPU
"""


def _cpuinfo(tmp_path, name, family, model, extra=""):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(name=name, family=family, model=model, extra=extra))
    return machine_name.cpu_info(str(path))


def test_a_cpu_name_without_a_model_number_gets_family_and_model(tmp_path):
    # A KVM guest says "AMD EPYC" on a Zen 3 and on a Zen 5 host: their results must not share a name.
    zen5 = _cpuinfo(tmp_path, "AMD EPYC", 26, 2, "avx512f avx512bw")
    assert machine_name.cpu_slug(zen5) == "amd-epyc-family26-model2"
    assert machine_name.cpu_description(zen5) == "AMD EPYC (family 26, model 2, avx512f)"
    # Only the first processor is read.
    assert machine_name.cpu_model(zen5) == "AMD EPYC"
    # An Intel guest can hide its number too (seen 2026-12-04: "Intel(R) Xeon(R) Processor", with AMX).
    xeon = _cpuinfo(tmp_path, "Intel(R) Xeon(R) Processor", 6, 167, "avx2 avx512f amx_tile")
    assert machine_name.cpu_slug(xeon) == "intel-xeon-family6-model167"
    assert machine_name.cpu_description(xeon) == "Intel(R) Xeon(R) Processor (family 6, model 167, avx512f)"


def test_the_legacy_guest_keeps_its_name_and_named_cpus_are_left_alone(tmp_path):
    assert machine_name.cpu_slug(_cpuinfo(tmp_path, "AMD EPYC", 25, 1)) == "amd-epyc"
    assert machine_name.cpu_slug(_cpuinfo(tmp_path, "AMD EPYC", 25, 17)) == "amd-epyc-family25-model17"
    xeon = _cpuinfo(tmp_path, "Intel(R) Xeon(R) Platinum 8480C CPU @ 2.00GHz", 6, 143)
    assert machine_name.cpu_slug(xeon) == "intel-xeon-platinum-8480c"
    assert machine_name.cpu_description(xeon) == "Intel(R) Xeon(R) Platinum 8480C CPU @ 2.00GHz (family 6, model 143, avx2)"


def test_no_cpuinfo_falls_back_to_a_plain_name(tmp_path):
    info = machine_name.cpu_info(str(tmp_path / "missing"))
    assert info == {} and machine_name.cpu_slug(info) == "cpu" and machine_name.cpu_description(info) == "cpu"


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
    # the study's five first, in the suite's order (today's implementations follow where a run measured them)
    assert [row[1] for row in torch][:5] == [
        "pytorch LSTMCell-basic", "pytorch LSTMCell-fused", "pytorch nn.LSTM", "pytorch cuDNNLSTM",
        "pytorch nn.LSTM+warp-ctc"]
    cells = [cell for row in torch[:3] for cell in row[2:]]
    assert all(cell.endswith("%") and " ms " in cell for cell in cells), cells
    # Every other cell is a time or n/a (skipped: cuDNN on a CPU, warp-ctc on a CE scenario).
    assert all(cell == "n/a" or (" ms " in cell) for row in rows for cell in row[2:]), rows
    # The metrics table: one row per timed cell, each metric a value or "-" where it was not measured.
    metrics = results_table.metrics_markdown(results_table.load(machine, profile)).splitlines()
    assert metrics[0].startswith("| stack | implementation | scenario | step (IQR/median) | forward | backward |")
    timed = sum(1 for row in rows for cell in row[2:] if cell != "n/a")
    assert len(metrics) - 2 == timed


class _FakeResult(object):
    """The part of asv's Results that results_table.cells reads: one time_step over two implementations."""

    env_name = "virtualenv-py3.11-keras3.15.1-RNNBENCH_PROFILEsmall-RNNBENCH_STACKkeras-3-jax"

    def __init__(self, values):
        self.values = values

    def get_all_result_keys(self):
        return ["bench_keras.TrainingStep.time_step"]

    def get_result_params(self, key):
        return [["'1x320/CE-short'"], ["'LSTM'", "'RNN(LSTMCell)'"]]

    def get_result_value(self, key, params):
        return self.values

    def get_result_stats(self, key, params):
        return [None] * len(self.values)


def test_a_later_run_of_some_cells_keeps_the_others_measured_values():
    # oldest first: a full run, then one of RNN(LSTMCell) only (asv stores LSTM as missing), then a run
    # that measures LSTM again
    older, partial, newer = _FakeResult([0.05, None]), _FakeResult([float("nan"), 0.06]), _FakeResult([0.04, None])
    cells = results_table.cells([older, partial], "TrainingStep.time_step")
    assert [value for value, _ in cells.values()] == [0.05, 0.06]
    cells = results_table.cells([older, partial, newer], "TrainingStep.time_step")
    assert [value for value, _ in cells.values()] == [0.04, 0.06]
    sources = set()
    results_table.cells([older, partial], "TrainingStep.time_step", sources)
    assert sources == {id(older), id(partial)}


def test_versus_sets_each_cell_beside_the_other_machines():
    # LSTM measured on both machines; RNN(LSTMCell) on this one only, so it has no row.
    here, there = _FakeResult([0.015, 0.05]), _FakeResult([0.030, float("nan")])
    lines = results_table.versus_markdown([here], [there]).splitlines()
    assert lines[0] == "| stack | implementation | 1x320/CE-short |"
    assert lines[2:] == ["| keras-3-jax | keras LSTM | 15.0 / 30.0 ms (0.50) |"]
    with pytest.raises(SystemExit):
        results_table.main(["--machine", "m", "--versus", "n", "--metrics"])


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


import speed_check  # noqa: E402


def test_speed_check_wants_the_control_stacks_pins():
    stack = {"name": "torch-2.13", "req": {"torch": "2.13.0", "numpy": "2.4.6"}}
    versions = {"torch": "2.13.0+cpu", "numpy": "2.4.6"}
    assert speed_check.pins_mismatch(stack, versions.get) is None  # a local label ("+cpu") is the same release
    versions["torch"] = "2.11.0"
    assert speed_check.pins_mismatch(stack, versions.get) == "torch is 2.11.0 here, stack torch-2.13 pins 2.13.0"
    del versions["numpy"]
    assert "numpy is not installed here" in speed_check.pins_mismatch(stack, versions.get)


class _StackResult(_FakeResult):
    def __init__(self, stack, values):
        super(_StackResult, self).__init__(values)
        self.env_name = "virtualenv-py3.11-RNNBENCH_PROFILEsmall-RNNBENCH_STACK" + stack


def test_speed_check_references_every_stored_commit_of_the_control_stack_only():
    lstm, cell = ("keras", "LSTM", "1x320/CE-short"), ("keras", "RNN(LSTMCell)", "1x320/CE-short")
    stored = speed_check.reference_medians(
        [_StackResult("torch-2.13", [0.03, None]), _StackResult("torch-2.1", [0.09, 0.09]),
         _StackResult("torch-2.13", [0.05, float("nan")])], "torch-2.13", [lstm, cell])
    assert stored == {lstm: [0.03, 0.05], cell: []}  # skips and missing cells are not references


def test_speed_check_verdict_is_a_ratio_either_way():
    rows = [("a", 0.110, 0.100), ("b", 0.090, 0.100)]
    ratios, usual = speed_check.verdict(rows, 1.15)
    assert ratios == pytest.approx([1.1, 0.9]) and usual
    assert not speed_check.verdict([("a", 0.150, 0.100)], 1.15)[1]  # slower host
    assert not speed_check.verdict([("a", 0.080, 0.100)], 1.15)[1]  # faster host: not this machine either


def test_speed_check_log_says_which_way_a_failed_check_went():
    assert speed_check.off_speed_word([1.20, 1.0], 1.15) == "slow"
    assert speed_check.off_speed_word([0.80, 1.0], 1.15) == "fast"
    assert speed_check.off_speed_word([0.80, 1.20], 1.15) == "mixed"
    assert speed_check.off_speed_word([0.90, 1.10], 1.15) == "usual"


def test_speed_check_says_when_its_reference_rests_on_few_runs():
    one = speed_check.thin_reference_note({"a": [0.03], "b": [0.05, 0.06]})
    assert "rests on 1 stored torch-2.13 run," in one and "make matrix STACKS=torch-2.13;" in one
    assert "STEADY_REFERENCE=1 where the checks keep disagreeing with it" in one
    assert "rests on 2 stored torch-2.13 runs" in speed_check.thin_reference_note({"a": [0.03, 0.04]})
    assert speed_check.thin_reference_note({"a": [0.03, 0.04, 0.05], "b": [1, 2, 3]}) is None


def test_speed_check_log_keeps_every_check_and_sums_them_up_by_day(tmp_path):
    path = str(tmp_path / "speed_checks.csv")
    short, long_ = ("pytorch", "nn.LSTM", "1x320/CE-short"), ("pytorch", "nn.LSTM", "1x320/CE-long")
    stored = {short: [0.0144], long_: [0.0296, 0.0300]}
    speed_check.append_log(path, [(short, 0.0180, 0.0144), (long_, 0.0384, 0.0298)], stored, "small", 1.15, False,
                           when="2026-12-01T18:15:00Z", commit="0943cb1a")
    speed_check.append_log(path, [(short, 0.0150, 0.0144), (long_, 0.0300, 0.0298)], stored, "small", 1.15, True,
                           when="2026-12-01T18:22:00Z", commit="0943cb1a")
    speed_check.append_log(path, [(short, 0.0140, 0.0144), (long_, 0.0290, 0.0298)], stored, "small", 1.15, True,
                           when="2026-12-02T01:00:00Z", commit="0943cb1a")
    with open(path) as log:
        lines = log.read().splitlines()
    assert lines[0].split(",") == list(speed_check.LOG_COLUMNS) and len(lines) == 7  # one header, a row per cell
    assert lines[1] == "2026-12-01T18:15:00Z,0943cb1a,small,nn.LSTM 1x320/CE-short,18.00,14.40,1,1.250,1.15,slow,"
    speed_check.append_log(path, [(short, 0.0160, 0.0144), (long_, 0.0300, 0.0298)], stored, "small", 1.15, True,
                           when="2026-12-02T01:07:00Z", commit="0943cb1a", steals=[0.125, None])
    assert open(path).read().splitlines()[-2].endswith(",usual,0.125")
    table = speed_check.history(path)
    assert table[0] == "| UTC day | checks | usual | first-last | nn.LSTM 1x320/CE-short ratios | " \
                       "nn.LSTM 1x320/CE-long ratios | most host steal |"
    assert table[2] == "| 2026-12-01 | 2 | 1 | 18:15-18:22 | 1.04-1.25 | 1.01-1.29 | - |"
    assert table[3] == "| 2026-12-02 | 2 | 2 | 01:00-01:07 | 0.97-1.11 | 0.97-1.01 | 12% |"
    with pytest.raises(speed_check.CannotCheck, match="no speed-check log"):
        speed_check.history(str(tmp_path / "none.csv"))


def test_speed_check_log_kept_under_older_columns_gains_the_new_ones(tmp_path):
    path = tmp_path / "speed_checks.csv"
    old_header = "utc,commit,profile,cell,here_ms,reference_ms,reference_runs,ratio,factor,verdict"
    old_row = "2026-12-01T18:15:00Z,0943cb1a,small,nn.LSTM 1x320/CE-short,18.00,14.40,1,1.250,1.15,slow"
    path.write_text(old_header + "\n" + old_row + "\n")
    cell = ("pytorch", "nn.LSTM", "1x320/CE-short")
    speed_check.append_log(str(path), [(cell, 0.0150, 0.0144)], {cell: [0.0144]}, "small", 1.15, True,
                           when="2026-12-02T00:40:00Z", commit="c372f8dd", steals=[0.0])
    lines = path.read_text().splitlines()
    assert lines == [",".join(speed_check.LOG_COLUMNS), old_row + ",",  # the old check kept, its steal unknown
                     "2026-12-02T00:40:00Z,c372f8dd,small,nn.LSTM 1x320/CE-short,15.00,14.40,1,1.042,1.15,usual,0.000"]
    path.write_text(old_header + ",mood\n" + old_row + ",calm\n")
    with pytest.raises(speed_check.CannotCheck, match="columns this tool does not know \\(mood\\)"):
        speed_check.append_log(str(path), [(cell, 0.0150, 0.0144)], {cell: [0.0144]}, "small", 1.15, True)
    assert path.read_text() == old_header + ",mood\n" + old_row + ",calm\n"  # refused, nothing lost


def test_speed_check_host_steal_is_the_share_of_wanted_cpu_time_held_back(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  1000 10 200 5000 30 5 5 40 0 0\ncpu0 500 5 100 2500 15 2 3 20 0 0\n")
    assert speed_check.cpu_times(str(stat)) == (1220, 40)  # user+nice+system+irq+softirq, steal
    assert speed_check.steal_share((1220, 40), (1520, 140)) == 0.25  # 300 ticks ran, 100 were held back
    assert speed_check.steal_share((1220, 40), (1220, 40)) is None  # nothing wanted to run
    assert speed_check.steal_share(None, (1220, 40)) is None
    assert speed_check.cpu_times(str(tmp_path / "none")) is None  # not Linux: no steal column, no claim
    stat.write_text("cpu  1000 10 200 5000\n")
    assert speed_check.cpu_times(str(stat)) is None
    assert speed_check.percent(0.254) == "25%" and speed_check.percent(None) == "-"


def test_speed_check_can_leave_given_runs_out_of_its_reference(monkeypatch):
    class Run(object):
        def __init__(self, commit, env_name, seconds):
            self.commit_hash, self.env_name, self.seconds = commit, env_name, seconds
    monkeypatch.setattr(speed_check, "pins_mismatch", lambda stack: None)
    monkeypatch.setattr(speed_check.results_table, "load",
                        lambda machine, profile: [Run("aaaa", "control", 0.010), Run("bbbb", "control", 0.020)])
    monkeypatch.setattr(speed_check, "reference_medians",
                        lambda result_sets, stack, cells: {cell: [r.seconds for r in result_sets] for cell in cells})
    monkeypatch.setattr(speed_check, "time_cell", lambda cell, profile, steps, stack: {"times": [0.020] * 3})
    lines = []
    assert speed_check.check("box", out=lines.append) is False  # the median of 10 and 20 ms is 15: 1.33 times
    # Another environment's run at the same commit leaves the control stack's run there in the reference.
    assert speed_check.check("box", out=lines.append, exclude_runs={("aaaa", "other")}) is False
    measured = {}
    assert speed_check.check("box", out=lines.append, exclude_runs={("aaaa", "control")}, measured=measured) is True
    assert lines[-2].startswith("note: the reference rests on 1 stored torch-2.13 run")  # 20 ms alone
    assert measured == dict.fromkeys(speed_check.CONTROL_CELLS, 0.020)  # each cell's median here


def test_speed_check_reference_state_counts_the_control_runs_and_names_the_other_stacks(monkeypatch):
    lstm, cell = ("keras", "LSTM", "1x320/CE-short"), ("keras", "RNN(LSTMCell)", "1x320/CE-short")
    monkeypatch.setattr(speed_check, "CONTROL_CELLS", (lstm, cell))
    first, second = _StackResult("torch-2.13", [0.03, 0.04]), _StackResult("torch-2.13", [0.05, None])
    other = _StackResult("keras-3-jax", [0.1, 0.1])
    first.commit_hash, second.commit_hash, other.commit_hash = "aaaa", "bbbb", "bbbb"
    monkeypatch.setattr(speed_check.results_table, "load", lambda machine, profile: [first, second, other])
    assert speed_check.reference_state("box", "small") == (1, ["keras-3-jax"])  # the fewest runs a cell has
    # One run's own control cells: the cell it lacks is None, another stack's run at its commit is not its.
    assert speed_check.run_medians("box", "small", {("bbbb", second.env_name)}) == {lstm: 0.05, cell: None}

    def nothing(machine, profile):
        sys.exit("results_table: no results for machine 'box' in /results")
    monkeypatch.setattr(speed_check.results_table, "load", nothing)
    with pytest.raises(speed_check.CannotCheck, match="^no results for machine 'box' in /results$"):
        speed_check.reference_state("box", "small")


def test_speed_check_times_a_control_cell_in_a_fresh_process():
    pytest.importorskip("torch")
    run = speed_check.time_cell(("pytorch", "nn.LSTM", "1x320/CE-short"), "small", 2, "torch-2.13")
    assert len(run["times"]) == 2 and all(t > 0 for t in run["times"]) and run["device"].startswith("cpu")
    assert run["steal"] is None or 0.0 <= run["steal"] <= 1.0  # over the timed steps alone


def test_speed_check_refuses_what_it_cannot_check():
    with pytest.raises(SystemExit, match="--machine is required"):
        speed_check.main([])
    with pytest.raises(SystemExit, match="--factor must be above 1"):
        speed_check.main(["--machine", "m", "--factor", "0.9"])
    pytest.importorskip("torch")
    with pytest.raises(SystemExit, match="no results for machine 'no-such-machine'"):
        speed_check.main(["--machine", "no-such-machine"])


import asv_envs  # noqa: E402
import matrix_run  # noqa: E402


def test_matrix_run_lists_each_entry_of_a_profile_with_its_own_environment_folder():
    everything = matrix_run.entries("small")
    assert [name for name, _ in everything] == asv_envs.env_names("small")
    assert len({folder for _, folder in everything}) == len(everything)  # pruning one never touches another
    (only,) = matrix_run.entries("small", ["torch-2.13"])
    assert "RNNBENCH_STACKtorch-2.13" in only[0] and os.path.dirname(only[1]) == os.path.join(ROOT, ".asv", "env")


def test_make_run_leaves_the_timeline_to_make_matrix(capsys):
    # `make run` holds every environment it runs at once: by default, only the headline stacks
    asv_envs.main(["--profile", "small"])
    headline = capsys.readouterr().out.split()
    asv_envs.main(["--profile", "small", "--include-timeline"])
    everything = capsys.readouterr().out.split()
    assert not any(name.endswith("RNNBENCH_STACKtorch-1.12") for name in headline)
    assert any(name.endswith("RNNBENCH_STACKtorch-1.12") for name in everything)
    assert any(name.endswith("RNNBENCH_STACKtorch-2.13") for name in headline)
    asv_envs.main(["--profile", "small", "--stack", "torch-1.12"])  # named, a timeline stack runs
    assert capsys.readouterr().out.split()[0].endswith("RNNBENCH_STACKtorch-1.12")


def test_matrix_run_refuses_an_unknown_stack_or_profile():
    with pytest.raises(SystemExit, match="no asv.conf.json entry runs stack 'torch-0.1' at profile 'small'"):
        matrix_run.entries("small", ["torch-0.1"])
    with pytest.raises(SystemExit, match="RNNBENCH_PROFILE='huge'"):
        matrix_run.entries("huge")


def test_matrix_run_resumes_through_skip_existing_and_passes_asv_arguments():
    command = matrix_run.asv_run_command("env-a", "box-small", ["--bench", "TrainingStep"])
    assert command[1:4] == ["-m", "asv", "run"]
    assert "--skip-existing" in command and command[command.index("-E") + 1] == "env-a"
    assert command[-3:] == ["HEAD^!", "--bench", "TrainingStep"]  # the checked-out commit, not main's head
    command = matrix_run.asv_run_command("env-a", "box-small", ["ebb8aee^!", "--bench", "TrainingStep"])
    assert "HEAD^!" not in command and command[-3:] == ["ebb8aee^!", "--bench", "TrainingStep"]


def test_matrix_run_prunes_only_inside_the_environment_folder(tmp_path):
    root = tmp_path / "env"
    (root / "abc" / "bin").mkdir(parents=True)
    outside = tmp_path / "results"
    outside.mkdir()
    assert matrix_run.prune(str(root / "abc"), str(root)) is True
    assert not (root / "abc").exists()
    assert matrix_run.prune(str(root / "abc"), str(root)) is False  # already gone: nothing to do
    with pytest.raises(SystemExit, match="refusing to delete"):
        matrix_run.prune(str(outside), str(root))
    assert outside.exists()


def _fake_matrix(monkeypatch, verdicts, on_run=lambda command: None, excluded=None):
    """matrix_run over two entries with asv and the speed check faked: [asv runs made], [checks made].
    on_run(command) stands for what asv writes; `excluded` (a list) collects each check's exclude_runs."""
    runs, checks = [], []
    monkeypatch.setattr(matrix_run, "entries",
                        lambda profile, stacks: [("env-a", "/nowhere/a"), ("env-b", "/nowhere/b")])
    monkeypatch.setattr(matrix_run.subprocess, "call",
                        lambda command, cwd: runs.append(command) or on_run(command) or 0)

    def check(machine, profile, out, log, exclude_runs=(), measured=None):
        assert log.endswith(os.path.join("results", machine, "speed_checks.csv"))  # every gate check is kept
        checks.append(machine)
        if excluded is not None:
            excluded.append(set(exclude_runs))
        verdict = verdicts[len(checks) - 1]
        if isinstance(verdict, Exception):
            raise verdict
        if isinstance(verdict, dict):  # the cells' medians here, away from a thin reference
            measured.update(verdict)
            return False
        return verdict
    monkeypatch.setattr(matrix_run.speed_check, "check", check)
    return runs, checks


def test_matrix_run_with_a_speed_check_runs_nothing_on_a_slow_machine(monkeypatch):
    runs, checks = _fake_matrix(monkeypatch, [False])
    with pytest.raises(SystemExit, match="box-small is not at its usual speed .* nothing was run"):
        matrix_run.main(["--machine", "box-small", "--keep-envs", "--speed-check"])
    assert runs == [] and checks == ["box-small"]


def test_matrix_run_stops_after_the_entry_the_machine_slowed_down_in(monkeypatch, capsys):
    runs, checks = _fake_matrix(monkeypatch, [True, False, True])
    assert matrix_run.main(["--machine", "box-small", "--keep-envs", "--speed-check"]) == 1
    assert len(runs) == 1 and len(checks) == 2  # env-b never ran
    assert "matrix_run: env-a: ok; the machine was NOT at its usual speed afterwards" in capsys.readouterr().out


def _results_of(folder):
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.iterdir())}


def test_matrix_run_sets_aside_what_an_entry_wrote_while_the_machine_slowed_down(monkeypatch, tmp_path, capsys):
    folder, aside = tmp_path / "results" / "box-small", tmp_path / "doubtful"
    folder.mkdir(parents=True)
    (folder / "machine.json").write_text("{}")
    (folder / "aaaa-env-a.json").write_text(json.dumps({"commit_hash": "aaaa", "env_name": "env-a",
                                                        "results": {"old": 1}}))
    (folder / "aaaa-env-b.json").write_text(json.dumps({"commit_hash": "aaaa", "env_name": "env-b",
                                                        "results": {"b": 1}}))
    monkeypatch.setattr(matrix_run, "results_folder", lambda conf, machine: str(folder))
    monkeypatch.setattr(matrix_run, "doubtful_folder", lambda machine: str(aside))

    def asv_writes(command):  # a new commit's file, and one more result added to an older file of this entry
        env = command[command.index("-E") + 1]
        (folder / "bbbb-{}.json".format(env)).write_text(json.dumps({"commit_hash": "bbbb", "env_name": env,
                                                                     "results": {}}))
        if env == "env-a":
            (folder / "aaaa-env-a.json").write_text(json.dumps({"commit_hash": "aaaa", "env_name": "env-a",
                                                                "results": {"old": 1, "new": 2}}))
    excluded = []
    runs, checks = _fake_matrix(monkeypatch, [True, False], asv_writes, excluded)
    assert matrix_run.main(["--machine", "box-small", "--keep-envs", "--speed-check"]) == 1
    # The after-check was judged without this entry's own results (env-b's at the same commit stay in); the
    # slow entry's files went aside, the older file got its old content back, and env-b never ran.
    assert excluded == [set(), {("aaaa", "env-a"), ("bbbb", "env-a")}] and len(runs) == 1
    assert _results_of(folder) == {"aaaa-env-a.json": {"commit_hash": "aaaa", "env_name": "env-a",
                                                       "results": {"old": 1}},
                                   "aaaa-env-b.json": {"commit_hash": "aaaa", "env_name": "env-b",
                                                       "results": {"b": 1}},
                                   "machine.json": {}}
    assert sorted(name.split("-", 1)[1] for name in os.listdir(aside)) == ["aaaa-env-a.json", "bbbb-env-a.json"]
    assert "in doubt: aaaa-env-a.json, bbbb-env-a.json moved to {}; the run stopped here".format(aside) in \
        capsys.readouterr().out


def test_matrix_run_runs_an_entry_again_once_the_machine_is_back_to_its_usual_speed(monkeypatch, tmp_path,
                                                                                    capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    monkeypatch.setattr(matrix_run, "results_folder", lambda conf, machine: str(folder))
    monkeypatch.setattr(matrix_run, "doubtful_folder", lambda machine: str(tmp_path / "doubtful"))

    def asv_writes(command):
        env = command[command.index("-E") + 1]
        (folder / "bbbb-{}.json".format(env)).write_text(json.dumps({"commit_hash": "bbbb", "n": len(runs)}))
    # checks: before env-a, after it (slow), before running it again, after it again, after env-b
    runs, checks = _fake_matrix(monkeypatch, [True, False, True, True, True], asv_writes)
    assert matrix_run.main(["--machine", "box-small", "--keep-envs", "--speed-check", "--retries", "1"]) == 0
    assert [command[command.index("-E") + 1] for command in runs] == ["env-a", "env-a", "env-b"]
    assert _results_of(folder)["bbbb-env-a.json"]["n"] == 2  # the second run's times are the ones filed
    out = capsys.readouterr().out
    assert "speed check before running env-a again" in out and "matrix_run: env-a: ok (run 2 times)" in out
    # Still slow when it is time to run it again (no wait asked for): the run stops, nothing of env-a filed.
    runs, checks = _fake_matrix(monkeypatch, [True, False, False], asv_writes)
    (folder / "bbbb-env-a.json").unlink()
    assert matrix_run.main(["--machine", "box-small", "--keep-envs", "--speed-check", "--retries", "1"]) == 1
    assert len(runs) == 1 and sorted(os.listdir(folder)) == ["bbbb-env-b.json"]
    with pytest.raises(SystemExit):  # retries mean nothing without the check
        matrix_run.main(["--machine", "box-small", "--retries", "1"])


def test_matrix_run_waits_out_a_slow_spell_when_asked(monkeypatch, capsys):
    clock = [0.0]
    monkeypatch.setattr(matrix_run.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(matrix_run.time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    runs, checks = _fake_matrix(monkeypatch, [False, False, True, True, True])
    assert matrix_run.main(["--machine", "box-small", "--keep-envs", "--speed-check", "--wait-for-speed", "20"]) == 0
    assert len(runs) == 2 and len(checks) == 5 and clock[0] == 2 * matrix_run.RECHECK_MINUTES * 60
    assert "checking again in 7 min" in capsys.readouterr().out
    # A spell longer than the wait: checks at 0, 7, 14 and 20 minutes, then nothing is run.
    clock[0] = 0.0
    runs, checks = _fake_matrix(monkeypatch, [False] * 4)
    with pytest.raises(SystemExit, match="nothing was run"):
        matrix_run.main(["--machine", "box-small", "--keep-envs", "--speed-check", "--wait-for-speed", "20"])
    assert runs == [] and len(checks) == 4 and clock[0] == 20 * 60
    with pytest.raises(SystemExit):  # waiting means nothing without the check
        matrix_run.main(["--machine", "box-small", "--wait-for-speed", "20"])


def test_matrix_run_goes_on_where_the_machine_has_no_reference_yet(monkeypatch, capsys):
    runs, checks = _fake_matrix(monkeypatch, [speed_check.CannotCheck("no results for machine 'box-small'")])
    assert matrix_run.main(["--machine", "box-small", "--keep-envs", "--speed-check"]) == 0
    assert len(runs) == 2 and len(checks) == 1
    assert "speed check skipped: no results for machine 'box-small'" in capsys.readouterr().out
    runs, checks = _fake_matrix(monkeypatch, [])
    assert matrix_run.main(["--machine", "box-small", "--keep-envs"]) == 0  # without --speed-check, no check
    assert len(runs) == 2 and checks == []


def test_matrix_run_steadies_a_thin_reference_with_a_run_between_two_agreeing_checks(monkeypatch, tmp_path,
                                                                                     capsys):
    folder, aside = tmp_path / "results", tmp_path / "doubtful"
    folder.mkdir()
    monkeypatch.setattr(matrix_run, "results_folder", lambda conf, machine: str(folder))
    monkeypatch.setattr(matrix_run, "doubtful_folder", lambda machine: str(aside))

    def asv_writes(command):
        (folder / "bbbb-control.json").write_text(json.dumps({"commit_hash": "bbbb", "env_name": "control",
                                                              "n": len(runs)}))
    fast = dict.fromkeys(speed_check.CONTROL_CELLS, 0.030)
    slower = dict(fast)
    slower[speed_check.CONTROL_CELLS[-1]] = 0.036
    # Every check disagrees with the thin reference; the first run's pair disagrees (1.2 on one cell), the
    # second's agrees.
    excluded = []
    runs, checks = _fake_matrix(monkeypatch, [fast, slower, fast, fast], asv_writes, excluded)
    monkeypatch.setattr(matrix_run, "entries", lambda profile, stacks: [("control", "/nowhere/c")])
    monkeypatch.setattr(matrix_run.speed_check, "reference_state", lambda machine, profile: (1, []))
    own = []  # each run's own medians of the control cells, as its result file would hold them
    monkeypatch.setattr(matrix_run.speed_check, "run_medians", lambda machine, profile, runs: own.pop(0))
    own.extend([fast, fast])
    steady = ["--machine", "box-small", "--stack", "torch-2.13", "--keep-envs", "--speed-check", "--steady-reference"]
    assert matrix_run.main(steady + ["--retries", "1"]) == 0
    assert len(runs) == 2 and excluded == [set(), {("bbbb", "control")}] * 2  # judged without its own run
    assert json.loads((folder / "bbbb-control.json").read_text())["n"] == 2 and len(os.listdir(aside)) == 1
    out = capsys.readouterr().out
    assert "the run's own medians read 1.00/1.00/1.00 and the check after it 1.00/1.00/1.20 (allowed 0.87 to " \
           "1.15): not steady" in out
    assert "matrix_run: control: ok; against the check before it, the run's own medians read 1.00/1.00/1.00 and " \
           "the check after it 1.00/1.00/1.00 (allowed 0.87 to 1.15): filed (run 2 times)" in out
    # Checks that agree around a run whose own times do not (the machine slowed during it and came back), and
    # no retry left: the run goes aside, the exit status says so.
    runs, checks = _fake_matrix(monkeypatch, [fast, fast], asv_writes)
    own.append(slower)
    monkeypatch.setattr(matrix_run, "entries", lambda profile, stacks: [("control", "/nowhere/c")])
    (folder / "bbbb-control.json").unlink()
    assert matrix_run.main(steady) == 1 and os.listdir(folder) == [] and os.listdir(aside)
    assert "not steady, bbbb-control.json moved to" in capsys.readouterr().out


def test_matrix_run_steady_needs_the_runs_own_control_cells():
    before = dict.fromkeys(speed_check.CONTROL_CELLS, 0.030)
    assert matrix_run.steady_across(before, dict(before), dict(before)) == (True, (
        "against the check before it, the run's own medians read 1.00/1.00/1.00 and the check after it 1.00/1.00/1.00 "
        "(allowed 0.87 to 1.15)"))
    without = dict(before)
    without[speed_check.CONTROL_CELLS[0]] = None  # a run that left the 1x320 cells out (asv run --bench ...)
    assert matrix_run.steady_across(before, without, before) == (
        False, "the run has no time for nn.LSTM 1x320/CE-short, which the reference needs")


def test_matrix_run_steadies_only_a_thin_reference_nothing_else_was_filed_against(monkeypatch):
    state = [(1, [])]

    def reference_state(machine, profile):
        if isinstance(state[0], Exception):
            raise state[0]
        return state[0]
    monkeypatch.setattr(matrix_run.speed_check, "reference_state", reference_state)
    assert matrix_run.steady_refusal("box", "small", ["torch-2.13"]) is None
    assert "runs the control stack alone: pass --stack torch-2.13 and no other" in \
        matrix_run.steady_refusal("box", "small", ["torch-2.13", "torch-1.0"])
    for found, why in [((3, []), "the reference already rests on 3 torch-2.13 runs"),
                       ((0, []), "machine 'box' has no stored torch-2.13 run yet"),
                       ((2, ["keras-3-jax", "torch-1.0"]),
                        "stacks filed against the thin reference (keras-3-jax, torch-1.0): steady it through the gate"),
                       (speed_check.CannotCheck("no results for machine 'box'"),
                        "no results for machine 'box'; the first torch-2.13 run is filed by make matrix as usual")]:
        state[0] = found
        assert matrix_run.steady_refusal("box", "small", ["torch-2.13"]).startswith(why)
    state[0] = (1, ["torch-1.0"])
    with pytest.raises(SystemExit, match="^matrix_run: stack filed against the thin reference \\(torch-1.0\\)"):
        matrix_run.main(["--machine", "box", "--stack", "torch-2.13", "--speed-check", "--steady-reference"])
    for wrong in ([], ["--speed-check", "--wait-for-speed", "20"]):  # it neither files unchecked nor waits
        with pytest.raises(SystemExit):
            matrix_run.main(["--machine", "box", "--stack", "torch-2.13", "--steady-reference"] + wrong)


import csv  # noqa: E402

import export_csv  # noqa: E402
from benchmarks import scenarios  # noqa: E402


@pytest.mark.parametrize("machine", _committed_machines())
def test_committed_results_export_to_the_studys_csv_columns(machine, tmp_path):
    profile = machine.rsplit("-", 1)[1]
    path = tmp_path / "results.csv"
    export_csv.main(["--machine", machine, "--profile", profile, "-o", str(path)])
    with open(str(path)) as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames[:6] == ["bench", "experiment", "name", "parameters", "runtime", "version"]
        rows = list(reader)
    assert rows
    by_scenario = {export_csv.experiment(name, profile): name for name in scenarios.SCENARIO_NAMES}
    for row in rows:
        # a reduced profile's time is never filed under the study's (full-size) experiment name
        assert row["experiment"] in by_scenario and (profile == "seed") == ("@" not in row["experiment"])
        spec = scenarios.spec(by_scenario[row["experiment"]], profile)
        assert int(row["parameters"]) == scenarios.parameter_count(spec)
        assert float(row["runtime"]) > 0 and row["version"] and row["machine"] == machine
    torch = [row for row in rows if row["stack"] == "torch-2.13" and row["bench"] == "pytorch_nn.LSTM"]
    assert torch and {row["version"] for row in torch} == {"2.13.0"}


def test_study_experiment_names_and_parameter_counts():
    assert export_csv.experiment("4x320/CTC-long", "seed") == "4x320-BIDIR-LSTM_CTC"
    assert export_csv.experiment("1x320/CE-short", "small") == "1x320-LSTM_cross-entropy_100@small"
    # the study's CSV counted 572800 parameters for its 1x320 LSTM with 10 classes
    assert scenarios.parameter_count(scenarios.spec("1x320/CE-long", "seed")) == 572800


import subprocess  # noqa: E402

import compare  # noqa: E402

COMPARE_PYTHON = os.path.join(ROOT, ".venv-compare", "bin", "python")
# Two stacks the committed results measured at one suite commit (b52bf007: the 2018 stacks' timing run).
MACHINE, BEFORE, AFTER = "amd-epyc-2cpu-small", "torch-1.0", "torch-1.4-warpctc"
RESULTS = os.path.join(ROOT, "results")


def test_compare_picks_the_newest_commit_with_step_times_of_both_stacks():
    sha, before, after = compare.pick(RESULTS, MACHINE, "small", BEFORE, AFTER)
    # fecab03d is newer but measured metrics only: no step times to compare
    assert sha.startswith("b52bf007") and "torch1.0.0" in before and "torch1.4.0" in after
    sha, _, _ = compare.pick(RESULTS, MACHINE, "small", BEFORE, AFTER, bench="peakmem")
    assert sha.startswith("fecab03d")


def test_compare_refuses_stacks_never_measured_together_or_at_all():
    with pytest.raises(SystemExit, match="torch-1.0 and torch-2.13 were never measured at one commit"):
        compare.pick(RESULTS, MACHINE, "small", BEFORE, "torch-2.13")
    with pytest.raises(SystemExit, match="stack 'torch-9' has no results of profile 'small'"):
        compare.pick(RESULTS, MACHINE, "small", BEFORE, "torch-9")
    with pytest.raises(SystemExit, match="no results for machine 'nowhere'"):
        compare.pick(RESULTS, "nowhere", "small", BEFORE, AFTER)


def test_compare_groups_rows_by_their_change_mark():
    table = "\n".join([
        "| Change   | Before   | After   |   Ratio | Benchmark (Parameter)   |",
        "|----------|----------|---------|---------|-------------------------|",
        "| -        | 2s       | 1s      |    0.5  | b.TrainingStep.time_step('s', 'fast') [x -> y] |",
        "| +        | 1s       | 2s      |    2    | b.TrainingStep.time_step('s', 'slow') [x -> y] |",
        "|          | 1s       | 1s      |    1    | b.TrainingStep.time_step('s', 'same') [x -> y] |",
        "|          | n/a      | 1s      |    n/a  | b.TrainingStep.time_step('s', 'new') [x -> y] |",
        "|          | n/a      | n/a     |    n/a  | b.TrainingStep.time_step('s', 'cudnn') [x -> y] |",
        "| -        | 2M       | 1M      |    0.5  | b.TrainingStep.peakmem_step('s', 'fast') [x -> y] |",
    ])
    cell_rows = compare.rows(table)
    assert [cells[0] for cells in cell_rows] == ["-", "+", "", "x"]  # neither side ran cudnn; peakmem not asked
    text = compare.render(cell_rows, split=True)
    sections = [line for line in text.splitlines() if line.startswith("Benchmarks")]
    assert [s.split()[3] for s in sections] == ["improved:", "got", "stayed", "not"]
    assert text.index("'fast'") < text.index("got worse") < text.index("'slow'") < text.index("stayed the same")


@pytest.mark.skipif(not os.path.exists(COMPARE_PYTHON), reason="no .venv-compare: make test builds it")
def test_compare_prints_asv_spyglass_table_with_significance():
    out = subprocess.run([COMPARE_PYTHON, os.path.join(ROOT, "tools", "compare.py"), BEFORE, AFTER,
                          "--machine", MACHINE, "--split"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=120)
    assert out.returncode == 0, out.stdout
    assert "torch-1.0 (Before) against torch-1.4-warpctc (After), suite commit b52bf007" in out.stdout
    assert "| Change | Before | After | Ratio | Benchmark (Parameter) |" in out.stdout
    # spyglass's significance test: nn.LSTM 4x320/CE-long went from 7.25 s to 3.77 s in the committed results
    line = next(line for line in out.stdout.splitlines() if "('4x320/CE-long', 'nn.LSTM')" in line)
    assert line.startswith("| - | 7.25") and "0.52" in line
    assert "Benchmarks that have improved:" in out.stdout and "'cuDNNLSTM'" not in out.stdout


import charts  # noqa: E402


def test_charts_are_drawn_from_the_committed_results(tmp_path):
    charts.main(["--html", str(tmp_path)])
    page = (tmp_path / "charts" / "index.html").read_text()
    for machine, profile in charts.machine_profiles(os.path.join(ROOT, "results")):
        assert "<h2>{} ({} profile)</h2>".format(machine, profile) in page
    drawn = sorted(p.name for p in (tmp_path / "charts").glob("*.svg"))
    assert drawn and all('src="{}"'.format(name) in page for name in drawn)
    for scenario in charts.SCENARIOS:
        assert any(name.endswith("-bars-{}.svg".format(charts._slug(scenario))) for name in drawn)
    assert any(name.endswith("-releases-pytorch.svg") for name in drawn)
    assert (tmp_path / "charts" / drawn[0]).read_text().lstrip().startswith("<?xml")


def test_timeline_stacks_draw_release_lines_but_no_bars(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(charts, "step_cells", lambda result_sets: [
        ("torch-1.10", "pytorch", "nn.LSTM", "1x320/CE-short", 0.2, 0.01, "1.10.2", ""),
        ("torch-1.9", "pytorch", "nn.LSTM", "1x320/CE-short", 0.3, 0.01, "1.9.1", ""),
        ("torch-2.13", "pytorch", "nn.LSTM", "1x320/CE-short", 0.05, 0.01, "2.13.0", "")])
    monkeypatch.setattr(charts, "bar_chart", lambda cells, scenario, *a: drawn.setdefault(scenario, cells))
    monkeypatch.setattr(charts, "release_chart", lambda cells, framework, *a: drawn.setdefault(framework, cells))
    charts.draw("box", "small", [], str(tmp_path), timeline={"torch-1.9", "torch-1.10"})
    assert [c[0] for c in drawn["1x320/CE-short"]] == ["torch-2.13"]
    assert len(drawn["pytorch"]) == 3
    # releases in version order, not text order
    assert sorted(["1.10.2", "1.9.1", "2.13.0", "1.0.0"], key=results_table.version_key) == [
        "1.0.0", "1.9.1", "1.10.2", "2.13.0"]


def test_speed_check_chart_draws_each_cells_ratio_with_the_gates_band(tmp_path):
    log = str(tmp_path / "speed_checks.csv")
    short, long_ = ("pytorch", "nn.LSTM", "1x320/CE-short"), ("pytorch", "nn.LSTM", "1x320/CE-long")
    stored = {short: [0.0144], long_: [0.0296]}
    speed_check.append_log(log, [(short, 0.0180, 0.0144), (long_, 0.0384, 0.0296)], stored, "small", 1.15, False,
                           when="2026-12-01T18:15:00Z", commit="0943cb1a")
    speed_check.append_log(log, [(short, 0.0150, 0.0144), (long_, 0.0300, 0.0296)], stored, "small", 1.15, True,
                           when="2026-12-01T18:22:00Z", commit="0943cb1a")
    path = tmp_path / "checks.svg"
    assert charts.speed_check_chart(speed_check.read_log(log), "box", "small", str(path))
    svg = path.read_text()
    assert "1 of 2 within 1.15x" in svg and "nn.LSTM 1x320/CE-short" in svg and "12-01 18:15" in svg
    assert not charts.speed_check_chart(speed_check.read_log(log), "box", "seed", str(tmp_path / "none.svg"))
    drawn = charts.draw("box", "small", [], str(tmp_path), timeline=set(), log=log)
    assert drawn == [("box-small-speed-checks.svg", drawn[0][1])] and "speed checks" in drawn[0][1]
    assert charts.draw("box", "small", [], str(tmp_path), timeline=set(), log=str(tmp_path / "none.csv")) == []


def test_release_table_orders_one_frameworks_stacks_by_version(capsys):
    machine = next(m for m in _committed_machines() if m.endswith("-small"))  # where the 2018 stacks ran
    results_table.main(["--machine", machine, "--profile", "small", "--releases", "pytorch"])
    rows = [line.split("|")[1].strip() for line in capsys.readouterr().out.splitlines() if line.startswith("| torch")]
    stacks = list(dict.fromkeys(rows))
    assert stacks[0] == "torch-1.0" and stacks[-1] == "torch-2.13" and len(stacks) >= 3
    with pytest.raises(SystemExit, match="unknown framework 'chainer'"):
        results_table.main(["--machine", machine, "--releases", "chainer"])


def test_bar_chart_orders_by_time_and_labels_the_ratio_to_the_fastest(tmp_path):
    cells = [("s-a", "pytorch", "slow", "1x320/CE-short", 0.3, 0.01, "2.0", ""),
             ("s-a", "pytorch", "fast", "1x320/CE-short", 0.1, 0.01, "2.0", "")]
    path = tmp_path / "bars.svg"
    assert charts.bar_chart(cells, "1x320/CE-short", "box", "small", str(path))
    svg = path.read_text()
    assert "x3.0" in svg and "x1.0" in svg  # matplotlib keeps text as text in its SVGs (svg.fonttype none)
    assert not charts.bar_chart(cells, "4x320/CTC-long", "box", "small", str(tmp_path / "none.svg"))
    # Drawn again from the same cells, the file is the same to the byte (no date, fixed ids): a republish
    # without new results changes nothing in git.
    again = tmp_path / "again.svg"
    charts.bar_chart(cells, "1x320/CE-short", "box", "small", str(again))
    assert again.read_bytes() == path.read_bytes() and "<dc:date>" not in svg


import run_tests  # noqa: E402


def test_run_tests_sums_every_job_and_fails_if_one_fails(tmp_path, monkeypatch, capsys):
    # Two stand-in jobs at once: one passes, one fails; both logs are printed whole, and the totals add up.
    scripts = {"good": "print('3 passed, 1 skipped in 0.1s')",
               "bad": "print('x'); print('1 failed, 2 passed in 0.2s'); raise SystemExit(1)"}
    monkeypatch.setattr(run_tests, "command", lambda job: [sys.executable, "-c", scripts[job]])
    monkeypatch.setattr(run_tests, "LOG_DIR", str(tmp_path))
    monkeypatch.setattr(run_tests, "POLL_S", 0.05)
    assert run_tests.run(["good", "bad"], parallel=2) == 1
    out = capsys.readouterr().out
    assert "===== good: passed (exit 0)" in out and "===== bad: FAILED (exit 1)" in out
    assert "run_tests: failed: bad" in out
    assert out.rstrip().splitlines()[-1] == "tests: 5 passed, 1 failed, 1 skipped"
    assert run_tests.run(["good"], parallel=1) == 0


def test_run_tests_reads_pytest_closing_lines():
    assert run_tests.pytest_counts("...\n== 2 failed, 10 passed, 3 skipped, 1 error in 12.5s ==\n") == \
        {"passed": 10, "failed": 2, "errors": 1, "skipped": 3}
    # a job that died before pytest reported (e.g. its environment failed to build) counts nothing
    assert run_tests.pytest_counts("pip: error\n") == {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}


def test_run_tests_starts_the_longest_known_jobs_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run_tests, "command", lambda job: [sys.executable, "-c", "print('1 passed in 0.1s')"])
    monkeypatch.setattr(run_tests, "LOG_DIR", str(tmp_path))
    monkeypatch.setattr(run_tests, "POLL_S", 0.05)
    monkeypatch.setattr(run_tests, "EXPECTED_MINUTES", {"slow": 20, "medium": 5})
    assert run_tests.run(["new-a", "medium", "slow", "new-b"], parallel=1) == 0
    started = [line.split()[2] for line in capsys.readouterr().out.splitlines() if line.startswith("run_tests: started")]
    assert started == ["slow", "medium", "new-a", "new-b"]


def test_readme_tables_are_those_results_table_prints():
    # Every table of step times in the README is regenerated from results/: a hand-edited figure fails here.
    import readme_tables

    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    assert text.count("<!-- results_table ") >= 4
    new, stale = readme_tables.rewrite(text)
    assert stale == [] and new == text


def test_readme_tables_rewrites_a_stale_table_and_drops_rows_without_any_time():
    import readme_tables

    marker = "<!-- results_table --machine amd-epyc-2cpu-small --profile small --releases tensorflow -->"
    text = "intro\n{}\n| stack | old |\n|---|\n| tf | 1 ms |\nafter\n".format(marker)
    new, stale = readme_tables.rewrite(text)
    assert len(stale) == 1 and new.startswith("intro\n" + marker + "\n| stack | implementation |")
    assert new.endswith("\nafter\n") and "| tf | 1 ms |" not in new
    rows = [line for line in new.splitlines() if line.startswith("| tensorflow-")]
    assert rows and all(any(c.strip() != "n/a" for c in row.split("|")[3:-1]) for row in rows)
    with pytest.raises(readme_tables.ReadmeError, match="no table after"):
        readme_tables.rewrite(marker + "\ntext\n")
    with pytest.raises(readme_tables.ReadmeError, match="no results for machine"):
        readme_tables.rewrite("<!-- results_table --machine nowhere -->\n| a |\n")


def test_asv_environments_install_a_stacks_pins_in_one_pip_call(monkeypatch):
    # asv installs each requirement alone, and a later one can move an earlier pin (jax-0.4.20 got a newer jax).
    import json
    import types

    from asv.plugin_manager import plugin_manager
    from asv.plugins.virtualenv import Virtualenv

    with open(os.path.join(ROOT, "asv.conf.json")) as f:
        conf = json.loads("\n".join(line for line in f if not line.lstrip().startswith("//")))
    assert ".tools.asv_pinned_install" in conf["plugins"]
    monkeypatch.setattr(Virtualenv, "_install_requirements", Virtualenv._install_requirements)  # restored after
    monkeypatch.chdir(ROOT)  # asv imports a "."-plugin from where it runs, as the Makefile runs it
    plugin_manager.import_plugin(".tools.asv_pinned_install")
    calls = []
    fake = types.SimpleNamespace(build_env_vars={"RNNBENCH_STACK": "jax-0.4.20"}, _base_requirements={},
                                 _requirements={"jax": "0.4.20", "flax": "0.7.5", "numpy": "1.26.4"},
                                 _run_pip=lambda args, env=None: calls.append((args, env)))
    Virtualenv._install_requirements(fake)
    assert [args for args, _ in calls] == [["install", "-v", "wheel", "pip>=8"],
                                           ["install", "-v", "--upgrade", "jax==0.4.20", "flax==0.7.5", "numpy==1.26.4"]]
    assert all(env["RNNBENCH_STACK"] == "jax-0.4.20" for _, env in calls)


import time_step  # noqa: E402


def test_time_step_warms_up_by_the_scenarios_count_unless_told(monkeypatch, capsys):
    from benchmarks import common, scenarios

    steps = []
    monkeypatch.setattr(common, "build", lambda framework, implementation, spec: common.Workload(
        lambda: steps.append(1) or 1.0, None, "cpu"))
    monkeypatch.setattr(common, "_workload_cache", {})
    time_step.main(["pytorch", "nn.LSTM", "1x320/CE-long", "--steps", "3"])
    warmup = scenarios.spec("1x320/CE-long", "small").warmup_steps
    assert len(steps) == warmup + 3 and "build + {} warm-up steps".format(warmup) in capsys.readouterr().out
    time_step.main(["pytorch", "nn.LSTM", "1x320/CE-long", "--steps", "3", "--warmup-steps", "0"])
    assert len(steps) == warmup + 6 and "build + 0 warm-up steps" in capsys.readouterr().out


def test_time_step_flush_denormal_is_pytorch_only_and_bad_counts_are_refused(capsys):
    with pytest.raises(SystemExit, match="--flush-denormal is PyTorch's torch.set_flush_denormal; tensorflow"):
        time_step.main(["tensorflow", "LSTMCell", "1x320/CE-short", "--flush-denormal"])
    with pytest.raises(SystemExit) as refused:
        time_step.main(["pytorch", "nn.LSTM", "1x320/CE-short", "--warmup-steps", "-1"])
    assert refused.value.code == 2 and "--warmup-steps at least 0" in capsys.readouterr().err
