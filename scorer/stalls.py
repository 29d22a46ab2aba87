"""What the engines do about stalled partitions: detect, report, and plan the recovery.

Each engine owns a :class:`StallGuard` and calls :meth:`StallGuard.check` every few
seconds with its assigned partitions, their positions and the broker's high
watermarks (:mod:`kafka_io.stall` does the detecting). The guard

- sets the readiness condition ``stall`` (false while any assigned partition is
  stalled; the reason names them);
- suspends detection while another condition explains why nothing moves: the broker
  is unreachable (``broker``), deliveries are failing (``delivery``) or consuming is
  paused on purpose (``scoring``);
- answers which recovery step is due for which partitions (:class:`Plan`).

The steps escalate per stall episode; the engine carries them out:

1. **seek**: back to where the partition stands (the native engine: its committed
   offset, after finishing and committing the batch in flight; the Faust worker: its
   fetch position, past what its stream buffer already holds), which restarts the
   client's fetching of that partition;
2. **escalate**, after every further ``stall_after_s`` without progress: the fetch
   wait goes up 4x (up to ``stall_max_fetch_wait_ms``, :attr:`StallGuard.fetch_wait`) —
   the native engine closes its consumer (leaving the group, after the batch in flight
   is delivered and committed) and re-creates it with the new wait; the Faust worker
   raises its running fetcher's wait in place. At the cap the native engine re-creates
   with the same wait and the Faust worker seeks again.

A longer wait is what gets a partition of the embedded broker moving again
(docs/streaming.md); seeking and re-joining are what help against client-side causes
on Apache Kafka. The guard also raises the wait *ahead* of a stall (:meth:`StallGuard.ahead`):
when the broker's partition lookups, timed on the watermark queries, no longer leave a
fetch the time to serve every assigned partition (:class:`kafka_io.stall.LookupWatch`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from config.settings import Settings
from kafka_io.stall import TP, FetchWaitLadder, LookupWatch, Stall, StallDetector, describe
from monitoring.metrics import ScorerMetrics
from scorer.readiness import BROKER, DELIVERY, SCORING, STALL, Readiness

log = logging.getLogger(__name__)

#: Conditions that explain a partition not moving: no stall is judged while one fails.
HOLDING_CONDITIONS = frozenset({BROKER, DELIVERY, SCORING})


@dataclass(frozen=True)
class Plan:
    """Recovery steps due now: partitions to seek, and partitions whose stall calls for escalation."""

    seek: list[TP] = field(default_factory=list)
    escalate: list[TP] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.seek or self.escalate)


class StallGuard:
    """Stall detection, the readiness condition ``stall`` and the recovery plan of one engine."""

    def __init__(
        self,
        settings: Settings,
        metrics: ScorerMetrics,
        readiness: Readiness,
        initial_wait_ms: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.readiness = readiness
        self._clock = clock
        self.fetch_wait = FetchWaitLadder(
            initial_wait_ms, settings.stall_max_fetch_wait_ms, gauge=metrics.fetch_wait
        )
        self.lookups = LookupWatch()
        self.detector = StallDetector(
            metrics.partition_stalled,
            metrics.stall_recoveries,
            stall_after_s=settings.stall_after_s,
            min_progress=settings.scorer_max_batch,
            clock=clock,
            on_change=self._changed,
        )

    def check(self, assigned: Iterable[TP], positions: Mapping[TP, int], highs: Mapping[TP, int]) -> Plan:
        """Observe the partitions; the recovery steps due now."""
        hold = bool(HOLDING_CONDITIONS & self.readiness.verdict().failing.keys())
        due = self.detector.observe(assigned, positions, highs, hold=hold)
        if not due:
            return Plan()
        steps = self.detector.steps
        return Plan(seek=[tp for tp in due if steps(tp) == 0], escalate=[tp for tp in due if steps(tp) > 0])

    def ahead(self, lookups: Iterable[tuple[float, int] | tuple[float, int, float]]) -> int | None:
        """A longer fetch wait to use now, or None: ``lookups`` are ``(seconds per partition,
        partitions)`` of the watermark query rounds since the last call, or ``(slowest
        partition's seconds, partitions, fastest partition's seconds)`` where each was timed."""
        for seconds, partitions, *fastest in lookups:
            if not self.lookups.observe(seconds, partitions, self.fetch_wait.current, *fastest):
                continue
            previous = self.fetch_wait.current
            wait = self.fetch_wait.raise_wait()
            if wait is None:
                return None
            log.warning(
                "the broker takes %.1f ms to look up a partition (%.1f ms at first) and a fetch serves %d: "
                "raising the fetch wait to %d ms (was %d) before it runs out",
                1000 * seconds,
                1000 * (self.lookups.baseline_s or 0.0),
                partitions,
                wait,
                previous,
            )
            return wait
        return None

    def took(self, tps: Iterable[TP], action: str) -> None:
        """Count a recovery step ``action`` taken for ``tps``."""
        self.detector.step_taken(tps, action)

    def forget(self, tps: Iterable[TP]) -> None:
        self.detector.forget(tps)

    def assigned_again(self, tps: Iterable[TP]) -> None:
        """After a re-created consumer rejoined: each partition's window starts when it is assigned."""
        self.detector.restart(tps)

    def _changed(self, stalled: Mapping[TP, Stall]) -> None:
        self.readiness.set(STALL, not stalled, "stalled: " + describe(stalled, self._clock()))
