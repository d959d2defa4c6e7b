"""Ctrl-C and SIGTERM, taken once for every command: SIGTERM (what SLURM pre-emption, ``docker stop``
and systemd send) is raised as ``Terminated``, a KeyboardInterrupt, so that a run being trained saves
itself as on Ctrl-C; and both are held back across the moments an interrupt would leave something
half-done (an import of numpy or torch, a checkpoint being committed), then raised.

Signal handlers can only be set from the main thread: elsewhere both context managers do nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from .errors import Terminated


@contextlib.contextmanager
def interrupts_deferred():
    """Ctrl-C and SIGTERM held back until the block ends, then raised, so the block is done whole. A
    KeyboardInterrupt inside an import leaves numpy or torch half-initialised (tracebacks about
    missing attributes later, or the interrupt swallowed by a library's import fallback and the run
    going on); inside a checkpoint's commit, it came after the rename but before the trainer knew,
    which then wrote the same step's checkpoint again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {number: signal.signal(number, lambda received, frame: caught.append(received)) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    caught = [number for number in caught if previous[number] is not signal.SIG_IGN]  # ignored before (nohup): ignored still
    if caught:
        raise Terminated() if caught[0] == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM raises ``Terminated`` (a KeyboardInterrupt) for the block: training saves a checkpoint
    as on Ctrl-C instead of losing the work since the last one. (``serve`` installs its own.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(received, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
