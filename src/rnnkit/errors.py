"""The exceptions that mean "the user asked for something wrong", as opposed to a bug in rnnkit.

The command line prints these as one line, ``rnnkit VERB: error: MESSAGE``, and exits with status 2;
any other exception is a bug and keeps its traceback (that is the bug report). So a message raised
with one of these types must already be that line: it names the file (and line) or the option at
fault and says what is wrong, never a bare key or a builtin's complaint.

* ``DataError``: the user's data: ``FILE:LINE: what is wrong``.
* ``UsageError``: a request that cannot be met: an option or setting out of range or unknown, a run
  of the wrong kind for the verb, an optional library that is not installed.
* ``OSError``: the operating system's refusals (a file that cannot be written, a full disk).

Both project types derive from ``ValueError``, so library callers that catch ``ValueError`` still do.
"""

from __future__ import annotations


class DataError(ValueError):
    """A problem with the user's data: the message is one line naming the file (and line) at fault,
    e.g. ``train.tsv:3: expected 'label<TAB>text', found no tab``."""


class UsageError(ValueError):
    """A request that cannot be met, e.g. ``--top-p must lie in (0, 1], got 0`` or
    ``runs/x: a tagger run; rnnkit sample takes a language-model (lm) run``."""


class MissingDependencyError(UsageError):
    """An optional library a request needs is not installed (``require``): the message says which and
    how to install it; no setting or file is at fault."""


class UnexpectedArgumentError(UsageError, TypeError):
    """A setting the callee does not take (e.g. ``peepholes`` for a GRU cell): a ``UsageError`` for
    the command line, and still the ``TypeError`` Python raises for an unexpected keyword argument."""


def finite_outputs(logits):
    """``logits`` (a model's outputs, a tensor), or the one-line ``DataError`` when any is NaN or +inf:
    finite weights can still overflow (a run that ``--skip-non-finite`` let grow), and a sampler, a
    softmax or a log-probability would otherwise fail deep inside torch or print NaN."""
    if bool((logits.isnan() | (logits == float("inf"))).any()):  # -inf is a masked token's logit: probability 0, not overflow
        raise DataError("the model's outputs are not finite: its weights are finite but overflow (the training that wrote them diverged)")
    return logits


class Terminated(KeyboardInterrupt):
    """SIGTERM (what SLURM, ``docker stop``, systemd and ``kill`` send to stop a job): taken as Ctrl-C
    is, so that a run being trained saves a checkpoint before it exits (with status 143)."""


USER_ERRORS = (DataError, UsageError, OSError)


def require(module: str, *, extra: str, purpose: str):
    """The optional library ``module`` (a dotted name: ``"babel.dates"``), imported when first
    needed; when it is not installed, the one-line ``UsageError`` that says what needs it and how to
    get it, e.g. ``require("onnx", extra="export", purpose="export writes ONNX")`` ->
    ``export writes ONNX with onnx, which is not installed: pip install 'rnnkit[export]'``."""
    from importlib import import_module

    try:
        return import_module(module)
    except ImportError:
        raise MissingDependencyError(f"{purpose} with {module.split('.')[0]}, which is not installed: pip install 'rnnkit[{extra}]'") from None


def registered(registry, name, what: str, choices=None):
    """``registry[name]`` (a registry of kinds: cells, engines, models, poolings, ...), or the one-line
    ``UsageError`` ``unknown WHAT 'NAME'; choose one of: ...`` listing ``choices`` (default: the
    registry's names), e.g. ``registered(CELLS, "gur", "cell")``."""
    try:
        return registry[name]
    except KeyError:
        raise UsageError(f"unknown {what} {name!r}; choose one of: {', '.join(registry if choices is None else choices)}") from None


__all__ = ["USER_ERRORS", "DataError", "Terminated", "finite_outputs", "UnexpectedArgumentError", "UsageError", "registered", "require"]
