"""PyTorch: one training step per scenario and implementation, its host peak memory and its metrics."""
from . import common, scenarios
from .frameworks import pytorch


class TrainingStep(common.TrainingStep):
    framework = "pytorch"
    params = [scenarios.SCENARIO_NAMES, list(pytorch.IMPLEMENTATIONS)]


class Runtime(common.Runtime):
    framework = "pytorch"


class StepMetrics(common.StepMetrics):
    framework = "pytorch"
    params = TrainingStep.params

    def setup_cache(self):  # defined here: asv shares one cache among classes inheriting the same setup_cache
        return self.measure_all()
