"""A short tour of the layers: the cells, engines proven equal, their speed, and what a long memory
buys. ``rnnkit demo`` runs it; ``rnnkit cells`` prints the first part."""

from __future__ import annotations

import inspect
import re
import time

import torch
import torch.nn.functional as F

from ..analysis import progress
from ..cells import CELLS, state_tensors
from ..engines import engines_for
from ..metrics import percent
from ..recurrent import Recurrent

CELL_OPTIONS = [
    ("rnn", {}),
    ("gru", {}),
    ("gru-simple", {}),
    ("gru-cudnn", {}),
    ("lstm", {}),
    ("lstm", {"peepholes": True}),
]


def _label(kind: str, options: dict) -> str:
    return kind + ("+peepholes" if options.get("peepholes") else "")


def plain_equation(line: str) -> str:
    """A docstring's equation line as a terminal shows it: no reST directive, no LaTeX markup
    (``.. math::``, ``\\tanh``, ``W_{aa}``, alignment ``&``)."""
    line = re.sub(r"^\.\. math::\s*", "", line.replace("&", "").strip())
    line = re.sub(r"\\([A-Za-z]+)", r"\1", line)  # \tanh -> tanh, \sigma -> sigma
    return re.sub(r"_\{([^{}]*)\}", r"_\1", line)  # W_{aa} -> W_aa


def describe_cells() -> str:
    """One block per registered cell: its equations (from the docstring), its options and the
    engines that run it."""
    lines = []
    for kind, cls in CELLS.items():
        cell = cls(1, 1)
        engines = engines_for(cell, "cpu")
        doc = [line.strip() for line in (cls.__doc__ or "").strip().splitlines()]
        options = [f"{name}={p.default!r}" for name, p in inspect.signature(cls.__init__).parameters.items()
                   if name not in ("self", "input_size", "hidden_size") and p.default is not inspect.Parameter.empty]  # fmt: skip
        lines.append(f"{kind}  (blocks {' '.join(cls.blocks)}; state {', '.join(cls.state_names)}; engines {', '.join(engines)}"
                     + (f"; options {', '.join(options)}" if options else "") + ")")  # fmt: skip
        lines.append(f"    {doc[0]}")
        lines += [f"      {plain_equation(line)}" for line in doc if "<t>" in line and "=" in line and not line.startswith(("Blocks", "``"))]
    return "\n".join(lines)


def _max_difference(reference: Recurrent, other: Recurrent, x: torch.Tensor, lengths: list[int]) -> float:
    results = []
    for layer in (reference, other):
        out, final = layer(x, lengths=lengths)
        finals = state_tensors(final)
        loss = out.pow(2).sum() + sum(f.sum() for f in finals)
        grads = torch.autograd.grad(loss, [x, *layer.parameters()])
        results.append([out, *finals, *grads])
    return max((a - b).abs().max().item() for a, b in zip(*results))


def engines_agree(seed: int = 0) -> list[tuple[str, str, float]]:
    """(cell, engine, max |difference| from the reference engine) in float64, padded, 2 layers, 2 directions."""
    rows = []
    for kind, options in CELL_OPTIONS:
        torch.manual_seed(seed)
        reference = Recurrent(kind, 4, 8, num_layers=2, bidirectional=True, engine="reference", **options).double()
        x = torch.randn(9, 5, 4, dtype=torch.float64, requires_grad=True)
        for name in engines_for(reference.cells["l0"], "cpu"):
            if name == "reference":
                continue
            other = Recurrent(kind, 4, 8, num_layers=2, bidirectional=True, engine=name, **options).double()
            other.load_state_dict(reference.state_dict())
            rows.append((_label(kind, options), name, _max_difference(reference, other, x, [9, 4, 7, 1, 3])))
    return rows


def _step_ms(module, x: torch.Tensor, repeats: int) -> float:
    def step():
        out = module(x)[0]
        out.sum().backward()

    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3


