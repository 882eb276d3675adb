"""Keras (2 and 3): one training step per scenario and implementation (on the backend KERAS_BACKEND names),
its host peak memory and its metrics."""
from . import common, scenarios
from .frameworks import keras


class TrainingStep(common.TrainingStep):
    framework = "keras"
    params = [scenarios.SCENARIO_NAMES, list(keras.IMPLEMENTATIONS)]


class Runtime(common.Runtime):
    framework = "keras"


class StepMetrics(common.StepMetrics):
    framework = "keras"
    params = TrainingStep.params

    def setup_cache(self):  # defined here: asv shares one cache among classes inheriting the same setup_cache
        return self.measure_all()
