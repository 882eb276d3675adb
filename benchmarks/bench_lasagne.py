"""Lasagne (on Theano): one training step per scenario and implementation."""
from . import common, scenarios
from .frameworks import lasagne


class TrainingStep(common.TrainingStep):
    framework = "lasagne"
    params = [scenarios.SCENARIO_NAMES, list(lasagne.IMPLEMENTATIONS)]


class Runtime(common.Runtime):
    framework = "lasagne"
