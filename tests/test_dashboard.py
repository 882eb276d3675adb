"""The published dashboard (html/) as a person opens it: headless Chromium over html/ served on localhost
(browsers do not let a file:// page read its data): the pages load with every file they ask for, asv's
graphs draw, the study's charts show, and the browser logs no console message.

Chromium is Debian's (`make test` installs it where it is missing); these tests skip without it.
"""
import http.server
import os
import re
import shutil
import subprocess
import threading

import pytest

from conftest import ROOT

HTML = os.path.join(ROOT, "html")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (make test installs Debian's)")


@pytest.fixture(scope="module")
def server():
    """html/ on a free localhost port, recording (path, status) of every request."""
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=HTML, **kwargs)

        def log_request(self, code="-", size="-"):
            requests.append((self.path, int(code) if str(code).isdigit() else 0))

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:{}".format(httpd.server_address[1]), requests
    httpd.shutdown()


def _open(url, tmp_path):
    """The page's DOM after its scripts ran (virtual time lets the XHRs and drawing finish), and the
    browser's console messages."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--user-data-dir={}".format(tmp_path / "profile"), "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=20000", "--dump-dom", url]
    out = subprocess.run([CHROMIUM] + flags, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    console = [line for line in out.stderr.splitlines() if ":CONSOLE" in line]
    return out.stdout, console


def _failed(requests):
    return [(path, code) for path, code in requests if code >= 400]


def test_asv_dashboard_draws_a_benchmark_graph(server, tmp_path):
    base, requests = server
    del requests[:]
    dom, console = _open(base + "/#bench_pytorch.TrainingStep.time_step", tmp_path)
    assert console == []
    assert _failed(requests) == []
    assert any(path.startswith("/graphs/") for path, _ in requests)  # it read the benchmark's data
    assert 'class="flot-base"' in dom  # flot drew the graph's canvas
    assert "charts/index.html" in dom  # the tab to the study's charts


def test_study_charts_page_shows_every_chart(server, tmp_path):
    base, requests = server
    del requests[:]
    dom, console = _open(base + "/charts/index.html", tmp_path)
    assert console == []
    assert _failed(requests) == []
    images = re.findall(r'<img src="([^"]+\.svg)"', dom)
    assert any("-bars-" in name for name in images) and any("-releases-" in name for name in images)
    fetched = {path for path, code in requests if code == 200}
    assert all("/charts/" + name in fetched for name in images)  # the browser loaded each chart
