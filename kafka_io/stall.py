"""Stalled partitions: an assigned partition whose position does not move while it has lag.

Burrow's rule for a stalled consumer, per partition: the position (the next offset
the consumer will hand over) stays where it is while the broker's high watermark is
above it. A slow consumer is not stalled (its position moves); an idle one is not
(no lag). "Moves" means real progress: at least ``min_progress`` records (one
micro-batch) past where the partition last stood, or all of its lag then, if that
was less. So a partition that creeps — the embedded broker near its fetch limit
answers now and then with a record or two — stays stalled and its recovery goes on,
while a trickle of a few records a second that the consumer keeps up with is fine.

Both engines call :meth:`StallDetector.observe` every few seconds with the partitions
they own, their positions and the broker's high watermarks; the detector

- keeps ``churn_partition_stalled{topic,partition}`` (1 while stalled, 0 otherwise,
  removed when the partition is no longer assigned);
- logs one WARNING when a partition stalls and one INFO when it moves again;
- tells its owner whenever the set of stalled partitions changes (readiness ``stall``);
- says when a recovery step is due: at detection, then after every further
  ``stall_after_s`` without progress; a partition that stalls again soon after it
  recovered carries on up the ladder. What a step does (seek, re-create the consumer,
  raise the fetch wait) is the engine's; :meth:`StallDetector.step_taken` counts it in
  ``churn_stall_recoveries_total{topic,partition,action}``. :class:`FetchWaitLadder`
  holds the fetch wait that the steps raise.

``hold`` suspends detection while the engine holds back on purpose or cannot work
(broker unreachable, deliveries failing, consuming paused): the clocks restart, so a
pause is never reported as a stall. So does a gap between two observations longer than
``stall_after_s``: the observer itself was blocked, which liveness reports.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

TP = tuple[str, int]

#: A partition that stalls again within this many windows of recovering relapsed: its next
#: step follows on from the last episode's instead of starting over.
RELAPSE_WINDOWS = 3


@dataclass(frozen=True)
class Stall:
    """A stalled partition: where it stands and since when it has not moved (monotonic seconds)."""

    position: int
    high: int
    since: float

    @property
    def lag(self) -> int:
        return self.high - self.position


@dataclass
class _Watch:
    position: int | None = None
    high: int | None = None
    anchor: int | None = None  # where the partition stood when it last made progress (or a step was taken)
    need: int = 1  # records past the anchor that count as progress
    moved_at: float = 0.0
    stalled: bool = False
    steps: int = 0
    step_at: float = 0.0
    ended_at: float | None = None  # when the last stall episode ended
    ended_steps: int = 0  # the steps that episode had taken


#: The first recovery step of every engine for a stalled partition.
FIRST_STEP = "seek"


class StallDetector:
    """Per-partition stall episodes from periodic observations; see the module docstring."""

    def __init__(
        self,
        stalled: Gauge,
        recoveries: Counter,
        *,
        stall_after_s: float,
        min_progress: int = 1,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[Mapping[TP, Stall]], None] | None = None,
    ) -> None:
        self._gauge = stalled
        self._recoveries = recoveries
        self.stall_after_s = stall_after_s
        self.min_progress = max(1, min_progress)
        self._clock = clock
        self._on_change = on_change
        self._watch: dict[TP, _Watch] = {}
        self._last: float | None = None

    def observe(
        self,
        assigned: Iterable[TP],
        positions: Mapping[TP, int],
        highs: Mapping[TP, int],
        *,
        hold: bool = False,
    ) -> list[TP]:
        """Record where the ``assigned`` partitions stand; the partitions whose next recovery step is due.

        ``positions`` and ``highs`` may leave out partitions whose value is not known yet;
        partitions watched before and no longer in ``assigned`` are forgotten.
        """
        now = self._clock()
        blocked = self._last is not None and now - self._last > self.stall_after_s
        self._last = now
        restart = hold or blocked
        owned = set(assigned)
        changed = self._drop(set(self._watch) - owned)
        due: list[TP] = []
        for tp in sorted(owned):
            watch = self._watch.get(tp)
            if watch is None:
                watch = self._watch[tp] = _Watch(moved_at=now)
                self._set_gauge(tp, 0)
                # Every engine's first step is a seek: its series exists at 0 from the start, so
                # increase()/rate() answer 0 rather than nothing before any stall.
                self._recoveries.labels(topic=tp[0], partition=str(tp[1]), action=FIRST_STEP)
            position, high = positions.get(tp, watch.position), highs.get(tp, watch.high)
            watch.position, watch.high = position, high
            if position is None or high is None:
                continue  # lag not known: nothing to judge
            lag = high - position
            if watch.anchor is None or lag <= 0 or position - watch.anchor >= watch.need:
                if watch.stalled:
                    self._clear(tp, watch, now)
                    changed = True
                self._progress(watch, position, lag, now)
                continue
            if position < watch.anchor:  # sought back: measure from here, it is no progress
                watch.anchor = position
            if restart:
                self._restart(watch, now)
                continue
            if not watch.stalled:
                if now - watch.moved_at >= self.stall_after_s:
                    # A relapse soon after an episode ended goes on up its ladder: the step
                    # that seemed to help did not last.
                    relapse = (
                        watch.ended_at is not None
                        and now - watch.ended_at <= RELAPSE_WINDOWS * self.stall_after_s
                    )
                    watch.stalled, watch.step_at = True, now
                    watch.steps = watch.ended_steps if relapse else 0
                    self._set_gauge(tp, 1)
                    log.warning(
                        "partition %s[%d] stalled: position %d has not moved for %.0f s while the "
                        "broker's high watermark is %d (lag %d); recovering",
                        tp[0],
                        tp[1],
                        position,
                        now - watch.moved_at,
                        high,
                        lag,
                    )
                    changed = True
                    due.append(tp)
            elif now - watch.step_at >= self.stall_after_s:
                due.append(tp)
        if changed:
            self._notify()
        return due

    def steps(self, tp: TP) -> int:
        """Recovery steps taken for ``tp`` in its current stall episode (0 when not stalled)."""
        watch = self._watch.get(tp)
        return watch.steps if watch is not None and watch.stalled else 0

    def step_taken(self, tps: Iterable[TP], action: str) -> None:
        """A recovery step ``action`` was taken for ``tps``: counted; progress is judged from here,
        and the next step waits a full window."""
        now = self._clock()
        for tp in tps:
            watch = self._watch.get(tp)
            if watch is not None:
                watch.steps += 1
                watch.step_at = now
                watch.anchor = watch.position
            self._recoveries.labels(topic=tp[0], partition=str(tp[1]), action=action).inc()

    def restart(self, tps: Iterable[TP]) -> None:
        """``tps`` were just assigned again (a re-created consumer): their windows start now."""
        now = self._clock()
        for tp in tps:
            watch = self._watch.get(tp)
            if watch is not None:
                self._restart(watch, now)

    def stalled(self) -> dict[TP, Stall]:
        """The partitions stalled now."""
        return {
            tp: Stall(w.position or 0, w.high or 0, w.moved_at) for tp, w in self._watch.items() if w.stalled
        }

    def forget(self, tps: Iterable[TP]) -> None:
        """Stop watching ``tps`` (revoked): their series go, a stall of theirs ends without a verdict."""
        if self._drop(set(tps)):
            self._notify()

    def _progress(self, watch: _Watch, position: int, lag: int, now: float) -> None:
        watch.anchor = position
        watch.need = max(1, min(self.min_progress, lag))
        watch.moved_at = now

    def _restart(self, watch: _Watch, now: float) -> None:
        watch.step_at = now
        if watch.position is not None:
            watch.anchor = watch.position
        if not watch.stalled:
            watch.moved_at = now

    def _drop(self, tps: set[TP]) -> bool:
        changed = False
        for tp in tps:
            watch = self._watch.pop(tp, None)
            if watch is None:
                continue
            changed |= watch.stalled
            with contextlib.suppress(KeyError):
                self._gauge.remove(tp[0], str(tp[1]))
        return changed

    def _clear(self, tp: TP, watch: _Watch, now: float) -> None:
        log.info(
            "partition %s[%d] moves again (position %d) after %.0f s without progress and %d recovery steps",
            tp[0],
            tp[1],
            watch.position if watch.position is not None else -1,
            now - watch.moved_at,
            watch.steps,
        )
        watch.ended_at, watch.ended_steps = now, watch.steps
        watch.stalled, watch.steps = False, 0
        self._set_gauge(tp, 0)

    def _set_gauge(self, tp: TP, value: int) -> None:
        self._gauge.labels(topic=tp[0], partition=str(tp[1])).set(value)

    def _notify(self) -> None:
        if self._on_change is not None:
            self._on_change(self.stalled())


class FetchWaitLadder:
    """The fetch wait a consumer uses now, raised ``factor`` times per step up to ``cap_ms``.

    ``gauge`` (``churn_fetch_wait_ms``) shows the current wait.
    """

    def __init__(self, initial_ms: int, cap_ms: int, factor: int = 4, gauge: Gauge | None = None) -> None:
        self.current = initial_ms
        self.cap_ms = cap_ms
        self.factor = factor
        self._gauge = gauge
        if gauge is not None:
            gauge.set(initial_ms)

    def raise_wait(self) -> int | None:
        """The next, longer wait (now current); None when the cap is reached."""
        if self.current >= self.cap_ms:
            return None
        self.current = min(self.cap_ms, self.current * self.factor)
        if self._gauge is not None:
            self._gauge.set(self.current)
        return self.current


class LookupWatch:
    """Says when the fetch wait should go up before the broker's partition lookups outgrow it.

    A fetch is served partition by partition, each within what is left of its wait. On the
    embedded broker finding a partition's data takes time that grows with the batches it
    holds, and a watermark query (ListOffsets) pays the same lookup: how long the scorer's
    periodic queries take per partition is a direct measure of it. When, for ``rounds``
    rounds in a row, ``partitions x (lookup - baseline)`` exceeds ``share`` of the fetch
    wait and the lookup is at least twice the baseline, a fetch can no longer serve every
    partition in time: the wait should go up now, not after the partitions have stalled.
    The baseline is the fastest lookup seen (round trip and fixed costs): on Apache Kafka,
    whose lookups do not grow with the partition, this does not fire; a few milliseconds
    of jitter on a slow link do not double a lookup. A caller that times its partitions
    one by one gives the slowest as the round's lookup and the fastest for the baseline, so
    that one long partition shows even when it was long from the first round on.
    """

    def __init__(self, rounds: int = 3, share: float = 0.5) -> None:
        self.rounds = rounds
        self.share = share
        self.baseline_s: float | None = None
        self._streak = 0

    def observe(self, lookup_s: float, partitions: int, wait_ms: int, fastest_s: float | None = None) -> bool:
        """One round's lookup time per partition; True when the wait should go up now."""
        fastest = lookup_s if fastest_s is None else min(fastest_s, lookup_s)
        if self.baseline_s is None or fastest < self.baseline_s:
            self.baseline_s = fastest
        needed_ms = 1000 * partitions * (lookup_s - self.baseline_s)
        grown = needed_ms > self.share * wait_ms and lookup_s >= 2 * self.baseline_s
        self._streak = self._streak + 1 if grown else 0
        if self._streak >= self.rounds:
            self._streak = 0
            return True
        return False


def describe(stalls: Mapping[TP, Stall], now: float) -> str:
    """``topic[p] at offset N, L behind for S s; ...``: the readiness reason of stalled partitions."""
    return "; ".join(
        f"{topic}[{partition}] at offset {s.position}, {s.lag} behind for {now - s.since:.0f} s"
        for (topic, partition), s in sorted(stalls.items())
    )
