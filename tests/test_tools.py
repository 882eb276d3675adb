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


def test_machine_name_is_a_clean_slug():
    name = machine_name.machine_name()
    assert name and all(c.isalnum() or c == "-" for c in name) and name == name.lower()
    assert machine_name._slug("Intel(R) Xeon(R) Platinum 8480C CPU @ 2.00GHz") == "intel-xeon-platinum-8480c"
    assert machine_name._slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
