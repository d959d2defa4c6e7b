"""The ``rnnkit`` command. One module per verb; each has ``add_parser(subparsers)`` and ``run(args)``.

Adding a verb: write its module, add a line to ``VERBS``. A verb's module is imported, and its
parser built, only when that verb is the one called: ``rnnkit --help`` and ``rnnkit VERB --help``
answer before torch (seconds to import) loads; a verb imports its heavy parts inside ``run``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
from importlib import import_module

from ..errors import USER_ERRORS, Terminated, UsageError
from ..signals import interrupts_deferred, terminate_as_interrupt

# verb -> (its module in rnnkit.cli, the line `rnnkit --help` shows for it)
VERBS = {
    "demo": ("demo", "train a small character-level language model of first names, then sample and score (about 2 minutes)"),
    "train": ("train", "train a model (lm, tagger, classifier, seq2seq, music) into a run directory"),
    "prepare": ("prepare", "tokenize a large text once into token ids on disk, for rnnkit train lm DIR"),
    "sample": ("sample", "sample novel sequences from a trained language model"),
    "score": ("score", "log-probability and perplexity of sentences under a trained language model"),
    "tag": ("tag", "tag raw text with a trained tagger; entities inline or as JSON lines"),
    "classify": ("classify", "classify texts with a trained classifier; label and class probabilities"),
    "translate": ("translate", "translate with a trained seq2seq run (greedy or beam search)"),
    "compose": ("compose", "write new music with a trained music model: MIDI, a piano-roll PNG, WAV"),
    "gradients": ("analysis", "gradient flow over time for RNN, GRU and LSTM on the same text; exploding gradients and clipping"),
    "agreement": ("analysis", "subject-verb agreement over distance: accuracy of RNN, GRU and LSTM at equal parameter counts"),
    "inspect": ("analysis", "an HTML page of a trained model's hidden units over a text, with unit rankings and gate saturation"),
    "eval": ("evaluate", "a trained model's scores on a data file (loss and perplexity, accuracy, F1, BLEU ...)"),
    "tour": ("tour", "a short tour of the layers: cells, engines proven equal, their speed, why taggers read both ways"),
    "cells": ("cells", "list the recurrent cells with their equations and engines"),
    "export": ("export", "export a trained run as ONNX (run it with onnxruntime, no PyTorch needed)"),
    "serve": ("serve", "serve trained runs over HTTP (JSON API, OpenAPI schema at /openapi.json, playground at /)"),
}


def verb_module(verb: str):
    """The module that parses and runs ``verb`` (imported on first use)."""
    return import_module(f".{VERBS[verb][0]}", __name__)


class Parser(argparse.ArgumentParser):
    """argparse's parser, with its errors on one line: ``rnnkit sample: error: argument --top-p: ...``
    (argparse would print the whole usage first; ``--help`` still shows it). Subcommands' parsers
    are of the same class."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # "--epoch 1" was taken as --epochs: a typo must not pass for an option
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}{self._suggestion(message)} (see {self.prog} --help)\n")

    def _print_message(self, message: str, file=None) -> None:
        """argparse's, without hiding a failed write: ``--help > /dev/full`` printed nothing and exited 0."""
        if message:
            try:
                (file or sys.stderr).write(message)
                if file is sys.stdout:  # --help, --version: written now, while a failure can still be said
                    file.flush()
            except BrokenPipeError:  # the reader went away (--help | head -1): quiet, as Unix tools are
                _standard_output_discarded()
                super().exit(0)
            except OSError as error:
                _standard_output_discarded()
                super().exit(2, f"{self.prog}: error: standard output: {(error.strerror or str(error)).lower()}\n")

    def _suggestion(self, message: str) -> str:
        """"; did you mean --hidden-size?" for an unknown option or choice close to a known one."""
        import difflib

        found = re.search(r"unrecognized arguments: (\S+)|invalid choice: '([^']+)'", message)
        if not found:
            return ""
        typed = (found.group(1) or found.group(2)).split("=")[0]
        if found.group(1) and not typed.startswith("-"):  # a stray word: the option it was meant for cannot be told
            return ""
        known = [str(k) for action in self._actions for k in (action.option_strings if typed.startswith("-") else action.choices or ())]
        if found.group(1) and typed in known:  # the option exactly, read as a word: it came after "--", which ends the options
            return f"; {typed} came after '--', which ends the options: give the options before it"
        close = difflib.get_close_matches(typed, known, n=1, cutoff=0.75)
        return f"; did you mean {close[0]}?" if close else ""


