"""PyTorch implementations, each a short factory (spec, batch, weights) -> common.Workload.

Written for torch 1.0 to today: no nn.Module subclasses (a module-level subclass would need torch at
import time), ``pack_padded_sequence`` with lengths sorted longest first (``enforce_sorted`` came in 1.1),
lengths kept on the CPU (required since 1.7).

Implementations (the study's name in brackets):
  LSTMCell-basic  hand-written cell in a Python loop over time [LSTMCell-basic]
  LSTMCell-fused  nn.LSTMCell in a Python loop over time [LSTMCell-fused]
  nn.LSTM         nn.LSTM on PyTorch's own kernels: aten on a CPU, cuDNN switched off on a GPU
  cuDNNLSTM       nn.LSTM on cuDNN [cuDNNLSTM]; GPU only
  nn.LSTM+warp-ctc  nn.LSTM with Baidu's warp-ctc as the CTC loss [the study's PyTorch CTC]; CTC only,
                  where a warpctc-pytorch build matches the torch release
  LSTMCell-script   LSTMCell-basic's loop under torch.jit.script (TorchScript), one scripted function per
                  layer and direction
  LSTMCell-compiled LSTMCell-basic's cell under torch.compile (torch 2.x; CUDA graphs on a GPU)
The cell loops stack layers and directions themselves (PyTorch has no stacking helper for cells);
nn.LSTM uses its own stacked bidirectional helper and, for CTC, packed variable-length input.
"""
import collections
import contextlib
from typing import List  # noqa: F401 - read by TorchScript in scripted_direction

import numpy as np

from .. import common, scenarios

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
except ImportError:  # asv imports every module at discovery; require() turns this into a skip
    torch = None

LEARNING_RATE = 1e-3
GATES = ("w_ih", "w_hh", "b_ih", "b_hh")


def require():
    if torch is None:
        raise NotImplementedError("torch is not installed in this environment")


def configure(threads):
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def _device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _describe(device):
    if device.type == "cuda":
        return "cuda ({})".format(torch.cuda.get_device_name(device))
    return "cpu ({} threads)".format(torch.get_num_threads())


def _leaf(array, device):
    return nn.Parameter(torch.from_numpy(np.ascontiguousarray(array)).to(device))


def _native_ctc(logits, targets, lengths, target_lengths):
    """PyTorch's own CTC (since 1.0): summed negative log-likelihood of the batch."""
    return F.ctc_loss(F.log_softmax(logits, dim=2), targets, lengths, target_lengths,
                      blank=scenarios.BLANK, reduction="sum")


def _workload(spec, batch, weights, params, recurrent, device, context=contextlib.nullcontext, ctc=_native_ctc):
    """Complete a recurrent core into the common workload: dense head, loss, Adam, the timed step.

    params:    canonical name -> parameter of the recurrent core (the head is added here);
    recurrent: (x, lengths) -> top-layer outputs, x time-major (time, batch, features), outputs
               (time, batch, hidden * directions);
    context:   entered around forward and backward (nn.LSTM uses it to switch cuDNN off);
    ctc:       (logits, targets, lengths, target_lengths) -> summed CTC loss of the batch.
    """
    params = collections.OrderedDict(params)
    params["head.w"] = head = _leaf(weights["head.w"], device)
    # Host-side layout, prepared once as the study did: time-major inputs, int64 targets, CPU lengths.
    host_inputs = torch.from_numpy(np.ascontiguousarray(batch.inputs.transpose(1, 0, 2)))
    host_targets = torch.from_numpy(batch.targets)
    lengths = torch.from_numpy(batch.input_lengths)
    target_lengths = None if batch.target_lengths is None else torch.from_numpy(batch.target_lengths)
    optimizer = torch.optim.Adam(list(params.values()), lr=LEARNING_RATE)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def compute(backward):
        x = host_inputs.to(device)
        targets = host_targets.to(device)
        if backward:
            optimizer.zero_grad()
        with context():
            outputs = recurrent(x, lengths)
            if spec.loss == "ce":
                loss = F.cross_entropy(F.linear(outputs[-1], head), targets)
            else:
                total = ctc(F.linear(outputs, head), targets, lengths, target_lengths)
                loss = total / spec.batch  # mean per-sample negative log-likelihood, in every framework
            if backward:
                loss.backward()
        return loss

    def step():
        loss = compute(backward=True)
        optimizer.step()
        sync()
        return loss.item()

    def phase(backward):
        def run():
            loss = compute(backward)
            sync()
            return loss.item()
        return run

    def loss_and_grads():
        loss = compute(backward=True)
        return loss.item(), {name: p.grad.detach().cpu().numpy() for name, p in params.items()}

    _reset_device_peak(device)
    return common.Workload(step, loss_and_grads, _describe(device), forward=phase(backward=False),
                           forward_backward=phase(backward=True), device_peak_bytes=lambda: _device_peak(device))


