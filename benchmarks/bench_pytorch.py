"""PyTorch: one training step per scenario and implementation."""
from . import common, scenarios
from .frameworks import pytorch


class TrainingStep(common.TrainingStep):
    framework = "pytorch"
    params = [scenarios.SCENARIO_NAMES, list(pytorch.IMPLEMENTATIONS)]


class Runtime(common.Runtime):
    framework = "pytorch"
