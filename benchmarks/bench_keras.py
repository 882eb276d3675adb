"""Keras 2: one training step per scenario and implementation, on the backend KERAS_BACKEND names."""
from . import common, scenarios
from .frameworks import keras


class TrainingStep(common.TrainingStep):
    framework = "keras"
    params = [scenarios.SCENARIO_NAMES, list(keras.IMPLEMENTATIONS)]


class Runtime(common.Runtime):
    framework = "keras"
