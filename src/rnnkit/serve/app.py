"""The FastAPI application: runs loaded once at start, one JSON endpoint per verb, the playground.

=======================  =======================================================================
``GET /``                the playground page (static files under ``/static``; no CDN)
``GET /api/health``      ``{"status": "ok", ...}``
``GET /api/models``      each run: name, task, model configuration, metrics, the verbs it answers
``POST /api/{verb}``     ``generate``, ``score``, ``tag``, ``classify``, ``translate``, ``compose``
``GET /openapi.json``    the OpenAPI schema (FastAPI builds it; its browsable /docs page is off: it
                         loads its scripts from a CDN, and nothing here may need the internet)
=======================  =======================================================================

Status codes: 400 when the request is well formed but the model cannot take it (no words to tag, a
verb the model does not answer), 404 for an unknown model, 413 for a body over 1 MiB, 422 when the
request breaks its schema (the message names the field), 503 when the model's queue is full, 500 with
a short message (never a traceback) when something inside failed; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..data.textio import no_key_twice
from ..errors import UsageError
from ..files import RunDir, json_safe
from . import schemas
from .batching import MicroBatcher, QueueFull
from .verbs import ALL_VERBS, VERBS_BY_TASK, Served

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("rnnkit.serve")


class ClientError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def load_runs(paths: list[str], device: str = "auto", weights: str = "best") -> dict[str, Served]:
    """Open every run once; a model's name is its run directory's name, which a request gives. A run
    given twice, or two runs of one name (``runs/cls``, ``other/cls``), is a ``UsageError``: a
    renamed one (``cls-2``) could be taken for a run whose directory has that name."""
    from ..runs import open_run

    served: dict[str, Served] = {}
    for path in paths:
        name = Path(path).resolve().name
        if name in served:
            first = served[name].path
            if Path(first).resolve() == Path(path).resolve():
                raise UsageError(f"{path}: given twice (as {first}); give each run once")
            raise UsageError(f"{first} and {path}: both are named {name!r}, and a request names its model by the run directory's name; "
                             "serve one of them, or rename a directory")  # fmt: skip
        task, model, config, torch_device = open_run(path, weights, device)
        task.detach_from_files()  # served for hours: nothing of the run's files mapped
        if config["task"] not in VERBS_BY_TASK:
            raise UsageError(f"{path}: a {config['task']} run; rnnkit serve answers runs of: {', '.join(VERBS_BY_TASK)}")
        run = RunDir(path)  # its summary read as every verb reads it; NaN (a hand edit) as null: strict JSON answers
        metrics = json_safe(run.read_json("summary.json")) if run.file("summary.json").exists() else {}
        served[name] = Served(name, str(path), task, model, config, torch_device, metrics)
    if not served:
        raise UsageError("rnnkit serve needs at least one run")
    return served


def _field(loc) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


def _validation_message(errors) -> str:
    parts = [f"{_field(e.get('loc', ()))}: {str(e.get('msg', 'invalid')).removeprefix('Value error, ')}" for e in errors[:5]]  # our own checks' words, bare
    return "; ".join(parts) + (f" (and {len(errors) - 5} more)" if len(errors) > 5 else "")


def create_app(runs: list[str] | dict[str, Served], *, device: str = "auto", weights: str = "best", batching: bool = True,
               window_ms: float = 5.0, max_batch: int = 32, max_queue: int = 256) -> FastAPI:  # fmt: skip
    """The server's application. ``runs``: run directories (loaded now) or already loaded runs.
    ``batching=False`` runs every request alone (for comparison); both go through a bounded queue."""
    served = runs if isinstance(runs, dict) else load_runs(runs, device, weights)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-inference")  # one model call at a time

    def guarded(verb):
        def run(server, items):
            with torch.no_grad():  # not inference_mode: the fused engine pools buffers by their view base
                return verb.run(server, items)

        return run

    batchers: dict[tuple[str, str], MicroBatcher] = {}
    for name, server in served.items():
        for verb in VERBS_BY_TASK[server.kind]:
            size, window = (max_batch, window_ms) if batching and verb.batched else (1, 0.0)
            run = guarded(verb)
            batchers[name, verb.name] = MicroBatcher(lambda items, run=run, server=server: run(server, items), executor,
                                                     max_batch=size, window_ms=window, max_queue=max_queue)  # fmt: skip

    @asynccontextmanager
    async def lifespan(app):
        for batcher in batchers.values():
            batcher.start()
        yield
        for batcher in batchers.values():
            await batcher.stop()
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="rnnkit", description="Trained rnnkit runs behind one HTTP API, with a playground at /.", lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # their pages load scripts from a CDN
    app.state.served, app.state.batchers, app.state.batching = served, batchers, batching

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        return JSONResponse({"error": _validation_message(error.errors())}, status_code=422)

    @app.exception_handler(ClientError)
    async def client_error(request: Request, error: ClientError):
        return JSONResponse({"error": str(error)}, status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):  # 404 unknown path, 405 wrong method: the same body
        return JSONResponse({"error": f"{error.detail}: {request.method} {request.url.path}"}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception):
        log.error("internal error on %s: %s", request.url.path, "".join(traceback.format_exception(error)))
        return JSONResponse({"error": f"internal error ({type(error).__name__}); the server keeps serving"}, status_code=500)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > schemas.MAX_BODY):
            return JSONResponse({"error": f"request body over {schemas.MAX_BODY} bytes"}, status_code=413)
        return await call_next(request)

    @app.get("/", include_in_schema=False)
    async def playground():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health")
    async def health():
        batches = {f"{name}/{verb}": {"batches": b.batches, "requests": b.items, "inference_cpu_s": round(b.cpu_seconds, 3)} for (name, verb), b in batchers.items() if b.items}
        return {"status": "ok", "models": len(served), "batching": batching, "batches": batches}

    @app.get("/api/models")
    async def models():
        return {
            "models": [
                {
                    "name": s.name, "task": s.kind, "model": s.config["model"], "data": s.config.get("data", {}),
                    "metrics": s.metrics, "verbs": {v.name: v.summary for v in VERBS_BY_TASK[s.kind]},
                    "labels": getattr(s.task, "labels", None), "tags": getattr(s.task, "tags", None),
                }  # fmt: skip
                for s in served.values()
            ]
        }

    def pick(verb_name: str, requested: str | None) -> Served:
        if requested is not None:
            if requested not in served:
                raise ClientError(404, f"no model named {requested!r}; loaded: {', '.join(served)}")
            server = served[requested]
            if verb_name not in {v.name for v in VERBS_BY_TASK[server.kind]}:
                answers = ", ".join(v.name for v in VERBS_BY_TASK[server.kind])
                raise ClientError(400, f"model {requested!r} is a {server.kind} run: it answers {answers}, not {verb_name}")
            return server
        candidates = [s for s in served.values() if verb_name in {v.name for v in VERBS_BY_TASK[s.kind]}]
        if not candidates:  # naming a model cannot help: none of those loaded answers it
            loaded = ", ".join(f"{s.name} ({s.kind})" for s in served.values())
            raise ClientError(404, f"no model loaded answers {verb_name}; loaded: {loaded}")
        if len(candidates) != 1:
            raise ClientError(400, f"name the 'model' for {verb_name} (models answering it: {', '.join(s.name for s in candidates)})")
        return candidates[0]

    def endpoint(verb):
        async def handle(request: Request):
            raw = await _body_within_limit(request)
            try:
                body = json.loads(raw, object_pairs_hook=no_key_twice)  # {"text": "good", "text": "bad"}: which one was meant?
            except Exception as error:  # noqa: BLE001 (not JSON at all; 422 as FastAPI's own bodies)
                where = f" ({error})" if isinstance(error, ValueError) else ""
                if "integer string conversion" in where:  # Python's own limit, worded for its programmers
                    where = " (a number of more than 4,300 digits)"
                raise ClientError(422, f"the request body is not valid JSON{where}; send a JSON object") from None
            try:
                parsed = verb.schema.model_validate(body)
            except ValidationError as error:
                raise ClientError(422, _validation_message(error.errors())) from None
            server = pick(verb.name, parsed.model)
            try:
                verb.check(server, parsed)
                result = await batchers[server.name, verb.name].submit(parsed)
            except QueueFull as error:
                raise ClientError(503, str(error)) from None
            except ValueError as error:  # the tasks' own one-line errors: about this input
                raise ClientError(400, str(error)) from None
            except Exception as error:  # noqa: BLE001 (a bug inside: a short 500 here, the traceback in the log)
                log.error("internal error on /api/%s: %s", verb.name, "".join(traceback.format_exception(error)))
                return JSONResponse({"error": f"internal error ({type(error).__name__}); the server keeps serving"}, status_code=500)
            # encoded on another thread: a large reply (64 translations with their attention) encoded on
            # the event loop held every other request, /api/health too, until it was done
            return await asyncio.get_running_loop().run_in_executor(None, _json_reply, {"model": server.name, **result})

        handle.__name__ = verb.name
        return handle

    for verb in ALL_VERBS.values():
        app.add_api_route(
            f"/api/{verb.name}", endpoint(verb), methods=["POST"], summary=verb.summary,
            openapi_extra={"requestBody": {"content": {"application/json": {"schema": verb.schema.model_json_schema()}}, "required": True}},
        )  # fmt: skip
    return app


def _json_reply(payload: dict) -> Response:
    """``payload`` as strict JSON, by the json module's C encoder: FastAPI's ``jsonable_encoder``
    walks every number in Python, and holding the interpreter lock through 40 MB of attention
    weights it kept /api/health waiting for seconds even off the event loop. A value the encoder
    does not know (none of the verbs' replies holds one) goes through ``jsonable_encoder``."""
    try:
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except TypeError:
        return JSONResponse(jsonable_encoder(payload))
    return Response(body.encode("utf-8"), media_type="application/json")


async def _body_within_limit(request: Request) -> bytes:
    """The request body, read as it arrives: a body over ``MAX_BODY`` is a 413 whether or not its
    length was announced (a chunked upload has no Content-Length for the middleware to check)."""
    from starlette.requests import ClientDisconnect

    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > schemas.MAX_BODY:
                raise ClientError(413, f"request body over {schemas.MAX_BODY} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # the client went away mid-body: its business, not an internal error with two tracebacks
        log.info("a client closed its connection before its request body to %s ended", request.url.path)
        raise ClientError(400, "the connection closed before the request body ended") from None
    return b"".join(chunks)
