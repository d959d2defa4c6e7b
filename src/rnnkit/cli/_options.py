"""Numeric option types for argparse: each checks finiteness and range where the option is parsed.

One place for every verb (``train`` included), so ``--temperature nan`` or ``--top-p 0`` gets the same
one-line error as any other bad option, naming it, before a run is opened or a directory written::

    parser.add_argument("--temperature", type=positive_float, default=1.0)
    # rnnkit sample: error: argument --temperature: must be a finite number > 0, got 'nan'

``float("nan")``, ``float("inf")`` and ``float("1e999")`` all parse, so a plain ``type=float`` lets them
through to the model, where they fail far from the option (a NaN softmax, an empty beam) or not at all.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def number(kind: type = float, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, name: str | None = None) -> Callable[[str], float | int]:
    """An argparse ``type=`` that parses ``kind`` (int or float), finite, within [low, high].

    ``low_open`` / ``high_open`` exclude that end. Raises ``argparse.ArgumentTypeError`` with a message
    that states the accepted range and echoes the text given; argparse prefixes the option's name.
    """
    show = (lambda bound: str(int(bound))) if kind is int else (lambda bound: f"{bound:g}")  # a seed's 2**64 - 1 exactly
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {show(low)}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {show(high)}")
    what = ("a whole number" if kind is int else "a finite number") + (" " + " and ".join(bounds) if bounds else "")

    def parse(text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        if high is not None and (value > high or (high_open and value == high)):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = name or f"{kind.__name__}_in_range"  # argparse names the type in some messages
    return parse


finite_float = number(float, name="finite_float")
positive_float = number(float, low=0, low_open=True, name="positive_float")            # temperature, lr, seconds
nonnegative_float = number(float, low=0, name="nonnegative_float")                     # clip (0 = off), weight decay
probability = number(float, low=0, high=1, name="probability")                          # dropout, teacher forcing
top_p_float = number(float, low=0, high=1, low_open=True, name="top_p_float")          # nucleus mass: p = 0 keeps nothing
decay = number(float, low=0, high=1, high_open=True, name="decay")                      # EMA decay: 1 never moves
positive_int = number(int, low=1, name="positive_int")                                  # sizes, counts, beam, steps
nonnegative_int = number(int, low=0, name="nonnegative_int")                            # top-k (0 = off), patience
midi_program = number(int, low=0, high=127, name="midi_program")                      # General MIDI instrument
port = number(int, low=1, high=65535, name="port")                                      # TCP port
seed = number(int, low=0, high=2**64 - 1, name="seed")                                  # what torch.manual_seed takes


def device(text: str) -> str:
    """``--device``: ``auto``, or a device torch knows and this machine has (``cpu``, ``cuda``,
    ``cuda:1``, ``mps``), checked where it is parsed: torch would fail later with its own words
    (``Torch not compiled with CUDA enabled``) from deep inside the model's loading."""
    if text == "auto":
        return text
    import torch

    try:
        chosen = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda, cuda:N or mps, got {text!r}") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: no CUDA device on this machine (torch {torch.__version__}); use cpu or auto")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif chosen.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: no MPS device on this machine; use cpu or auto")
    elif chosen.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text!r}: rnnkit runs on cpu, cuda or mps")
    return text
