"""``rnnkit serve``: trained runs of any kind behind one HTTP API, with a browser playground.

* ``app``: the FastAPI application (endpoints, status codes, the playground's static files);
* ``verbs``: what each kind of run answers, calling the tasks' own inference;
* ``batching``: requests arriving within a few milliseconds run as one batch, behind a bounded queue;
* ``schemas``: the requests, validated with pydantic.

Needs ``pip install 'rnnkit[serve]'`` (FastAPI, uvicorn).
"""

from __future__ import annotations


def create_app(*args, **kwargs):
    """See ``rnnkit.serve.app.create_app``."""
    try:
        from .app import create_app as create
    except ImportError as error:
        from ..errors import UsageError

        raise UsageError(f"rnnkit serve needs FastAPI and uvicorn: pip install 'rnnkit[serve]' ({error})") from None
    return create(*args, **kwargs)


__all__ = ["create_app"]
