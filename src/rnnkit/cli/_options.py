"""Option types for argparse, one place for every verb: the range-checked numeric types
(``positive_float``, ``probability``, ... : ``--temperature nan`` gets a one-line error naming the
option) live in ``rnnkit.settings`` beside the settings that use them and are re-exported here;
``device`` checks a device name against this machine; ``add_settings`` makes the options of
dataclass fields declared with ``rnnkit.settings.setting``.
"""

from __future__ import annotations

import argparse

from ..settings import (  # noqa: F401  (the types live with the settings that use them; verbs import them from here)
    batch_window_ms, beam_width, decay, device, finite_float, list_of_ints, midi_program, nonempty_text, nonnegative_float, nonnegative_int, number, port,
    piece_count, piece_length, positive_float, positive_int, probability, sample_count, sample_length, seed, step_seconds, top_p_float,
)


def output_file(text: str) -> str:
    """A file to write (``--out``, ``--wav``): checked where it is parsed, so that a folder on its
    way that is a file is one line before any work ("x.png: afile is a file, not a folder"), not an
    OS error after minutes of training. Missing folders are made when the file is written."""
    from pathlib import Path

    path = Path(text)
    if not text or path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a file name, got {text!r}" + (" (a folder)" if text else ""))
    _writable_folder_above(text, path)
    return text


def output_folder(text: str) -> str:
    """A folder to write (``prepare --out``), which rnnkit writes beside itself and renames into
    place: the folder it lies in tried before any work, as ``output_file``'s; a link to a folder is
    written through (a loop of links refused)."""
    import os
    from pathlib import Path

    path = Path(text)
    if not text:
        raise argparse.ArgumentTypeError("expected a folder name, got ''")
    if path.is_symlink():
        try:
            path = path.resolve(strict=True)
        except FileNotFoundError:  # a dangling link: its target is made
            path = Path(os.path.realpath(text))
        except (RuntimeError, OSError):  # Python reports a loop as either
            raise argparse.ArgumentTypeError(f"{text}: a loop of symbolic links") from None
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: a file, not a folder")
    _writable_folder_above(text, path)
    return text


def _writable_folder_above(text: str, path) -> None:
    """The nearest existing folder above ``path`` must take a new file: a file on the way, a
    read-only folder, /proc or a full disk refused in one line naming ``text``, before any work."""
    import os
    import tempfile

    from ..signals import interrupts_deferred

    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):  # a read-only folder or mount: said before the work, not after
                raise argparse.ArgumentTypeError(f"{text}: cannot write in {parent} (read-only, or not yours)")
            # and tried, with a byte: root passes os.access everywhere, yet /proc, a read-only mount, a full disk refuse it.
            # Ctrl-C and SIGTERM are held back till the probe is gone, then raised (rnnkit.cli.main ends on them): options
            # are read before any handler is set, and a SIGTERM there killed the process with the probe in the user's folder
            try:
                with interrupts_deferred():
                    handle, probe = tempfile.mkstemp(dir=parent, prefix=".rnnkit-probe-")
                    try:
                        os.write(handle, b"\0")
                        os.fsync(handle)
                    finally:
                        os.close(handle)
                        os.unlink(probe)
            except OSError as error:
                raise argparse.ArgumentTypeError(f"{text}: cannot write in {parent} ({error.strerror or type(error).__name__})") from None
            return


def _file_of(text: str, what: str, suffixes: tuple[str, ...], bare: bool = False) -> str:
    """A file of one format to write: ``output_file``'s checks, and a name ending in one of its
    ``suffixes`` (``bare``: or in none, the first then added), since rnnkit writes that format (a
    ``.txt`` name got PNG bytes, ``--wav song.mid`` overwrote the MIDI), with a name before it."""
    output_file(text)
    from pathlib import Path

    if not text.lower().endswith(suffixes) and not (bare and not Path(text).suffix):
        raise argparse.ArgumentTypeError(f"{text}: {what}; give a name ending in {' or '.join(suffixes)}")
    if Path(text).name.lower() in suffixes:  # --wav .wav wrote a hidden .wav.wav
        raise argparse.ArgumentTypeError(f"{text}: give a name before {Path(text).name}, as song{suffixes[0]}")
    return text