def _reset_device_peak(device):
    if device.type == "cuda":
        # reset_peak_memory_stats came in torch 1.4; reset_max_memory_allocated is the older spelling
        reset = getattr(torch.cuda, "reset_peak_memory_stats", None) or torch.cuda.reset_max_memory_allocated
        reset(device)


def _device_peak(device):
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def matmul(size):
    """One float32 (size x size) product on the suite's device, synchronised: the peak reference."""
    device = _device()
    a, b, out = (torch.rand(size, size, device=device) for _ in range(3))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run():
        torch.mm(a, b, out=out)
        sync()

    return run


def _adopt(params, prefix, tensors, weights):
    """Load one layer and direction's canonical weights into a torch module's own parameters (same
    layout and gate order), and register those parameters under their canonical names."""
    for gate, tensor in zip(GATES, tensors):
        with torch.no_grad():
            tensor.copy_(torch.from_numpy(weights[prefix + "." + gate]))
        params[prefix + "." + gate] = tensor


def _reversal_index(lengths, time, batch, device):
    """Flat (time * batch) row index of scenarios.within_length_reversal: what nn.LSTM's packed backward
    direction sees."""
    source_time = scenarios.within_length_reversal(lengths, time)
    return torch.from_numpy((source_time * batch + np.arange(batch)[None, :]).reshape(-1)).to(device)


def _stacked_directions(spec, directions, lengths, device):
    """recurrent(x, lengths) for cores the suite stacks itself, as a user would: directions maps each
    prefix to run(x) -> outputs of that layer and direction over time-major x. Outputs past a sample's
    length are not meaningful, as in any padded batch; the loss reads none of them."""
    reverse = _reversal_index(lengths, spec.time, spec.batch, device) if spec.bidirectional else None

    def flip(x):
        return x.reshape(-1, x.size(2)).index_select(0, reverse).reshape(x.size(0), x.size(1), -1)

    def recurrent(x, _):
        for layer in range(spec.layers):
            outputs = [directions["lstm.l{}.fwd".format(layer)](x)]
            if spec.bidirectional:
                outputs.append(flip(directions["lstm.l{}.bwd".format(layer)](flip(x))))
            x = torch.cat(outputs, dim=2) if len(outputs) > 1 else outputs[0]
        return x

    return recurrent


def _stacked_cell_loop(spec, cells, lengths, device):
    """recurrent(x, lengths) for cells: prefix -> cell(x_t, (h, c)) -> (h, c), run in a Python loop."""

    def loop(cell):
        def run(x):
            h = c = x.new_zeros(x.size(1), spec.hidden)
            outputs = []
            for x_t in x:
                h, c = cell(x_t, (h, c))
                outputs.append(h)
            return torch.stack(outputs)
        return run

    return _stacked_directions(spec, {prefix: loop(cell) for prefix, cell in cells.items()}, lengths, device)


