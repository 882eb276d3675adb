"""Lasagne (on Theano): one training step per scenario and implementation, its host peak memory and its metrics."""
from . import common, scenarios
from .frameworks import lasagne


class TrainingStep(common.TrainingStep):
    framework = "lasagne"
    params = [scenarios.SCENARIO_NAMES, list(lasagne.IMPLEMENTATIONS)]


class Runtime(common.Runtime):
    framework = "lasagne"


class StepMetrics(common.StepMetrics):
    framework = "lasagne"
    params = TrainingStep.params

    def setup_cache(self):  # defined here: asv shares one cache among classes inheriting the same setup_cache
        return self.measure_all()
