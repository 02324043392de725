"""The dynamic batcher in an event loop, with a run function that takes real time: batches
formed from what queued, a bounded queue, deadlines, a failing request alone, retiring."""

import asyncio
import threading
import time

import pytest

from tf_ccfrec.serving.batching import Batcher, DeadlineExceeded, Overloaded


class SlowModel:
    """Rows -> rows upper-cased, after `seconds`; raises on a row "bad". Records each call."""

    def __init__(self, seconds=0.0):
        self.seconds, self.calls, self.lock = seconds, [], threading.Lock()

    def __call__(self, rows):
        with self.lock:
            self.calls.append(list(rows))
        time.sleep(self.seconds)
        if "bad" in rows:
            raise ValueError("a bad row")
        return [row.upper() for row in rows]


def _run(coroutine):
    return asyncio.run(coroutine)


def test_rows_queued_while_a_batch_runs_form_the_next_batch():
    model = SlowModel(0.2)

    async def main():
        batcher = Batcher(model, max_batch=8)
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.05)  # "a" runs; these three wait and then run together
        rest = [asyncio.ensure_future(batcher.submit([x])) for x in ("b", "c", "d")]
        results = await asyncio.gather(first, *rest)
        batcher.close()
        return results

    assert _run(main()) == [["A"], ["B"], ["C"], ["D"]]
    assert model.calls == [["a"], ["b", "c", "d"]]


def test_a_full_queue_refuses_at_once():
    model = SlowModel(0.3)

    async def main():
        batcher = Batcher(model, max_batch=8, max_queued_rows=2)
        running = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(batcher.submit(["b", "c"]))
        await asyncio.sleep(0)
        started = time.perf_counter()
        with pytest.raises(Overloaded, match="2 rows are waiting"):
            await batcher.submit(["d"])
        refused_after = time.perf_counter() - started
        results = await asyncio.gather(running, queued)
        batcher.close()
        return results, refused_after

    results, refused_after = _run(main())
    assert results == [["A"], ["B", "C"]]
    assert refused_after < 0.05


def test_a_deadline_that_passes_in_the_queue():
    model = SlowModel(0.3)

    async def main():
        batcher = Batcher(model, max_batch=1)
        running = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.05)
        late = asyncio.ensure_future(batcher.submit(["b"], timeout=0.1))
        patient = asyncio.ensure_future(batcher.submit(["c"], timeout=5))
        with pytest.raises(DeadlineExceeded, match="while it was queued"):
            await late
        results = await asyncio.gather(running, patient)
        batcher.close()
        return results

    assert _run(main()) == [["A"], ["C"]]
    assert ["b"] not in model.calls


def test_a_failing_request_fails_alone():
    model = SlowModel(0.0)

    async def main():
        batcher = Batcher(model, max_batch=8, max_wait_ms=200)
        futures = [asyncio.ensure_future(batcher.submit(rows))
                   for rows in (["a"], ["bad", "b"], ["c"])]
        results = await asyncio.gather(*futures, return_exceptions=True)
        batcher.close()
        return results

    good, bad, other = _run(main())
    assert good == ["A"] and other == ["C"]
    assert isinstance(bad, ValueError)
    assert model.calls == [["a", "bad", "b", "c"], ["a"], ["bad", "b"], ["c"]]


def test_a_retired_batcher_answers_what_it_holds_then_ends():
    model = SlowModel(0.1)

    async def main():
        batcher = Batcher(model, max_batch=1)
        futures = [asyncio.ensure_future(batcher.submit([x])) for x in "abc"]
        await asyncio.sleep(0.01)
        batcher.retire()
        results = await asyncio.gather(*futures)
        batcher.worker.join(timeout=5)
        return results, batcher.worker.is_alive()

    results, alive = _run(main())
    assert results == [["A"], ["B"], ["C"]] and not alive
