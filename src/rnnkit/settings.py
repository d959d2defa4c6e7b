"""Settings written once: a dataclass field carries its default, its help and how the command line
parses it, and ``rnnkit train``'s options are generated from such fields (``rnnkit.cli.train``).

A setting of a task's data configuration, of the training configuration (``TrainingConfig``) or of a
model (``rnnkit.tasks.spec.MODEL_SETTINGS``) is declared with :func:`setting`, or with a plain
``dataclasses.field(metadata={"help": ...})``; everything but ``help`` is optional::

    batch_size: int = setting(32, type=positive_int, help="sequences per batch")
    level: str = setting("char", choices=("char", "word"), help="what a token is")

The option is ``--batch-size``; its default is shown from the field (never written in the help);
a boolean gets ``--name`` and ``--no-name``. Without a ``type`` the default's type decides (an
``int`` field parses as ``int``, a ``float`` as a finite float).

The numeric types check finiteness and range where the option is parsed, so ``--temperature nan``
or ``--top-p 0`` gets a one-line error naming the option before a run is opened or written::

    parser.add_argument("--temperature", type=positive_float, default=1.0)
    # rnnkit sample: error: argument --temperature: must be a finite number > 0, got 'nan'

``float("nan")``, ``float("inf")`` and ``float("1e999")`` all parse, so a plain ``type=float`` lets them
through to the model, where they fail far from the option (a NaN softmax, an empty beam) or not at all.
This module imports nothing but the standard library (and rnnkit.errors): every layer's
dataclasses use it. ``check_settings`` checks values that did not come through the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Iterable
from typing import Any, Callable

from .errors import UsageError


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
    parse.kind, parse.what = kind, what  # for check_settings
    return parse


finite_float = number(float, name="finite_float")
positive_float = number(float, low=0, low_open=True, name="positive_float")            # temperature, lr, seconds
nonnegative_float = number(float, low=0, name="nonnegative_float")                     # clip (0 = off), weight decay
probability = number(float, low=0, high=1, name="probability")                          # teacher forcing, momentum
top_p_float = number(float, low=0, high=1, low_open=True, name="top_p_float")          # nucleus mass: p = 0 keeps nothing
decay = number(float, low=0, high=1, high_open=True, name="decay")                      # EMA decay: 1 never moves
dropout_rate = number(float, low=0, high=1, high_open=True, name="dropout")                # 1 would drop everything
ema_decay = number(float, low=0, high=1, low_open=True, high_open=True, name="ema_decay")  # 0 is no average, 1 never moves
learning_rate = number(float, low=0, low_open=True, high=3.4028234663852886e38, name="learning_rate")  # float32's largest: optimizers hold it so
positive_int = number(int, low=1, name="positive_int")                                  # sizes, counts, beam, steps
nonnegative_int = number(int, low=0, name="nonnegative_int")                            # top-k (0 = off), patience
midi_program = number(int, low=0, high=127, name="midi_program")                      # General MIDI instrument
port = number(int, low=1, high=65535, name="port")                                      # TCP port
# how long a served batch waits for more requests: milliseconds; --window-ms 1e12 held every request
# (and the server's shutdown, which waits for them) for good
batch_window_ms = number(float, low=0, high=10_000, name="batch_window_ms")
seed = number(int, low=0, high=2**64 - 1, name="seed")                                  # what torch.manual_seed takes
# hypotheses a beam search keeps: wider beams gain nothing measurable and need memory in proportion
# (a --beam of 10**9 asked for 128 GB at once; 10**20 overflowed into a traceback)
beam_width = number(int, low=1, high=1000, name="beam_width")
# samples drawn side by side (sample --num: one batch, its logits num x vocabulary) and pieces written
# (compose --num): bounded as the beam is, where --num 10**11 asked torch for terabytes in a traceback
sample_count = number(int, low=1, high=10_000, name="sample_count")
piece_count = number(int, low=1, high=1_000, name="piece_count")
# a transposition of a piece within the 88 keys: a shift of 88 semitones or more leaves the piano whatever the piece
semitone_shift = number(int, low=0, high=87, name="semitone_shift")
# and their lengths: a sample as long as the longest sequence rnnkit reads (batches.MAX_SEQUENCE_STEPS),
# a piece as long as a MIDI file rnnkit reads back (music.MAX_MIDI_STEPS: a longer one was refused as a prime)
sample_length = number(int, low=1, high=100_000, name="sample_length")
piece_length = number(int, low=1, high=200_000, name="piece_length")
# a MIDI file's tempo is whole microseconds per beat, at most 2**24 - 1 (16.8 s): a step is written as a beat
SHORTEST_STEP_SECONDS = 1e-4
step_seconds = number(float, low=SHORTEST_STEP_SECONDS, high=16, name="step_seconds")


def nonempty_text(text: str) -> str:
    """A name or path that is not empty: ``--word-vectors "$GLOVE"`` with the variable unset passes
    ``""``, which was read as the option not given (the run trained without what it named)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a name, got {text!r} (an unset shell variable?)")
    return text


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


def list_of_ints(text: str) -> list[int]:
    """``256,256`` -> ``[256, 256]`` (a deep head's layer sizes; ``""``: none). Each a whole number
    >= 1: a layer of 0 units would cut the output off from the input."""
    if not text.strip():
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers >= 1, got {text!r}")
    return sizes


