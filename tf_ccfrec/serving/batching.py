"""Dynamic batching: rows of concurrent requests for the same model version, signature and
search run as one batch: the rows that queued while the previous batch ran, up to `max_batch`,
and with `max_wait_ms` > 0 also those arriving that long after the first. Each batcher has a
worker thread that takes requests from a thread-safe queue and runs them, so the event loop
keeps accepting requests and a request costs one hand-over each way.

The queue is bounded (`max_queued_rows`): a request that does not fit is refused at once
(`Overloaded`: HTTP 503, gRPC UNAVAILABLE). A request whose deadline passes before its batch
starts is left out of it (`DeadlineExceeded`). A batch that raises runs again one request at a
time, so a request that makes the model raise fails alone.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

_STOP = None  # the queue's end marker


class Overloaded(RuntimeError):
    """The batch queue is full."""


class DeadlineExceeded(TimeoutError):
    """The request's deadline passed before it was answered."""


class Batcher:
    """Args:
      run: rows (list of per-row inputs) -> list of per-row results, called in the worker.
      max_batch: rows per batch at most.
      max_wait_ms: how long a batch waits for more rows.
      max_queued_rows: rows waiting at most (the batch that runs not counted).
    """

    def __init__(self, run: Callable[[list], list], max_batch: int = 64,
                 max_wait_ms: float = 0.0, max_queued_rows: int = 4096):
        self.run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1000
        self.max_queued_rows, self.queued_rows = max_queued_rows, 0
        self.loop = asyncio.get_running_loop()
        self.waiting: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.worker = threading.Thread(target=self._work, daemon=True, name="ccfrec-batcher")
        self.worker.start()

    async def submit(self, rows: list, timeout: Optional[float] = None) -> list:
        """The results of `rows`, computed with whatever else is waiting.

        Raises:
          Overloaded: the queue has no room for `rows`.
          DeadlineExceeded: `timeout` seconds passed before its batch started.
          Exception: what `run` raised for these rows alone.
        """
        with self.lock:
            if self.queued_rows + len(rows) > self.max_queued_rows:
                raise Overloaded(f"the server is overloaded: {self.queued_rows} rows are "
                                 f"waiting (at most {self.max_queued_rows})")
            self.queued_rows += len(rows)
        work = self.loop.create_future()
        deadline = None if timeout is None else time.monotonic() + timeout
        self.waiting.put((rows, work, deadline))
        return await work

    # -- the worker thread ---------------------------------------------------------------

    def _taken(self, item) -> None:
        with self.lock:
            self.queued_rows -= len(item[0])

    def _work(self) -> None:
        stopping = False
        while not stopping:
            item = self.waiting.get()
            if item is _STOP:
                return
            self._taken(item)
            pending: List[Tuple[list, asyncio.Future, Optional[float]]] = [item]
            size = len(item[0])
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch:
                try:
                    wait = deadline - time.monotonic()
                    item = self.waiting.get(timeout=wait) if wait > 0 else \
                        self.waiting.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                self._taken(item)
                pending.append(item)
                size += len(item[0])
            self._run(self._current(pending))
        while True:  # what was queued after the end marker
            try:
                item = self.waiting.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                self._taken(item)
                self._run(self._current([item]))

    def _current(self, pending):
        """The requests still waiting whose deadline has not passed; those past it are
        answered DeadlineExceeded (cancelled ones, whose client went away, are dropped)."""
        now, current = time.monotonic(), []
        for rows, future, deadline in pending:
            if future.done():
                continue
            if deadline is not None and now > deadline:
                self.loop.call_soon_threadsafe(self._deliver, future, None, DeadlineExceeded(
                    f"the request's deadline passed while it was queued "
                    f"({now - deadline:.3f} s before its batch)"))
            else:
                current.append((rows, future))
        return current

    def _deliver(self, future: asyncio.Future, result=None, error=None) -> None:
        if not future.done():
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    def _run(self, pending) -> None:
        if not pending:
            return
        rows = [row for request, _ in pending for row in request]
        try:
            results = self.run(rows)
        except Exception as error:  # noqa: BLE001  (handed to the request that caused it)
            if len(pending) == 1:
                self.loop.call_soon_threadsafe(self._deliver, pending[0][1], None, error)
                return
            for request, future in pending:  # again one request at a time
                try:
                    result = self.run(request)
                except Exception as alone:  # noqa: BLE001
                    self.loop.call_soon_threadsafe(self._deliver, future, None, alone)
                else:
                    self.loop.call_soon_threadsafe(self._deliver, future, result)
            return
        start = 0
        for request, future in pending:
            self.loop.call_soon_threadsafe(self._deliver, future,
                                           results[start:start + len(request)])
            start += len(request)

    def retire(self) -> None:
        """Ends the worker once the requests it holds are answered (no request may come
        after)."""
        self.waiting.put(_STOP)

    close = retire


class Batchers:
    """One `Batcher` per key (model, version, signature, search), made on first use."""

    def __init__(self, max_batch: int, max_wait_ms: float, max_queued_rows: int):
        self.max_batch, self.max_wait_ms = max_batch, max_wait_ms
        self.max_queued_rows = max_queued_rows
        self.batchers: Dict[tuple, Batcher] = {}

    def get(self, key: tuple, run: Callable[[list], list]) -> Batcher:
        if key not in self.batchers:
            self.batchers[key] = Batcher(run, self.max_batch, self.max_wait_ms,
                                         self.max_queued_rows)
        return self.batchers[key]

    def retire(self, keep: Callable[[tuple], bool]) -> None:
        """Retires the batchers whose key `keep` refuses (versions that were unloaded): they
        answer what they hold, then end."""
        for key in [k for k in self.batchers if not keep(k)]:
            self.batchers.pop(key).retire()

    def close(self):
        for batcher in self.batchers.values():
            batcher.close()