def png_file(text: str) -> str:
    """A picture to write (``--plot``, an experiment's ``--out``)."""
    return _file_of(text, "a picture is written as PNG", (".png",))


def midi_file(text: str) -> str:
    """Music to write (``compose --out``; a name without a suffix gets ``.mid``)."""
    return _file_of(text, "music is written as MIDI", (".mid", ".midi"), bare=True)


def html_file(text: str) -> str:
    """A page to write (``inspect --out``)."""
    return _file_of(text, "the report is a web page", (".html", ".htm"))


def plot_file(text: str) -> str:
    """A picture asked for by ``--plot``: ``png_file``, and matplotlib installed (it is an extra):
    refused before any work, never skipped with nothing written (or said to be)."""
    png_file(text)
    try:  # imported, not only looked for: a matplotlib that fails to import draws nothing either
        import matplotlib  # noqa: F401
    except ImportError:
        raise argparse.ArgumentTypeError(f"{text}: pictures are drawn with matplotlib, which is not installed: pip install 'rnnkit[plot]'") from None
    return text


def wav_file(text: str) -> str:
    """Audio to write (``compose --wav``)."""
    return _file_of(text, "audio is written as WAV", (".wav",))


def add_quick(parser: argparse.ArgumentParser, what: str) -> None:
    """``--quick``, the same on every verb that shows something at length (demo, tour): ``what``
    it cuts, so that a test runs the whole verb in seconds."""
    parser.add_argument("--quick", action="store_true", help=f"{what}, seconds in all (for tests)")


def add_settings(group, settings, skip=()) -> None:
    """An option for each ``(name, default, metadata, annotation)`` of ``settings``
    (``rnnkit.settings.settings_of``), except the names in ``skip`` and those marked ``cli=False``.

    ``--name`` (``metadata["flag"]`` to rename it), parsed by ``metadata["type"]`` or else by the
    default's type; choices from ``metadata["choices"]``, ``metavar`` from ``metadata["metavar"]``
    (either called when it is a function, to read a registry); help from ``metadata["help"]`` with the default appended, so a default is written
    once, in the code. A boolean gets two flags, ``--name`` and ``--no-name`` (``off_flag``), the
    default one marked. Every option's own default is None: only what the user gave is a setting.
    """
    for name, default, meta, annotation in settings:
        if name in skip or not meta.get("cli", True):
            continue
        flag = meta.get("flag") or "--" + name.replace("_", "-")
        help = meta.get("help", "").replace("%", "%%")
        if isinstance(default, bool) or meta.get("type") is bool:
            off = meta.get("off_flag") or "--no-" + name.replace("_", "-")
            off_help = (meta.get("off_help") or f"the opposite of {flag}").replace("%", "%%")
            group.add_argument(flag, dest=name, action="store_true", default=None, help=help + (" (default)" if default else ""))
            group.add_argument(off, dest=name, action="store_false", default=None, help=off_help + ("" if default else " (default)"))
            continue
        choices, metavar = (value() if callable(value) else value for value in (meta.get("choices"), meta.get("metavar")))
        shown = _shown(default, meta.get("nargs"))
        group.add_argument(
            flag, dest=name, type=meta.get("type") or _parser_for(default, annotation), choices=choices,
            nargs=meta.get("nargs"), metavar=metavar, default=None,
            help=f"{help} (default: {shown})".lstrip() if shown is not None else help,
        )


def _parser_for(default, annotation: str):
    """An option's type from its default, or from the field's annotation when the default is None;
    text (a file, a run, a column) must not be empty."""
    kind = type(default) if default is not None else next((k for k in (int, float, str) if k.__name__ in annotation), None)
    return {int: int, float: finite_float, str: nonempty_text}.get(kind)


def _shown(default, nargs) -> str | None:
    """A default as the command line writes it (None: nothing to show)."""
    if default is None:
        return None
    if isinstance(default, (list, tuple)):
        return (" " if nargs else ",").join(map(str, default)) if default else "none"
    return f"{default:g}" if isinstance(default, float) else str(default)
