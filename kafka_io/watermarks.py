"""The broker's watermarks of a few partitions, asked for every few seconds in a background thread.

A consumer's cached high watermark comes with its fetch responses; when its
fetches stop being answered it stops moving too, and the lag it gives stops
growing exactly when it matters. :class:`WatermarkPoller` asks the broker itself
(``get_watermark_offsets(cached=False)``, one ListOffsets request per partition)
with a client of its own, so that the consuming loop never waits for it and a
consumer being re-created cannot pull a client from under it. On the embedded
broker every such request lists all record batches of the partition (its cost
grows with the partition), so it runs every ``interval_s`` (``lag_query_interval_s``),
never per batch. How long a round took per partition is kept for the caller
(:meth:`WatermarkPoller.lookups`): on the embedded broker it measures how long the
broker takes to find a partition's data, which the fetch wait must leave room for
(:class:`kafka_io.stall.LookupWatch`).
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from config.settings import Settings
from kafka_io.client_config import confluent_common

log = logging.getLogger(__name__)

TP = tuple[str, int]


class WatermarkPoller:
    """``(low, high)`` watermarks of the partitions given to :meth:`watch`, refreshed every ``interval_s``."""

    def __init__(self, settings: Settings, *, interval_s: float, client_id: str, timeout_s: float = 10.0):
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._config = {
            **confluent_common(settings),
            # A group id is required; nothing subscribes, so no group is joined.
            "group.id": f"{settings.scorer_app_id}-watermarks",
            "client.id": client_id,
        }
        self._lock = threading.Lock()
        self._wanted: frozenset[TP] = frozenset()
        self._marks: dict[TP, tuple[int, int]] = {}
        self._lookups: list[tuple[float, int]] = []  # (seconds per partition, partitions) per round
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing_since: float | None = None

    def watch(self, partitions: set[TP] | frozenset[TP]) -> None:
        """Ask for these partitions from now on (the next round starts at once when new ones appear)."""
        wanted = frozenset(partitions)
        with self._lock:
            new = wanted - self._wanted
            self._wanted = wanted
            for tp in set(self._marks) - wanted:
                del self._marks[tp]
        if new:
            self._wake.set()

    def marks(self) -> dict[TP, tuple[int, int]]:
        """The last ``(low, high)`` the broker gave for each watched partition."""
        with self._lock:
            return dict(self._marks)

    def lookups(self) -> list[tuple[float, int]]:
        """``(seconds per partition, partitions)`` of each complete round since the last call."""
        with self._lock:
            rounds, self._lookups = self._lookups, []
            return rounds

    def start(self) -> WatermarkPoller:
        self._thread = threading.Thread(target=self._run, name="watermarks", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 5)

    def _run(self) -> None:
        consumer = Consumer(self._config)
        try:
            while not self._stop.is_set():
                self.poll_once(consumer)
                self._wake.wait(self.interval_s)
                self._wake.clear()
        finally:
            consumer.close()

    def poll_once(self, consumer: Consumer) -> None:
        """One round: the watermarks of every watched partition."""
        with self._lock:
            wanted = sorted(self._wanted)
        started = time.perf_counter()
        fresh: dict[TP, tuple[int, int]] = {}
        for topic, partition in wanted:
            if self._stop.is_set():
                return
            try:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=self.timeout_s, cached=False
                )
            except KafkaException as exc:
                self._failed(exc)
                return
            fresh[(topic, partition)] = (int(low), int(high))
        if self._failing_since is not None:
            log.info("watermark queries answer again after %.0f s", time.monotonic() - self._failing_since)
            self._failing_since = None
        seconds = time.perf_counter() - started
        with self._lock:
            self._marks.update({tp: marks for tp, marks in fresh.items() if tp in self._wanted})
            if fresh:
                self._lookups = [*self._lookups[-9:], (seconds / len(fresh), len(fresh))]
        log.debug("watermarks of %d partitions in %.1f ms", len(fresh), 1000 * seconds)

    def _failed(self, exc: KafkaException) -> None:
        # The broker watch reports an unreachable broker; one line per outage is enough here.
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.info("watermark query failed (%s); lag and stall detection use the consumer's view", exc)