def build_parser(verb: str | None = "*") -> argparse.ArgumentParser:
    """The parser of ``rnnkit``: ``verb``'s own parser (every verb's with ``"*"``), the other verbs
    as their names and help lines (all of them with ``None``: what ``rnnkit --help`` needs)."""
    parser = Parser(
        prog="rnnkit",
        description="Recurrent sequence models (RNN, GRU, LSTM) from their equations, fast and tested.",
    )
    parser.add_argument("--version", action=Versions, help="print the versions of rnnkit, torch and Python, and exit")
    subparsers = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for module in dict.fromkeys(module for name, (module, _) in VERBS.items() if verb in (name, "*")):
        import_module(f".{module}", __name__).add_parser(subparsers)  # a module may add several verbs
    for name, (_, summary) in VERBS.items():
        if name not in subparsers.choices:  # a name and its line in `rnnkit --help`: all a call of another verb needs
            subparsers.add_parser(name, help=summary, add_help=False)
    return parser


class Versions(argparse.Action):
    """``--version``: rnnkit's, torch's and Python's versions, read from the installed packages'
    metadata (importing torch would take seconds)."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        import platform
        from importlib.metadata import PackageNotFoundError, version

        from .. import __version__

        try:
            torch = version("torch")
        except PackageNotFoundError:
            torch = "not installed"
        parser._print_message(f"rnnkit {__version__} (torch {torch}, Python {platform.python_version()})\n", sys.stdout)  # a failed write said
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if sys.stderr is None:  # closed (2>&-): Python gives None, and tqdm's bar and every message would fail on it
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (for the whole process)
    # the verb is the first word: the main parser's own options (--help, --version) exit
    parser = build_parser(argv[0] if argv and not argv[0].startswith("-") else None)
    # argparse cannot take positional text after an option (tag RUN --json "text"); collect it here
    try:
        args, extra = parser.parse_known_args(argv)
    except KeyboardInterrupt as stop:  # one held back while an output folder was tried (_options._writable_folder_above)
        return _stopped(" ".join(["rnnkit", *argv[:1]]), stop)
    if extra:
        # "--" ends the options wherever it stands (argparse leaves it, and the words after it, in extra);
        # a word with a space is text, as argparse reads it ("-LRB- ( ) -RRB-")
        ended = extra.index("--") if "--" in extra else len(extra)
        options, words = extra[:ended], extra[ended + 1 :]
        if isinstance(getattr(args, "text", None), list) and not any(e.startswith("-") and e != "-" and " " not in e for e in options):
            args.text += options + words
        else:
            name = command_name(args) if args.verb else "rnnkit"  # the command's own name, as its other errors say
            suggestion = command_parser(parser, args)._suggestion(f"unrecognized arguments: {' '.join(extra)}")  # its own options only
            parser.exit(2, f"{name}: error: unrecognized arguments: {' '.join(extra)}{suggestion} (see {name} --help)\n")
    if args.verb is None:
        parser.print_help()
        return 0
    try:
        with interrupts_deferred():  # an interrupt inside numpy's or torch's import left them half-imported
            verb = verb_module(args.verb)
            import numpy  # noqa: F401
            import torch  # noqa: F401
        with terminate_as_interrupt(), NamedStandardOutput.installed():
            code = verb.run(args) or 0
            if sys.stdout is not None:  # closed (>&-): Python gives None, and the work is done
                sys.stdout.flush()  # here, so that a reader gone away (| head) is seen inside this try
        return code
    except BrokenPipeError:
        # the reader of our output closed it (rnnkit ... | head -1): stop quietly, as Unix tools do
        _standard_output_discarded()
        return 0
    except USER_ERRORS as error:  # the user's mistake: one line; anything else is a bug and keeps its traceback
        if isinstance(error, OSError) and error.filename == NamedStandardOutput.NAME:  # > /dev/full
            _standard_output_discarded()
        print(f"{command_name(args)}: error: {user_message(error)}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError, ImportError) as error:  # an allocation past what the process may have (ulimit -v, a container): one line
        if _peer_stopped(error):  # under torchrun: the process that stopped has said why, in its own line
            print(f"{command_name(args)}: error: another process of this torchrun job stopped (its own message says why), so this one stops too",
                  file=sys.stderr)  # fmt: skip
            return 2
        if not _out_of_memory(error):
            raise  # a bug: its traceback
        what = str(error).strip().splitlines()[-1][:160] if str(error).strip() else "an allocation failed"
        print(f"{command_name(args)}: error: out of memory ({what}); give the process more memory (ulimit -v, the container's limit) "
              "or a smaller input, model or batch", file=sys.stderr)  # fmt: skip
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM as Terminated
        return _stopped(command_name(args), stop)


class NamedStandardOutput:
    """``sys.stdout`` while a verb runs: the same stream, whose failed writes name it. A write that fails
    (``> /dev/full``, a full disk or quota under a redirect) raises an ``OSError`` naming no file, and the
    command's one line said "[Errno 28] No space left on device" without saying where."""

    NAME = "standard output"

    def __init__(self, stream) -> None:
        self._stream = stream

    def __getattr__(self, name: str):
        return getattr(self._stream, name)  # fileno, isatty, encoding, buffer: the stream's own

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as error:
            raise self.named(error) from None
        except UnicodeEncodeError as error:  # PYTHONIOENCODING=ascii, a cp1252 console: a traceback, where this is the user's setting
            raise UsageError(f"{self.NAME}: its encoding ({error.encoding}) cannot write {error.object[error.start:error.end]!r}; "
                             "set PYTHONIOENCODING=utf-8 (or PYTHONIOENCODING=ascii:backslashreplace)") from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as error:
            raise self.named(error) from None

    @staticmethod
    def named(error: OSError) -> OSError:
        """``error`` naming standard output; of the same class (``OSError(errno, ...)`` picks it:
        ``BrokenPipeError`` stays one)."""
        return error if error.filename is not None or error.errno is None else OSError(error.errno, error.strerror, NamedStandardOutput.NAME)

    @classmethod
    @contextlib.contextmanager
    def installed(cls):
        """``sys.stdout`` named for the block (and the stream it was after it: tests capture it)."""
        stream = sys.stdout
        if stream is not None:  # closed (>&-): Python gives None
            sys.stdout = cls(stream)
        try:
            yield
        finally:
            sys.stdout = stream


