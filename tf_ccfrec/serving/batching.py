"""Dynamic batching: rows of concurrent requests for the same model version, signature and
search run as one batch: the rows that queued while the previous batch ran, up to `max_batch`,
and with `max_wait_ms` > 0 also those arriving that long after the first. Batches run in a
worker thread so the event loop keeps accepting requests.

The queue is bounded (`max_queued_rows`): a request that does not fit is refused at once
(`Overloaded`: HTTP 503, gRPC UNAVAILABLE). A request whose deadline passes before its batch
runs is dropped from the queue (`DeadlineExceeded`). A batch that raises runs again one request
at a time, so a request that makes the model raise fails alone.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Callable, Dict, List, Optional, Tuple


class Overloaded(RuntimeError):
    """The batch queue is full."""


class DeadlineExceeded(TimeoutError):
    """The request's deadline passed before it was answered."""


class Batcher:
    """Args:
      run: rows (list of per-row inputs) -> list of per-row results, called in a thread.
      max_batch: rows per batch at most.
      max_wait_ms: how long a batch waits for more rows.
      max_queued_rows: rows waiting at most (the batch that runs not counted).
    """

    def __init__(self, run: Callable[[list], list], max_batch: int = 64,
                 max_wait_ms: float = 0.0, max_queued_rows: int = 4096):
        self.run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1000
        self.max_queued_rows, self.queued_rows = max_queued_rows, 0
        self.waiting: collections.deque = collections.deque()
        self.ready = asyncio.Event()
        self.retiring = False
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, rows: list, timeout: Optional[float] = None) -> list:
        """The results of `rows`, computed with whatever else is waiting.

        Raises:
          Overloaded: the queue has no room for `rows`.
          DeadlineExceeded: not answered within `timeout` seconds.
          Exception: what `run` raised for these rows alone.
        """
        if self.queued_rows + len(rows) > self.max_queued_rows:
            raise Overloaded(f"the server is overloaded: {self.queued_rows} rows are waiting "
                             f"(at most {self.max_queued_rows})")
        future = asyncio.get_running_loop().create_future()
        self.queued_rows += len(rows)
        self.waiting.append((rows, future))
        self.ready.set()
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"deadline of {timeout:.3f} s exceeded") from None

    def _take(self):
        rows, future = self.waiting.popleft()
        self.queued_rows -= len(rows)
        return rows, future

    async def _arrival(self, timeout: Optional[float] = None) -> bool:
        """Waits until a request is queued (False when `timeout` passes first)."""
        self.ready.clear()
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def _loop(self):
        loop = asyncio.get_running_loop()
        while True:
            while not self.waiting:
                if self.retiring:
                    return
                await self._arrival()
            pending: List[Tuple[list, asyncio.Future]] = [self._take()]
            size = len(pending[0][0])
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                if not self.waiting:
                    timeout = deadline - loop.time()
                    if timeout <= 0 or not await self._arrival(timeout):
                        break
                    continue
                pending.append(self._take())
                size += len(pending[-1][0])
            pending = [(rows, future) for rows, future in pending if not future.done()]
            if pending:
                await self._run(loop, pending)

    async def _run(self, loop, pending):
        rows = [row for request, _ in pending for row in request]
        try:
            results = await loop.run_in_executor(None, self.run, rows)
        except Exception as error:  # noqa: BLE001  (handed to the request that caused it)
            if len(pending) == 1:
                if not pending[0][1].done():
                    pending[0][1].set_exception(error)
                return
            for request, future in pending:  # again one request at a time
                try:
                    result = await loop.run_in_executor(None, self.run, request)
                except Exception as alone:  # noqa: BLE001
                    if not future.done():
                        future.set_exception(alone)
                else:
                    if not future.done():
                        future.set_result(result)
            return
        start = 0
        for request, future in pending:
            if not future.done():
                future.set_result(results[start:start + len(request)])
            start += len(request)

    def retire(self):
        """Ends the batcher once the requests it holds are answered."""
        self.retiring = True
        self.ready.set()

    def close(self):
        self.task.cancel()


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