def basic_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step of the LSTM in tensor operations (LSTMCell-basic's cell; what torch.compile compiles)."""
    gates = F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)
    i, f, g, o = gates.chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def scripted_direction(x, w_ih, w_hh, b_ih, b_hh):
    """One layer and direction over time-major x, the loop included: what torch.jit.script compiles."""
    h = torch.zeros(x.size(1), w_hh.size(1), dtype=x.dtype, device=x.device)
    c = torch.zeros(x.size(1), w_hh.size(1), dtype=x.dtype, device=x.device)
    outputs = torch.jit.annotate(List[torch.Tensor], [])
    for t in range(x.size(0)):
        gates = torch.mm(x[t], w_ih.t()) + b_ih + torch.mm(h, w_hh.t()) + b_hh
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs)


def _canonical_params(spec, weights, device):
    return collections.OrderedDict(
        (name, _leaf(w, device)) for name, w in weights.items() if name.startswith("lstm.")
    )


def lstm_cell_basic(spec, batch, weights):
    """The study's LSTMCell-basic: the cell written out in tensor operations."""
    device = _device()
    params = _canonical_params(spec, weights, device)

    def cell_of(prefix):
        w = [params[prefix + "." + g] for g in GATES]
        return lambda x, state: basic_cell(x, state[0], state[1], *w)

    cells = {prefix: cell_of(prefix) for prefix, _, _, _ in scenarios.lstm_prefixes(spec)}
    recurrent = _stacked_cell_loop(spec, cells, batch.input_lengths, device)
    return _workload(spec, batch, weights, params, recurrent, device)


def lstm_cell_script(spec, batch, weights):
    """LSTMCell-basic's loop under TorchScript (torch.jit.script of a whole direction, loop included), as
    PyTorch's fastrnns benchmarked it; deprecated since torch 2.x in favour of torch.compile, still run."""
    device = _device()
    params = _canonical_params(spec, weights, device)
    direction = torch.jit.script(scripted_direction)

    def run_of(prefix):
        w = [params[prefix + "." + g] for g in GATES]
        return lambda x: direction(x, *w)

    directions = {prefix: run_of(prefix) for prefix, _, _, _ in scenarios.lstm_prefixes(spec)}
    recurrent = _stacked_directions(spec, directions, batch.input_lengths, device)
    return _workload(spec, batch, weights, params, recurrent, device)


def lstm_cell_compiled(spec, batch, weights):
    """LSTMCell-basic's cell compiled by torch.compile (TorchInductor; on a GPU in "reduce-overhead" mode,
    i.e. with CUDA graphs), called in the Python loop. Compiling the cell rather than the loop keeps the
    graph one step long: Dynamo would unroll the loop over every time step."""
    if not hasattr(torch, "compile"):
        raise NotImplementedError("torch.compile needs torch 2.0 or later; this is torch {}".format(torch.__version__))
    device = _device()
    params = _canonical_params(spec, weights, device)
    compiled = torch.compile(basic_cell, dynamic=False,
                             mode="reduce-overhead" if device.type == "cuda" else None)

    def cell_of(prefix):
        w = [params[prefix + "." + g] for g in GATES]
        return lambda x, state: compiled(x, state[0], state[1], *w)

    cells = {prefix: cell_of(prefix) for prefix, _, _, _ in scenarios.lstm_prefixes(spec)}
    recurrent = _stacked_cell_loop(spec, cells, batch.input_lengths, device)
    return _workload(spec, batch, weights, params, recurrent, device)


def lstm_cell_fused(spec, batch, weights):
    """The study's LSTMCell-fused: nn.LSTMCell, one fused kernel per time step."""
    device = _device()
    params, cells = collections.OrderedDict(), {}
    for prefix, _, _, in_size in scenarios.lstm_prefixes(spec):
        cell = nn.LSTMCell(in_size, spec.hidden).to(device)
        _adopt(params, prefix, (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), weights)
        cells[prefix] = cell
    recurrent = _stacked_cell_loop(spec, cells, batch.input_lengths, device)
    return _workload(spec, batch, weights, params, recurrent, device)


