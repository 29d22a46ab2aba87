"""``churn_consumer_lag{topic,partition}``: high watermark minus position, per assigned partition.

Both runtimes feed :class:`LagReporter` with ``{(topic, partition): lag}`` for
the partitions they own; it sets those series and removes the series of
partitions that are no longer assigned. Callers decide how to read the numbers
(confluent-kafka ``get_watermark_offsets(cached=True)`` + ``position`` for the
native engine; aiokafka ``highwater`` + ``position`` for Faust) and call
:meth:`due` so the work happens at most every ``interval_s``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping

from prometheus_client import Gauge

TopicPartition = tuple[str, int]


class LagReporter:
    def __init__(self, gauge: Gauge, interval_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.gauge = gauge
        self.interval_s = interval_s
        self.clock = clock
        self._shown: set[TopicPartition] = set()
        self._last = -float("inf")

    def due(self) -> bool:
        """True (and the timer restarted) if ``interval_s`` passed since the last report."""
        now = self.clock()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return True

    def report(self, lags: Mapping[TopicPartition, int]) -> None:
        for (topic, partition), lag in lags.items():
            self.gauge.labels(topic=topic, partition=str(partition)).set(max(lag, 0))
        self.forget(set(self._shown) - set(lags))
        self._shown = set(lags)

    def forget(self, partitions: set[TopicPartition] | list[TopicPartition]) -> None:
        """Remove the series of partitions this process no longer owns."""
        for topic, partition in partitions:
            with contextlib.suppress(KeyError):
                self.gauge.remove(topic, str(partition))
            self._shown.discard((topic, partition))


async def faust_lags(app: object, topic: str) -> dict[TopicPartition, int]:
    """Lag of the Faust worker's assigned partitions of ``topic``: aiokafka highwater minus position.

    aiokafka's position is its fetch position, which runs ahead of the agent by at
    most the stream buffer (``stream_buffer_maxsize``); partitions whose highwater
    is not known yet (no fetch response) are left out.
    """
    consumer = app.consumer  # type: ignore[attr-defined]
    lags: dict[TopicPartition, int] = {}
    for tp in consumer.assignment():
        if tp.topic != topic:
            continue
        high = consumer.highwater(tp)
        position = await consumer.position(tp)
        if high is None or position is None:
            continue
        lags[(tp.topic, tp.partition)] = int(high) - int(position)
    return lags
