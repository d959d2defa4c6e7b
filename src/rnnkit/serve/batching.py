"""Micro-batching: requests for the same model and verb that arrive within a few milliseconds of each
other run as one batch, off the event loop, behind a bounded queue.

::

    requests ──> asyncio.Queue (bounded: full -> 503) ──> worker: the first request, then all that
                                                          arrive within window_ms (at most max_batch)
                                                          ──> run(items) once, in the worker thread

A padded batch costs little more than its longest sentence (the time steps are the same; only the
matrices grow): the CoNLL tagger takes 2.0 ms of CPU per sentence in a batch of 32 against 16.3 ms
alone, and the server's tag throughput at 32 clients is 3.8 times the unbatched (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor


class QueueFull(Exception):
    """The model's queue is full: the client should retry later (HTTP 503)."""


class MicroBatcher:
    """Collects items for ``run(items) -> results`` (one result per item, in order; a result that is
    an Exception is raised to that item's caller alone). With ``max_batch=1`` and ``window_ms=0`` every
    request runs alone, through the same bounded queue: the unbatched server."""

    def __init__(self, run: Callable[[list], list], executor: Executor, *, max_batch: int = 32, window_ms: float = 5.0, max_queue: int = 256):
        self.run, self.executor = run, executor
        self.max_batch, self.window, self.max_queue = max_batch, window_ms / 1000.0, max_queue
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None
        self.batches = self.items = 0  # counters, for /api/health and the benchmark
        self.cpu_seconds = 0.0  # CPU time of the worker thread inside ``run``

    def start(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.max_queue)
        self.worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            try:
                await self.worker
            except asyncio.CancelledError:
                pass
            self.worker = None

    async def submit(self, item):
        """The result for ``item`` once its batch has run; QueueFull at once when the queue is full."""
        if self.queue is None:
            self.start()
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((item, future))
        except asyncio.QueueFull:
            raise QueueFull(f"the queue of this model is full ({self.max_queue} requests waiting); retry later") from None
        return await future

    def _timed(self, items: list) -> list:
        begin = time.thread_time()
        try:
            return self.run(items)
        finally:
            self.cpu_seconds += time.thread_time() - begin

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.window
            while len(batch) < self.max_batch:
                if not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                # poll rather than wait_for(queue.get()): a get cancelled by a timeout can lose its item
                await asyncio.sleep(min(remaining, 0.001))
            live = [(item, future) for item, future in batch if not future.cancelled()]  # callers gone away: skip
            if not live:
                continue
            self.batches, self.items = self.batches + 1, self.items + len(live)
            try:
                results = await loop.run_in_executor(self.executor, self._timed, [item for item, _ in live])
            except Exception as error:  # noqa: BLE001 (the whole batch failed: every caller hears it)
                results = [error] * len(live)
            for (_, future), result in zip(live, results):
                if future.cancelled():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