def option(*, help: str = "", type: Callable[[str], Any] | None = None, choices: tuple | Callable[[], Any] | None = None,
           nargs: int | str | None = None, metavar: Any = None, flag: str | None = None, off_flag: str | None = None,
           off_help: str | None = None, cli: bool = True, applies: Callable[[Any], str | None] | None = None) -> dict:
    """How a setting reads on the command line, as a field's metadata (see :func:`setting`); for
    settings whose defaults live elsewhere, such as a task's model defaults. ``applies``: given the
    whole configuration it belongs to (a dataclass, or a dict of model settings), None when the
    setting takes effect there, else why it does not (``refuse_unapplied``)."""
    metadata = {"help": help, "type": type, "choices": choices, "nargs": nargs, "metavar": metavar, "flag": flag,
                "off_flag": off_flag, "off_help": off_help, "cli": cli, "applies": applies}
    return {key: value for key, value in metadata.items() if value is not None}


def setting(default: Any = dataclasses.MISSING, *, default_factory: Callable[[], Any] | Any = dataclasses.MISSING, **how: Any) -> Any:
    """A dataclass field whose metadata makes its command-line option (see the module docstring).

    ``help``: what the setting means (its default is shown from the field). ``type``: an argparse
    type (the range-checked ones above); a boolean is a flag. ``choices``: a tuple, or a function
    returning the choices of a registry when the parser is built. ``nargs``/``metavar``: as
    argparse's (``metavar`` may be a function too: names listed but checked later, by their registry). ``flag``: the option's name when it is not ``--field-name``; for a boolean,
    ``off_flag`` (default ``--no-field-name``) and ``off_help`` name and explain the flag that sets
    it false. ``cli=False``: a setting for config files only. ``default_factory`` for a mutable default.
    """
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=option(**how))
    return dataclasses.field(default=default, metadata=option(**how))


def settings_of(config: type) -> list[tuple[str, Any, dict, str]]:
    """``(name, default, metadata, annotation)`` of each field of the dataclass ``config``, in order."""
    rows = []
    for field in dataclasses.fields(config):
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        rows.append((field.name, None if default is dataclasses.MISSING else default, dict(field.metadata), str(field.type)))
    return rows


def number_fits(parse: Callable[[str], Any], value: Any) -> bool:
    """Whether ``value`` (from a file: JSON, TOML) is a number the option parser ``parse`` (made by
    :func:`number`) takes: of its kind (a whole number for ``int``; never a bool) and in its range."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or (parse.kind is int and not isinstance(value, int)):
        return False
    try:
        return parse(str(value)) is not None
    except argparse.ArgumentTypeError:
        return False


def check_settings(config: Any, source: str) -> None:
    """A one-line ``UsageError`` naming the first setting of the dataclass instance ``config`` that
    its own option would refuse: a number of the wrong kind, not finite or out of its range (its
    field's ``type``, made by :func:`number`), or a value not among its ``choices``. For values that
    do not pass through the command line: a config file's, a resumed run's. None passes where the
    field's annotation allows it, and so does a field's default (``dates = 0``: no date task, a
    value its option, which asks for at least 1, never sees)."""
    for field in dataclasses.fields(config):
        value, parse, choices = getattr(config, field.name), field.metadata.get("type"), field.metadata.get("choices")
        if (value is None and "None" in str(field.type)) or (field.default is not dataclasses.MISSING and value == field.default):
            continue
        if field.type in ("bool", bool) and not isinstance(value, bool):  # "false" in a JSON file is true to Python
            raise UsageError(f"{source} {field.name}: must be true or false, got {value!r}")
        choices = choices() if callable(choices) else choices
        if isinstance(value, str) and not value.strip() and field.default != value:  # as nonempty_text on the command line
            raise UsageError(f"{source} {field.name}: must not be empty, got {value!r}")
        if choices is not None and value not in choices:
            raise UsageError(f"{source} {field.name}: must be one of {', '.join(map(str, choices))}, got {value!r}")
        kind = getattr(parse, "kind", None)
        if kind is None:
            continue
        count = field.metadata.get("nargs")
        if isinstance(count, int):  # several numbers (--split VALID TEST): as many as the option takes, each checked
            if not isinstance(value, (list, tuple)) or len(value) != count:
                names = field.metadata.get("metavar")
                listed = f" [{', '.join(names)}]" if names is not None and not isinstance(names, str) else ""  # (VALID, TEST)
                raise UsageError(f"{source} {field.name}: must be a list of {count} numbers{listed}, got {value!r}")
            values = list(value)
        else:
            values = [value]
        for one in values:
            if not number_fits(parse, one):
                raise UsageError(f"{source} {field.name}: must be {parse.what}{' each' if count else ''}, got {value!r}")


def typed_option(name: str, value: Any, meta: dict | None = None) -> str:
    """The option as the user typed it for ``value``: "--hidden-size 64"; a switch as its own flag,
    "--bidirectional" or its ``off_flag`` ("--one-direction", by default "--no-name")."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else ((meta or {}).get("off_flag") or "--no-" + name.replace("_", "-"))
    if isinstance(value, (list, tuple)):  # "--head-sizes 5,6", as typed, not "[5, 6]"
        return f"{flag} {','.join(map(str, value)) or repr('')}"
    return f"{flag} {value}"


def refuse_unapplied(config: Any, given: Iterable[str], metadata: dict[str, dict] | None = None) -> None:
    """A ``UsageError`` for the first setting the user gave (``given``: the names set explicitly, on
    the command line or in a config file) that does nothing in ``config``, as its ``applies`` says
    (``--bptt`` with sentence batching, ``--momentum`` with Adam): refused as ``--peepholes`` with a
    GRU is, never recorded as if it had shaped the run. ``metadata``: name -> field metadata, for a
    configuration that is a dict (model settings); a dataclass's own fields otherwise."""
    if metadata is None:
        metadata = {f.name: dict(f.metadata) for f in dataclasses.fields(config)}
    for name in given:
        applies = metadata.get(name, {}).get("applies")
        reason = applies(config) if applies is not None else None
        if reason:
            raise UsageError(f"--{name.replace('_', '-')} {reason}, so it would do nothing here; leave it out")
