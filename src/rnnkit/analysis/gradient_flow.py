r"""Gradient flow over time: how much the loss at one step still reaches the states of earlier steps.

For a loss L<T> at the last step a direction reads, and each earlier step t of that direction:

    g(T - t) = mean over the batch of ‖∂L<T> / ∂a<t>‖₂

A plain RNN multiplies this by roughly the same Jacobian at every step back, so g decays (or
grows) geometrically: vanishing (exploding) gradients. The GRU's and LSTM's gated additive paths
let it decay much more slowly. ``rate`` is the fitted per-step factor exp(slope of log g): below 1
the gradient vanishes, above 1 it explodes.

Clipping by norm (``torch.nn.utils.clip_grad_norm_``) rescales the whole gradient when its norm
exceeds a threshold: it bounds the update an exploding gradient would make, and leaves the
direction, and vanishing gradients, as they are. ``clipping_effect`` reports both norms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..plots import new_figure, save_figure
from . import progress
from .recording import recording
from ..errors import UsageError


@dataclass
class Flow:
    key: tuple[str, str]  # (recurrent module, layer and direction)
    norms: list[float]  # g(d) for d = 0, 1, ... steps back from the loss's step
    rate: float  # fitted per-step factor of g

    @property
    def label(self) -> str:
        return f"{self.key[0]}.{self.key[1]}" if self.key[0] else self.key[1]


def fitted_rate(norms: list[float]) -> float:
    """exp of the least-squares slope of log g(d) against d (over the nonzero norms); inf when a
    norm overflowed float32 (inf or NaN: the gradient grew past what it can hold, which is
    exploding whatever a fit of the rest would say); NaN with fewer than two nonzero norms."""
    if any(not math.isfinite(g) for g in norms):
        return math.inf
    points = [(d, math.log(g)) for d, g in enumerate(norms) if g > 0]
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mean_d = sum(d for d, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = sum((d - mean_d) * (y - mean_y) for d, y in points) / max(sum((d - mean_d) ** 2 for d, _ in points), 1e-12)
    return math.exp(slope)


def gradient_flow(model: nn.Module, loss_at) -> list[Flow]:
    """``loss_at(model, position)`` must run the model (forward) and return the scalar loss at a time
    position (-1: the last, 0: the first); it is called inside a recording. Forward directions are
    measured from the last position back, backward directions from the first position on."""
    flows = []
    for reverse in (False, True):
        with recording(model) as rec:
            loss = loss_at(model, 0 if reverse else -1)
        keys = [k for k in rec.keys() if k[1].endswith("_reverse") == reverse]
        if not keys:
            continue
        states = [a for k in keys for (a, *_) in rec.states[k]]
        grads = torch.autograd.grad(loss, states, allow_unused=True)
        i = 0
        for key in keys:
            T = len(rec.states[key])
            g = [torch.zeros(()) if x is None else x.norm(dim=-1).mean() for x in grads[i : i + T]]
            i += T
            norms = [float(v) for v in reversed(g)]  # distance 0 = the loss's own step
            flows.append(Flow(key, norms, fitted_rate(norms)))
    return flows


def clipping_effect(model: nn.Module, loss: Tensor, max_norm: float) -> dict:
    """The gradient's total norm before and after clipping to ``max_norm`` (gradients left clipped)."""
    model.zero_grad(set_to_none=True)
    loss.backward()
    before = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm))
    after = float(torch.norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])))
    return {"norm_before": before, "norm_after": after, "clipped": before > max_norm}


def plot_flows(curves: dict[str, list[float]], path, title: str = "") -> bool:
    """One curve per label: g(T - t) on a log scale against T - t."""
    figure, axes = new_figure()
    if figure is None:
        return False
    for label, norms in curves.items():
        axes.semilogy(range(len(norms)), [max(n, 1e-30) for n in norms], label=label)
    return save_figure(figure, path, xlabel="T - t (steps back from the loss)", ylabel="mean ‖∂L<T>/∂a<t>‖", title=title,
                       legend=True, grid="both")  # fmt: skip


def compare_cells(lines: list[str], cells=("rnn", "gru", "lstm"), length: int = 50, batch: int = 32, train_steps: int = 300, hidden: int = 64, explode_scale: float = 3.0, clip: float = 1.0, seed: int = 0, log=print) -> dict:
    """Character language models of each cell on the same text: gradient flow at initialisation and
    after ``train_steps`` of training, and an RNN whose recurrent weights are scaled up by
    ``explode_scale`` to show exploding gradients and what clipping does to them."""
    import random

    import torch.nn.functional as F

    from ..models.language_model import LanguageModel

    text = "\n".join(lines) + "\n"
    alphabet = sorted(set(text))
    ids = torch.tensor([alphabet.index(ch) + 3 for ch in text])  # after the three special ids
    if len(ids) < length + 1:  # counted as the text is written: the line break added after the last line is not the user's
        written = len(text) - 1
        raise UsageError(f"the text has {written} character{'' if written == 1 else 's'} (line breaks included); need more than --length {length}")
    rng = random.Random(seed)

    def windows(n):
        starts = [rng.randrange(len(ids) - length) for _ in range(n)]
        return torch.stack([ids[s : s + length] for s in starts], dim=1)  # (T, B)

    probe = windows(batch)

    def loss_at(model, position):
        logits = model(probe).logits  # (T, B, V)
        return F.cross_entropy(logits[position].float(), probe[position])

    def measure(model) -> Flow:
        (flow,) = gradient_flow(model, loss_at)
        return flow

    results: dict = {"init": {}, "trained": {}, "rate_init": {}, "rate_trained": {}}
    for cell in cells:
        torch.manual_seed(seed)
        model = LanguageModel(len(alphabet) + 3, cell=cell, embedding_size=16, hidden_size=hidden)
        flow = measure(model)
        results["init"][cell], results["rate_init"][cell] = flow.norms, flow.rate
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in progress(train_steps, f"gradients: {cell}"):
            tokens = windows(batch)
            logits = model(tokens).logits  # (T, B, V)
            loss = F.cross_entropy(logits.flatten(0, 1), tokens.flatten())
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
        flow = measure(model)
        results["trained"][cell], results["rate_trained"][cell] = flow.norms, flow.rate
        log(f"{cell:5s} per-step factor of the gradient: {results['rate_init'][cell]:.3f} at initialisation, {flow.rate:.3f} after {train_steps} steps")
    torch.manual_seed(seed)
    exploding = LanguageModel(len(alphabet) + 3, cell="rnn", embedding_size=16, hidden_size=hidden)
    with torch.no_grad():
        exploding.recurrent.cells["l0"].weight[:, :hidden].mul_(explode_scale)
    flow = measure(exploding)
    logits = exploding(probe).logits  # (T, B, V)
    effect = clipping_effect(exploding, F.cross_entropy(logits.flatten(0, 1), probe.flatten()), clip)
    # the verdict is the per-step factor's, in the JSON as printed: None when it could not be fitted
    results["exploding"] = {"scale": explode_scale, "rate": flow.rate, "norms": flow.norms, **effect, "exploding": None if flow.rate is None else flow.rate > 1}
    verdict = "exploding" if flow.rate > 1 else "not exploding" if flow.rate <= 1 else "undetermined: fewer than two nonzero gradient norms; saturated tanh units pass no gradient"
    log(f"rnn with recurrent weights x{explode_scale}: per-step factor {flow.rate:.3f} ({verdict}); "
        f"gradient norm {effect['norm_before']:.3g}, clipped to {effect['norm_after']:.3g}")  # fmt: skip
    return results
