"""The study's four scenarios, their size profiles, their data and their initial weights.

This is the one definition every framework shares. It uses numpy alone, and only what numpy 1.16 offers
(the legacy Python 3.7 stacks): ``RandomState`` rather than ``default_rng``, because its streams are
frozen across numpy releases, so a seed gives the same bytes in every environment.

Weights use one canonical layout (PyTorch's): per layer and direction ``w_ih`` (4H x I), ``w_hh``
(4H x H), ``b_ih`` and ``b_hh`` (4H), gates in the order input, forget, cell, output; then ``head.w``
(classes x D), a dense layer without bias, as in the study. Frameworks with another layout map to and
from this one explicitly.
"""
import collections

import numpy as np

SEED = 20180401
PROFILES = ("seed", "small")
LOSSES = ("ce", "ctc")
BLANK = 0
FEATURES = 123
HIDDEN = 320

# Sizes of one batch: batch x time; CTC batches also have the shortest length and labels per sample;
# warmup_steps: the untimed training steps before a cell is timed.
#
# Two warm-up steps cover every framework's first-call costs (allocation, tracing, compiling). The CE-long
# scenarios take more: their loss sits on the last frame, so in the first steps of training the gradient
# carried back over 250 (seed: 1000) frames shrinks into float32's subnormal range, which Intel cores compute
# through slow microcode assists, until Adam's updates move the weights out of that regime. Every
# implementation follows the same trajectory (same data, weights and optimiser), so the count belongs to the
# scenario at its size. Measured with PyTorch's nn.LSTM on an Intel Xeon guest (README, "Warm-up steps per
# scenario"): small 1x320/CE-long, 8 steps at 15x the steady step, then up to 4 at 1.1-2x; small
# 4x320/CE-long, 4 at 18x, then one at 1.6x; seed 1x320/CE-long, 46 steps at 1.5-9x (two of them fast), then
# one at 1.1x; CE-short and CTC-long, only the first step. Each count leaves a margin over those. Seed 4x320/CE-long was not measured (a subnormal step there takes minutes on 2 cores):
# it takes seed 1x320's count, the same loss over the same 1000 frames.
Size = collections.namedtuple("Size", "batch time min_length labels warmup_steps")

Scenario = collections.namedtuple("Scenario", "name layers bidirectional loss classes sizes")

# A scenario at one profile: everything a factory needs to build its model and batch.
Spec = collections.namedtuple(
    "Spec", "scenario profile layers hidden bidirectional loss classes features batch time min_length labels "
    "warmup_steps"
)

# inputs: (batch, time, features) float32; targets: (batch,) int64 class ids for CE, (batch, labels)
# int64 for CTC; input_lengths: (batch,) int64, sorted longest first (old torch packing needs that);
# target_lengths: (batch,) int64 for CTC, None for CE.
Batch = collections.namedtuple("Batch", "inputs targets input_lengths target_lengths")


def _ce(batch, time, warmup_steps=2):
    return Size(batch, time, time, 1, warmup_steps)


SCENARIOS = collections.OrderedDict(
    (s.name, s)
    for s in (
        Scenario("1x320/CE-short", 1, False, "ce", 10, {"seed": _ce(64, 100), "small": _ce(32, 50)}),
        Scenario("1x320/CE-long", 1, False, "ce", 10, {"seed": _ce(32, 1000, 60), "small": _ce(8, 250, 12)}),
        Scenario("4x320/CE-long", 4, True, "ce", 10, {"seed": _ce(32, 1000, 60), "small": _ce(8, 250, 8)}),
        Scenario(
            "4x320/CTC-long", 4, True, "ctc", 59,
            {"seed": Size(32, 1000, 500, 100, 2), "small": Size(8, 250, 125, 25, 2)},
        ),
    )
)
SCENARIO_NAMES = list(SCENARIOS)


def _choose(kind, name, known):
    if name not in known:
        raise ValueError("unknown {} {!r}; choose from {}".format(kind, name, ", ".join(known)))
    return name


def spec(scenario, profile):
    """The concrete shapes of ``scenario`` (a name) at ``profile``."""
    sc = SCENARIOS[_choose("scenario", scenario, SCENARIO_NAMES)]
    size = sc.sizes[_choose("profile", profile, PROFILES)]
    return Spec(
        scenario=sc.name, profile=profile, layers=sc.layers, hidden=HIDDEN, bidirectional=sc.bidirectional,
        loss=sc.loss, classes=sc.classes, features=FEATURES, batch=size.batch, time=size.time,
        min_length=size.min_length, labels=size.labels, warmup_steps=size.warmup_steps,
    )


def directions(spec):
    return ("fwd", "bwd") if spec.bidirectional else ("fwd",)


def lstm_prefixes(spec):
    """(prefix, layer, direction, input size) of every LSTM layer and direction, bottom layer first."""
    out_size = spec.hidden * len(directions(spec))
    return [
        ("lstm.l{}.{}".format(layer, direction), layer, direction, spec.features if layer == 0 else out_size)
        for layer in range(spec.layers)
        for direction in directions(spec)
    ]