def _standard_output_discarded() -> None:
    """Standard output to /dev/null, once writing to it has failed, so that the interpreter's own flush
    of what is still buffered does not fail again at exit ("Exception ignored ...", exit status 120)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (captured in tests), or closed
        pass


def _stopped(name: str, stop: KeyboardInterrupt) -> int:
    """The line and exit status of a command ended by Ctrl-C or (``Terminated``) SIGTERM."""
    if isinstance(stop, Terminated):
        print(f"{name}: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    print(f"{name}: interrupted", file=sys.stderr)
    return 130


def _peer_stopped(error: BaseException) -> bool:
    """Whether ``error`` is a collective (gloo's or NCCL's) that failed because another process of a
    torchrun job is gone: killed, or stopped by its own error, which it has printed."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized() or dist.get_world_size() < 2:
        return False
    text = str(error)
    return isinstance(error, getattr(dist, "DistError", ())) or any(word in text for word in ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "gloo", "NCCL"))


def _out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation that failed: Python's and numpy's MemoryError, torch's
    OutOfMemoryError, its CPU allocator's RuntimeError ("DefaultCPUAllocator: can't allocate memory"),
    or a library that could not be mapped into memory (torch's import under a tight ulimit -v)."""
    text = str(error).lower()
    if isinstance(error, ImportError):
        return "failed to map segment" in text or "cannot allocate memory" in text
    if isinstance(error, MemoryError):
        return True
    torch = sys.modules.get("torch")  # not imported: its import is what failed
    return (torch is not None and isinstance(error, getattr(torch, "OutOfMemoryError", MemoryError))) or "can't allocate memory" in text


def entry() -> int:
    """The ``rnnkit`` command (``python -m rnnkit.cli`` too): ``main``, and then no more Ctrl-C or
    SIGTERM. A second Ctrl-C while the first was being answered (the run saving itself, the
    "interrupted" line) or one during the interpreter's shutdown printed tracebacks of torch's exit
    handlers, or ended the process by the signal with no word; the command has done its work by then."""
    try:
        code = main()
    except KeyboardInterrupt:  # a second interrupt inside main's own handling of the first
        print("rnnkit: interrupted", file=sys.stderr)
        code = 130
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)
    return code


def command_parser(parser: argparse.ArgumentParser, args) -> argparse.ArgumentParser:
    """The parser of the command ``args`` ran (``rnnkit train lm``'s), down from ``parser``."""
    for name in (args.verb, getattr(args, "task", None) if args.verb == "train" else None):
        sub = next((action for action in parser._actions if isinstance(action, argparse._SubParsersAction)), None)
        if sub is None or not isinstance(name, str) or name not in sub.choices:
            break
        parser = sub.choices[name]
    return parser


def command_name(args) -> str:
    """``rnnkit VERB`` (``rnnkit train TASK``), as argparse names the command in its own errors."""
    task = getattr(args, "task", None) if args.verb == "train" else None
    return f"rnnkit {args.verb}" + (f" {task}" if isinstance(task, str) else "")


def user_message(error: BaseException) -> str:
    """One line for a user error. An ``OSError`` raised by the system reads ``[Errno 2] No such file
    or directory: 'x'``: shown as ``x: no such file or directory``."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        target = f"{error.filename} -> {error.filename2}" if error.filename2 is not None else str(error.filename)
        message = f"{target}: {error.strerror[0].lower()}{error.strerror[1:]}"
    else:
        message = str(error) or type(error).__name__
    return " ".join(message.split("\n"))
