"""JAX (Flax and lax.scan): one training step per scenario and implementation,
its host peak memory and its metrics."""
from . import common, scenarios
from .frameworks import jax


class TrainingStep(common.TrainingStep):
    framework = "jax"
    params = [scenarios.SCENARIO_NAMES, list(jax.IMPLEMENTATIONS)]


class Runtime(common.Runtime):
    framework = "jax"


class StepMetrics(common.StepMetrics):
    framework = "jax"
    params = TrainingStep.params

    def setup_cache(self):  # defined here: asv shares one cache among classes inheriting the same setup_cache
        return self.measure_all()
