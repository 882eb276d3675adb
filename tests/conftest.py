import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from benchmarks import scenarios  # noqa: E402


def tiny_spec(scenario):
    """The scenario's structure (layers, directions, loss, classes) at shapes the numpy reference
    computes in a blink: hidden 4, 3 features, 3 samples of up to 7 steps, 2 CTC labels."""
    spec = scenarios.spec(scenario, "small")
    return spec._replace(hidden=4, features=3, batch=3, time=7,
                         min_length=5 if spec.loss == "ctc" else 7, labels=2)


@pytest.fixture(params=scenarios.SCENARIO_NAMES)
def spec(request):
    return tiny_spec(request.param)
