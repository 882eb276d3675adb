"""The suite as asv sees it: `asv check`, and a quick dry run of the PyTorch benchmarks on the small
profile in the real matrix environment (built by asv from asv.conf.json on first use, then reused)."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import asv_envs  # noqa: E402
from asv.util import load_json  # noqa: E402

ASV = [sys.executable, "-m", "asv"]


def _asv(*args, timeout=1500):
    env = dict(os.environ)
    # asv builds its environments with the python3.11 that runs the tests.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.path.dirname(os.path.realpath(sys.executable)) \
        + os.pathsep + env["PATH"]
    # A smoke run: StepMetrics' setup_cache takes one sample per phase, of the smallest scenario's cells only.
    env["RNNBENCH_METRICS_QUICK"] = "1"
    env["RNNBENCH_METRICS_SCENARIOS"] = "1x320/CE-short"
    out = subprocess.run(ASV + list(args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=timeout)
    return out.returncode, out.stdout


def test_asv_check_discovers_the_suite():
    code, out = _asv("check", "--python=same")
    assert code == 0, out
    assert "Traceback" not in out


def test_profiles_and_stacks_name_their_environments():
    small = asv_envs.env_names("small")
    assert "virtualenv-py3.11-numpy2.4.6-torch2.13.0-RNNBENCH_PROFILEsmall-RNNBENCH_STACKtorch-2.13" in small
    assert all("RNNBENCH_PROFILEsmall" in name for name in small)
    assert asv_envs.env_names("seed", ["torch-2.13"]) == [
        "virtualenv-py3.11-numpy2.4.6-torch2.13.0-RNNBENCH_PROFILEseed-RNNBENCH_STACKtorch-2.13"]
    assert len(asv_envs.env_names("small", ["theano-1.0", "tensorflow-1.15"])) == 2
    assert asv_envs.env_names("tiny") == []


@pytest.mark.skipif(subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL).returncode != 0, reason="asv run needs a commit")
def test_quick_dry_run_of_the_pytorch_benchmarks_on_the_small_profile(tmp_path):
    # The main stack only: the legacy stacks' environments are tested in .venv-stacks (make test).
    (env_name,) = asv_envs.env_names("small", ["torch-2.13"])
    # The project's configuration, but nothing written into the repository's results/ or html/.
    conf = load_json(os.path.join(ROOT, "asv.conf.json"), js_comments=True)
    conf.update(repo=ROOT, benchmark_dir=os.path.join(ROOT, "benchmarks"), env_dir=os.path.join(ROOT, ".asv", "env"),
                results_dir=str(tmp_path / "results"), html_dir=str(tmp_path / "html"),
                # {conf_dir} is where the configuration lies: here, a temporary folder
                install_command=[c.replace("{conf_dir}", ROOT) for c in conf["install_command"]])
    config = tmp_path / "asv.conf.json"
    config.write_text(json.dumps(conf))
    machine = ["--machine", "rnnbench-test"]
    code, out = _asv("machine", "--yes", *machine)
    assert code == 0, out
    # Every PyTorch benchmark of the smallest scenario, for every implementation, and the Runtime records
    # (the other scenarios run the same harness at larger sizes, and test_implementations runs every scenario's
    # code at tiny sizes); StepMetrics' track methods, which only read the cache that setup_cache fills, for
    # one cell (each would be one more process importing torch). The other frameworks are not installed in
    # this environment: their benchmarks only skip, and test_implementations covers that skip.
    # (asv takes a whole benchmark when its bare name matches, so each regex names its parameters.)
    selection = ["--bench", r"^bench_pytorch\.TrainingStep\.\w+\('1x320/CE-short'",
                 "--bench", r"^bench_pytorch\.Runtime\.",
                 "--bench", r"^bench_pytorch\.StepMetrics\.\w+\('1x320/CE-short', 'nn\.LSTM'\)"]
    code, out = _asv("run", "--config", str(config), "--quick", "--dry-run", "--show-stderr", "-E", env_name,
                     *selection, *machine)
    assert code == 0, out  # asv run exits 2 if any benchmark failed
    for implementation in ("LSTMCell-basic", "LSTMCell-fused", "nn.LSTM"):
        assert implementation in out
    assert "failed" not in out.lower(), out
    # cuDNN has no CPU kernel: asv shows it as skipped (n/a), never as a time.
    assert "n/a" in out
    for metric in ("StepMetrics.track_gflops", "StepMetrics.track_first_step", "TrainingStep.peakmem_step",
                   "Runtime.track_threads"):
        assert "bench_pytorch." + metric in out
    # asv tables every parameter, n/a where not run: the selected cells have a time
    assert re.search(r"1x320/CE-short\s+nn\.LSTM\s+\d", out), out
