"""Dynamic batching: rows of concurrent requests for the same model version and signature run
as one batch: the rows that queued while the previous batch ran, up to `max_batch`, and with
`max_wait_ms` > 0 also those arriving that long after the first. It runs in a worker thread so
the event loop keeps accepting requests."""

from __future__ import annotations

import asyncio
from typing import Callable, Dict, List, Tuple


class Batcher:
    """Args:
      run: rows (list of per-row inputs) -> list of per-row results, called in a thread.
      max_batch: rows per batch at most.
      max_wait_ms: how long a batch waits for more rows.
    """

    def __init__(self, run: Callable[[list], list], max_batch: int = 64,
                 max_wait_ms: float = 0.0):
        self.run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1000
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, rows: list) -> list:
        """The results of `rows`, computed with whatever else is waiting."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((rows, future))
        return await future

    async def _loop(self):
        loop = asyncio.get_running_loop()
        while True:
            pending: List[Tuple[list, asyncio.Future]] = [await self.queue.get()]
            size = len(pending[0][0])
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                timeout = deadline - loop.time()
                try:
                    item = (self.queue.get_nowait() if timeout <= 0 else
                            await asyncio.wait_for(self.queue.get(), timeout))
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
                pending.append(item)
                size += len(item[0])
            rows = [row for request, _ in pending for row in request]
            try:
                results = await loop.run_in_executor(None, self.run, rows)
            except Exception as error:  # noqa: BLE001  (handed to every waiting request)
                for _, future in pending:
                    if not future.done():
                        future.set_exception(error)
                continue
            start = 0
            for request, future in pending:
                if not future.done():
                    future.set_result(results[start:start + len(request)])
                start += len(request)

    def close(self):
        self.task.cancel()


class Batchers:
    """One `Batcher` per key (model version, signature, search), made on first use."""

    def __init__(self, max_batch: int, max_wait_ms: float):
        self.max_batch, self.max_wait_ms = max_batch, max_wait_ms
        self.batchers: Dict[tuple, Batcher] = {}

    def get(self, key: tuple, run: Callable[[list], list]) -> Batcher:
        if key not in self.batchers:
            self.batchers[key] = Batcher(run, self.max_batch, self.max_wait_ms)
        return self.batchers[key]

    def close(self):
        for batcher in self.batchers.values():
            batcher.close()
