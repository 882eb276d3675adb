"""TensorFlow (graph mode, feed_dict): one training step per scenario and implementation."""
from . import common, scenarios
from .frameworks import tensorflow


class TrainingStep(common.TrainingStep):
    framework = "tensorflow"
    params = [scenarios.SCENARIO_NAMES, list(tensorflow.IMPLEMENTATIONS)]


class Runtime(common.Runtime):
    framework = "tensorflow"