def speed(B: int, T: int, n_x: int, n_a: int, repeats: int) -> list[tuple[str, str, float]]:
    """(cell, engine, ms per training step) next to torch.nn.LSTM and torch.nn.GRU."""
    torch.manual_seed(0)
    x = torch.randn(T, B, n_x, requires_grad=True)
    rows = [("torch.nn.LSTM", "oneDNN", _step_ms(torch.nn.LSTM(n_x, n_a), x, repeats))]
    rows.append(("torch.nn.GRU", "ATen", _step_ms(torch.nn.GRU(n_x, n_a), x, repeats)))
    for kind in progress(["lstm", "gru", "gru-cudnn", "rnn"], "timing the engines", unit="cell"):
        layer = Recurrent(kind, n_x, n_a, engine="reference")
        for name in engines_for(layer.cells["l0"], "cpu"):
            layer.engine = name
            rows.append((kind, name, _step_ms(layer, x, max(2, repeats // 3) if name == "reference" else repeats)))
        layer.engine = "auto"
        picked = layer.engine_for(x.device, x).name  # timed once per machine and shape class (engines/autotune.py)
        rows.append((kind, f"auto={picked}", next(ms for cell, name, ms in rows if cell == kind and name == picked)))
    return rows


def tag_by_the_next_word(bidirectional: bool, steps: int, seed: int, T: int = 12, vocab: int = 10) -> float:
    """Train a tagger whose right tag for each word depends on the word after it ("Teddy Roosevelt"
    against "Teddy bears"): the tag of x<t> is whether x<t+1> is a "person-like" word (an even
    number here). Returns per-word accuracy on fresh sentences, last word excluded (it has no next).

    A one-direction layer reads only x<1..t> when it tags x<t> and can do no better than guessing;
    a bidirectional one also reads x<t+1..T>.
    """
    torch.manual_seed(seed)
    hidden = 32
    embed = torch.nn.Embedding(vocab, 16)
    layer = Recurrent("gru", 16, hidden, bidirectional=bidirectional)
    head = torch.nn.Linear(hidden * layer.num_directions, 2)
    params = [*embed.parameters(), *layer.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-2)

    def batch(n):
        words = torch.randint(vocab, (T, n))
        tags = (words[1:] % 2 == 0).long()  # tag of x<t> from x<t+1>
        return words, tags

    def tag_scores(words):
        return head(layer(embed(words))[0][:-1])  # (T-1, n, 2)

    for _ in progress(steps, "one-direction GRU" if not bidirectional else "bidirectional GRU"):
        words, tags = batch(64)
        loss = F.cross_entropy(tag_scores(words).flatten(0, 1), tags.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        words, tags = batch(1000)
        return (tag_scores(words).argmax(-1) == tags).float().mean().item()


def run_demo(quick: bool = False, seed: int = 0) -> None:
    print("== 1. Cells, written from their equations (rnnkit.cells)\n")
    print(describe_cells())

    print("\n== 2. Engines agree with the reference cells (float64, padded batch, 2 layers, both directions)\n")
    print(f"  {'cell':16s} {'engine':8s} max |difference| in outputs, final states and all gradients")
    for cell, engine, difference in engines_agree(seed):
        print(f"  {cell:16s} {engine:8s} {difference:.1e}")

    B, T, n_a = (8, 16, 32) if quick else (32, 64, 256)
    print(f"\n== 3. One training step (forward + backward), B={B} T={T} n_x=32 n_a={n_a}, {torch.get_num_threads()} threads\n")
    rows = speed(B, T, 32, n_a, repeats=3 if quick else 9)
    for cell, engine, ms in rows:
        print(f"  {cell:14s} {engine:12s} {ms:8.1f} ms")

    steps = 20 if quick else 200
    print(f"\n== 4. Why a tagger reads both ways: each word's tag depends on the next word ({steps} steps, chance 50%)\n")
    for bidirectional in (False, True):
        start = time.perf_counter()
        accuracy = tag_by_the_next_word(bidirectional, steps, seed)
        name = "bidirectional GRU" if bidirectional else "one-direction GRU"
        print(f"  {name:18s} tag accuracy {percent(accuracy, 1):>7}   ({time.perf_counter() - start:.1f} s)")
    print("\nNext: `rnnkit cells` lists the equations; docs/benchmarks.md has the measured speeds.")
