"""``rnnkit serve RUN [RUN ...]``: an HTTP API and a browser playground for trained runs.

Loads every RUN once and answers POST /api/generate, score, tag, classify, translate and compose
(each request names its 'model'), GET /api/models and /api/health, and the playground page at /.
Requests for the same model arriving within --window-ms run as one batch. Binds to 127.0.0.1 unless
--host says otherwise.
"""

from __future__ import annotations

from ._options import batch_window_ms, port, positive_int
from ._run_options import run_parser


def add_parser(subparsers) -> None:
    parser = run_parser(subparsers, "serve", many=True, description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=port, default=8000, help="TCP port to listen on, 1 to 65535 (default 8000)")
    parser.add_argument("--no-batching", action="store_true", help="run every request alone (for comparison)")
    parser.add_argument("--window-ms", type=batch_window_ms, default=5.0, help="how long a batch waits for more requests, 0 to 10000 (default 5)")
    parser.add_argument("--max-batch", type=positive_int, default=32, help="requests per batch at most (default 32)")
    parser.add_argument("--max-queue", type=positive_int, default=256, help="requests waiting per model and verb before 503 (default 256)")
    parser.add_argument("--threads", type=positive_int, help="torch's threads for inference (default: torch's own; 1 is often faster on a busy small machine)")


def run(args) -> int:
    from ..serve import create_app

    if args.threads is not None:  # the numeric options were checked where they were parsed (_options)
        import torch

        torch.set_num_threads(args.threads)
    app = create_app(args.runs, device=args.device, weights=args.weights, batching=not args.no_batching,
                     window_ms=args.window_ms, max_batch=args.max_batch, max_queue=args.max_queue)  # fmt: skip
    import uvicorn

    listening = _bound_socket(args.host, args.port)  # before the banner: a port in use is one line, not a claim then a failure
    names = ", ".join(f"{s.name} ({s.kind})" for s in app.state.served.values())
    print(f"rnnkit serve: {names} at http://{args.host}:{args.port}/ (API schema at /openapi.json)", flush=True)
    # keep idle connections open for a minute: a client reusing one the server has just closed sees an error
    config = uvicorn.Config(app, log_level="warning", timeout_keep_alive=60)
    uvicorn.Server(config).run(sockets=[listening])
    return 0


def _bound_socket(host: str, port: int):
    """A TCP socket bound to ``host:port`` (uvicorn listens on it), or UsageError naming the option
    when the address is taken or not this machine's."""
    import socket

    from ..errors import UsageError

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listening = socket.socket(family, socket.SOCK_STREAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's own: a restart need not wait out TIME_WAIT
        listening.bind((host, port))
    except OSError as error:
        raise UsageError(f"--host {host} --port {port}: cannot listen there: {error.strerror or error}") from None
    return listening
