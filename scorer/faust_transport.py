"""Faust's aiokafka transport: a fetch wait that can be raised while it runs, corrected end offsets.

Faust 0.15 hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer. The
embedded Tansu broker holds a fetch for that long when data trickles in, so at
1,000 events/s the stream arrived in ~0.3-0.5 s bursts (measured: p50 ~400 ms
event-to-consumer with 1,500 ms, ~10 ms with 20 ms). This transport lets the
setting ``scorer_faust_fetch_wait_ms`` through; stall recovery raises the wait of
the running consumer (:meth:`FetchWait.raise_to`).

Faust recovers a table by reading its changelog up to the end offsets ListOffsets
answers. The embedded broker answers short when a partition's last record batch
holds several records (:mod:`kafka_io.end_offsets`), so a restarted worker would
miss the newest changes; with ``end_offsets`` given, recovery reads to the corrected
offsets. Everything else is Faust's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver

EndOffsets = Callable[[Mapping[tuple[str, int], int]], Mapping[tuple[str, int], int]]


class FetchWait:
    """The worker consumer's fetch wait: handed to it when Faust creates it, raised in place later."""

    def __init__(self, ms: int) -> None:
        self.ms = ms
        self._consumer: Any = None

    def attach(self, consumer: Any) -> None:
        """Called with the aiokafka consumer Faust has just created (before it starts)."""
        # aiokafka passes this to its Fetcher when the consumer starts.
        consumer._fetch_max_wait_ms = self.ms
        self._consumer = consumer

    def raise_to(self, ms: int) -> bool:
        """Make the running consumer's fetches wait up to ``ms``; False when no consumer runs yet."""
        self.ms = ms
        consumer = self._consumer
        if consumer is None:
            return False
        consumer._fetch_max_wait_ms = ms  # for a fetcher Faust starts afresh
        fetcher = getattr(consumer, "_fetcher", None)
        if fetcher is None:
            return False
        set_fetcher_wait(fetcher, ms)
        return True


def set_fetcher_wait(fetcher: Any, ms: int) -> None:
    """Set the ``max_wait_ms`` of every later FetchRequest of a running aiokafka ``Fetcher``.

    aiokafka copies ``fetch_max_wait_ms`` into its Fetcher at start and offers no way to
    change it afterwards; each request reads the Fetcher's private ``_fetch_max_wait_ms``.
    This is the one place that writes it (tests/unit/test_faust_transport.py fails if
    aiokafka stops reading it). An int written from another thread is read whole.
    """
    if not hasattr(fetcher, "_fetch_max_wait_ms"):
        raise RuntimeError(
            "aiokafka's Fetcher has no _fetch_max_wait_ms: raising the fetch wait in place "
            "needs updating for this aiokafka version"
        )
    fetcher._fetch_max_wait_ms = ms


def install_transport(
    app: faust.App, *, fetch_max_wait_ms: int | None = None, end_offsets: EndOffsets | None = None
) -> FetchWait | None:
    """Give ``app`` an aiokafka transport with the given fetch wait and end-offset correction.

    ``fetch_max_wait_ms``: the longest a worker-consumer fetch waits for data (Faust's
    1,500 ms when None); the returned handle raises it while the consumer runs.
    ``end_offsets``: called (in a thread) with the ListOffsets answers whenever Faust asks
    for the end of partitions (table recovery); its answer is used instead. Call right
    after creating the app, before ``app.topic(...)`` (which creates the transport).
    """
    wait = None if fetch_max_wait_ms is None else FetchWait(fetch_max_wait_ms)

    class _ConsumerThread(driver.AIOKafkaConsumerThread):  # type: ignore[misc]
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            if wait is not None:
                wait.attach(consumer)
            return consumer

        async def _highwaters(self, partitions: Any) -> Any:
            listed = await super()._highwaters(partitions)
            if end_offsets is None or not listed:
                return listed
            by_name = {(tp.topic, tp.partition): end for tp, end in listed.items() if end is not None}
            corrected = await asyncio.get_running_loop().run_in_executor(None, end_offsets, by_name)
            return {tp: corrected.get((tp.topic, tp.partition), end) for tp, end in listed.items()}

    class _Consumer(driver.Consumer):  # type: ignore[misc]
        def _new_consumer_thread(self) -> Any:
            return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class _Transport(driver.Transport):  # type: ignore[misc]
        Consumer = _Consumer

    app.transport = _Transport(app.conf.broker_consumer, app)
    return wait


def install_fetch_wait(app: faust.App, fetch_max_wait_ms: int) -> FetchWait:
    """Give ``app`` a transport whose worker consumer waits at most ``fetch_max_wait_ms``.

    The returned handle raises the wait of the running consumer.
    """
    wait = install_transport(app, fetch_max_wait_ms=fetch_max_wait_ms)
    assert wait is not None  # a wait was given
    return wait