def _nn_lstm(spec, batch, weights, cudnn, ctc=_native_ctc):
    device = _device()
    lstm = nn.LSTM(spec.features, spec.hidden, num_layers=spec.layers, bidirectional=spec.bidirectional).to(device)
    params = collections.OrderedDict()
    for prefix, layer, direction, _ in scenarios.lstm_prefixes(spec):
        suffix = "_l{}{}".format(layer, "_reverse" if direction == "bwd" else "")
        tensors = [getattr(lstm, name + suffix) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        _adopt(params, prefix, tensors, weights)
    if spec.loss == "ctc":
        def recurrent(x, lengths):
            packed, _ = lstm(pack_padded_sequence(x, lengths))
            return pad_packed_sequence(packed)[0]
    else:
        def recurrent(x, _):
            return lstm(x)[0]

    def context():
        return torch.backends.cudnn.flags(enabled=cudnn)

    return _workload(spec, batch, weights, params, recurrent, device, context, ctc)


def nn_lstm(spec, batch, weights):
    """nn.LSTM on PyTorch's own kernels (cuDNN switched off where it exists)."""
    return _nn_lstm(spec, batch, weights, cudnn=False)


def cudnn_lstm(spec, batch, weights):
    """The study's cuDNNLSTM: nn.LSTM on cuDNN."""
    if not (torch.cuda.is_available() and torch.backends.cudnn.is_available()):
        raise NotImplementedError("cuDNNLSTM needs a CUDA device with cuDNN; this machine has none")
    return _nn_lstm(spec, batch, weights, cudnn=True)


def nn_lstm_warp_ctc(spec, batch, weights):
    """The study's PyTorch CTC loss: Baidu's warp-ctc (SeanNaren's binding) on nn.LSTM's outputs.

    Builds of warpctc-pytorch exist for torch 1.1 to 1.6 only (the torch-1.4-warpctc stack). The recurrent
    core is the nn.LSTM implementation's, so this row differs from nn.LSTM's CTC row by the loss alone.
    """
    if spec.loss != "ctc":
        raise NotImplementedError("warp-ctc is a CTC loss; the cross-entropy scenarios have no warp-ctc variant")
    try:
        from warpctc_pytorch import CTCLoss
    except ImportError:
        raise NotImplementedError("warpctc-pytorch is not installed in this environment "
                                  "(builds exist for torch 1.1 to 1.6: see the torch-1.4-warpctc stack)")
    warp_ctc = CTCLoss(blank=scenarios.BLANK)  # sums over the batch, softmax applied inside
    # warp-ctc takes int32 CPU lengths and the labels of all samples concatenated, without padding.
    flat_labels = torch.from_numpy(np.concatenate(
        [row[:n] for row, n in zip(batch.targets, batch.target_lengths)]).astype(np.int32))
    label_lengths = torch.from_numpy(batch.target_lengths.astype(np.int32))
    frame_lengths = torch.from_numpy(batch.input_lengths.astype(np.int32))

    def ctc(logits, targets, lengths, target_lengths):
        return warp_ctc(logits, flat_labels, frame_lengths, label_lengths).to(logits.device).sum()

    return _nn_lstm(spec, batch, weights, cudnn=False, ctc=ctc)


IMPLEMENTATIONS = collections.OrderedDict([
    ("LSTMCell-basic", lstm_cell_basic),
    ("LSTMCell-fused", lstm_cell_fused),
    ("nn.LSTM", nn_lstm),
    ("cuDNNLSTM", cudnn_lstm),
    ("nn.LSTM+warp-ctc", nn_lstm_warp_ctc),
    ("LSTMCell-script", lstm_cell_script),
    ("LSTMCell-compiled", lstm_cell_compiled),
])
