"""PyTensor (scan on its C and numba backends): one training step per scenario and implementation,
its host peak memory and its metrics."""
from . import common, scenarios
from .frameworks import pytensor


class TrainingStep(common.TrainingStep):
    framework = "pytensor"
    params = [scenarios.SCENARIO_NAMES, list(pytensor.IMPLEMENTATIONS)]


class Runtime(common.Runtime):
    framework = "pytensor"


class StepMetrics(common.StepMetrics):
    framework = "pytensor"
    params = TrainingStep.params

    def setup_cache(self):  # defined here: asv shares one cache among classes inheriting the same setup_cache
        return self.measure_all()
