"""``churn_consumer_lag{topic,partition}``: high watermark minus position, per assigned partition.

Both runtimes feed :class:`LagReporter` with ``{(topic, partition): lag}`` for
the partitions they own; it sets those series and removes the series of
partitions that are no longer assigned. Callers decide how to read the numbers
(the position of their client; the high watermark the broker gives when asked,
:mod:`kafka_io.watermarks` or aiokafka ``end_offsets``, or the client's cached one,
whichever is newer) and call :meth:`due` so the work happens at most every ``interval_s``.
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


async def faust_marks(app: object, topic: str) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """``(positions, high watermarks)`` of the Faust worker's assigned partitions of ``topic``.

    aiokafka's position is its fetch position, which runs ahead of the agent by at
    most the stream buffer (``stream_buffer_maxsize``); its ``highwater`` comes with
    every fetch response, empty ones included. Partitions without a known value are
    left out of that mapping.
    """
    consumer = app.consumer  # type: ignore[attr-defined]
    positions: dict[TopicPartition, int] = {}
    highs: dict[TopicPartition, int] = {}
    for tp in consumer.assignment():
        if tp.topic != topic:
            continue
        key = (tp.topic, tp.partition)
        high = consumer.highwater(tp)
        if high is not None:
            highs[key] = int(high)
        position = await consumer.position(tp)
        if position is not None:
            positions[key] = int(position)
    return positions, highs