def weight_shapes(spec):
    """Canonical parameter names and shapes, in a fixed order."""
    h4 = 4 * spec.hidden
    shapes = collections.OrderedDict()
    for prefix, _, _, in_size in lstm_prefixes(spec):
        shapes[prefix + ".w_ih"] = (h4, in_size)
        shapes[prefix + ".w_hh"] = (h4, spec.hidden)
        shapes[prefix + ".b_ih"] = (h4,)
        shapes[prefix + ".b_hh"] = (h4,)
    shapes["head.w"] = (spec.classes, spec.hidden * len(directions(spec)))
    return shapes


def parameter_count(spec):
    return int(sum(np.prod(shape) for shape in weight_shapes(spec).values()))


def init_weights(spec, seed=SEED):
    """Uniform(-1/sqrt(fan), 1/sqrt(fan)) weights, PyTorch's default scheme, identical for every framework."""
    rng = np.random.RandomState(seed + 1)
    weights = collections.OrderedDict()
    for name, shape in weight_shapes(spec).items():
        fan = shape[1] if name == "head.w" else spec.hidden
        bound = 1.0 / np.sqrt(fan)
        weights[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return weights


def input_lengths(spec):
    """Evenly spaced from ``time`` down to ``min_length`` (all equal to ``time`` for CE)."""
    return np.linspace(spec.time, spec.min_length, spec.batch).round().astype(np.int64)


def make_batch(spec, seed=SEED):
    """The scenario's one batch: inputs uniform(-1, 1); CE labels from every class; CTC labels drawn
    from 1..classes-2 as in the study (0 is the blank)."""
    rng = np.random.RandomState(seed)
    inputs = rng.uniform(-1.0, 1.0, size=(spec.batch, spec.time, spec.features)).astype(np.float32)
    lengths = input_lengths(spec)
    if spec.loss == "ce":
        batch = Batch(inputs, rng.randint(0, spec.classes, size=spec.batch).astype(np.int64), lengths, None)
    else:
        targets = rng.randint(1, spec.classes - 1, size=(spec.batch, spec.labels)).astype(np.int64)
        batch = Batch(inputs, targets, lengths, np.full(spec.batch, spec.labels, dtype=np.int64))
    check_batch(spec, batch)
    return batch


def within_length_reversal(lengths, time):
    """(time, batch) source time index that reverses each sample within its own length and leaves the
    padding after it in place; it is its own inverse. What a bidirectional layer's backward direction
    reads, for the cell loops and scans the suite stacks itself."""
    t = np.arange(time)[:, None]
    lengths = np.asarray(lengths)[None, :]
    return np.where(t < lengths, lengths - 1 - t, t)


def ctc_frames_needed(labels):
    """Frames a CTC path needs: one per label, plus a blank between each pair of repeated labels."""
    labels = np.asarray(labels)
    return int(labels.size + np.count_nonzero(labels[1:] == labels[:-1]))


def check_batch(spec, batch):
    """Refuse a batch that does not fit ``spec``, with a one-line reason (ValueError)."""
    expected = (spec.batch, spec.time, spec.features)
    if batch.inputs.shape != expected or batch.inputs.dtype != np.float32:
        raise ValueError("{}: inputs must be float32 {}, got {} {}".format(
            spec.scenario, expected, batch.inputs.dtype, batch.inputs.shape))
    lengths = np.asarray(batch.input_lengths)
    if lengths.shape != (spec.batch,) or lengths.min() < 1 or lengths.max() > spec.time:
        raise ValueError("{}: input lengths must be {} values in 1..{}".format(spec.scenario, spec.batch, spec.time))
    if np.any(np.diff(lengths) > 0):
        raise ValueError("{}: input lengths must be sorted longest first".format(spec.scenario))
    targets = np.asarray(batch.targets)
    if spec.loss == "ce":
        if np.any(lengths != spec.time):
            raise ValueError("{}: CE reads the last time step, so every input length must be {}".format(
                spec.scenario, spec.time))
        if targets.shape != (spec.batch,) or targets.min() < 0 or targets.max() >= spec.classes:
            raise ValueError("{}: CE targets must be {} class ids in 0..{}".format(
                spec.scenario, spec.batch, spec.classes - 1))
        return
    target_lengths = np.asarray(batch.target_lengths)
    if targets.ndim != 2 or targets.shape[0] != spec.batch or target_lengths.shape != (spec.batch,):
        raise ValueError("{}: CTC targets must be (batch, labels) with one length per sample".format(spec.scenario))
    if target_lengths.min() < 1 or target_lengths.max() > targets.shape[1]:
        raise ValueError("{}: CTC target lengths must be in 1..{}".format(spec.scenario, targets.shape[1]))
    for sample in range(spec.batch):
        labels = targets[sample, : target_lengths[sample]]
        if labels.min() <= BLANK or labels.max() >= spec.classes:
            raise ValueError("{}: CTC sample {} has labels outside 1..{} (0 is the blank)".format(
                spec.scenario, sample, spec.classes - 1))
        needed = ctc_frames_needed(labels)
        if needed > lengths[sample]:
            raise ValueError("{}: CTC sample {} needs {} frames for its {} labels but has only {}".format(
                spec.scenario, sample, needed, labels.size, lengths[sample]))
