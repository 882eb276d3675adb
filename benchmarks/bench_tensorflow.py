"""TensorFlow (graph mode, feed_dict): one training step per scenario and implementation,
its host peak memory and its metrics."""
from . import common, scenarios
from .frameworks import tensorflow


class TrainingStep(common.TrainingStep):
    framework = "tensorflow"
    params = [scenarios.SCENARIO_NAMES, list(tensorflow.IMPLEMENTATIONS)]


class Runtime(common.Runtime):
    framework = "tensorflow"


class StepMetrics(common.StepMetrics):
    framework = "tensorflow"
    params = TrainingStep.params

    def setup_cache(self):  # defined here: asv shares one cache among classes inheriting the same setup_cache
        return self.measure_all()
