"""Is the scorer ready, is it alive? Named conditions that the parts of the runtime set.

The scorer is **ready** when every condition holds. Each condition has one owner,
which sets it whenever its view changes:

=============  ===================================================  ==========================
condition      false while                                          set by
=============  ===================================================  ==========================
``model``      no verified model is loaded                          the engine, at start
``assignment`` the consumer group has given this process no         the engine's rebalance
               partition (before the first join, after a revoke)    callbacks
``broker``     the broker does not answer metadata requests         the broker watch
``delivery``   an output delivery has been failing past its limit   the delivery sink
``scoring``    the model-failure breaker has paused consuming       the batch handler
``stall``      an assigned partition has stopped moving with lag    the stall detector
=============  ===================================================  ==========================

A condition nobody has set counts as holding, except ``assignment``, which starts
false: a scorer is not ready before it owns a partition. ``churn_scorer_ready``
mirrors the verdict and ``churn_scorer_condition{condition}`` each condition, so a
dashboard shows why a scorer is not ready; ``/health/ready`` answers the same
(:mod:`scorer.web`).

The scorer is **alive** while its consuming loop beats (:meth:`Readiness.beat`) at
least every ``live_timeout_s``: a process whose loop is wedged answers HTTP from
its server thread but stops beating, and an orchestrator restarts it.

:class:`Readiness` takes its list of conditions and those that start false, so the
online-quality job (``churn quality``) keeps its own (``assignment``, ``recovery``)
with the same semantics; the defaults are the scorer's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from prometheus_client import Gauge

log = logging.getLogger(__name__)

MODEL: Final = "model"
ASSIGNMENT: Final = "assignment"
BROKER: Final = "broker"
DELIVERY: Final = "delivery"
SCORING: Final = "scoring"
STALL: Final = "stall"
CONDITIONS: Final = (MODEL, ASSIGNMENT, BROKER, DELIVERY, SCORING, STALL)
#: Conditions that start false, with their reason.
INITIALLY_FAILING: Final = {ASSIGNMENT: "no partition assigned yet"}


@dataclass(frozen=True)
class Verdict:
    """What ``/health/ready`` reports: ready or not, and the reason of each failing condition."""

    ready: bool
    failing: Mapping[str, str]


class Readiness:
    """A process's readiness conditions and liveness beat (the scorer's by default); thread-safe."""

    def __init__(
        self,
        ready_gauge: Gauge,
        condition_gauge: Gauge,
        *,
        live_timeout_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        conditions: Sequence[str] = CONDITIONS,
        initially_failing: Mapping[str, str] = INITIALLY_FAILING,
        name: str = "scorer",
    ) -> None:
        unknown = set(initially_failing) - set(conditions)
        if unknown:
            raise ValueError(
                f"initially failing conditions {sorted(unknown)} are not among {list(conditions)}"
            )
        self._ready_gauge = ready_gauge
        self._condition_gauge = condition_gauge
        self.live_timeout_s = live_timeout_s
        self.conditions = tuple(conditions)
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._failing: dict[str, str] = dict(initially_failing)
        self._last_beat: float | None = None
        for condition in self.conditions:
            condition_gauge.labels(condition=condition).set(0 if condition in self._failing else 1)
        ready_gauge.set(0 if self._failing else 1)

    def set(self, condition: str, ok: bool, reason: str = "") -> None:
        """Record one condition; ``reason`` says what is wrong while it does not hold."""
        if condition not in self.conditions:
            known = ", ".join(self.conditions)
            raise ValueError(f"unknown readiness condition {condition!r}; known: {known}")
        with self._lock:
            was_ready = not self._failing
            before = self._failing.get(condition)
            if ok:
                self._failing.pop(condition, None)
            else:
                self._failing[condition] = reason or f"{condition} does not hold"
            after = self._failing.get(condition)
            ready = not self._failing
            failing = dict(self._failing)
        self._condition_gauge.labels(condition=condition).set(1 if ok else 0)
        self._ready_gauge.set(1 if ready else 0)
        if before != after:
            if ok:
                log.info("readiness condition %s holds again", condition)
            else:
                log.warning("readiness condition %s does not hold: %s", condition, after)
        if ready != was_ready:
            if ready:
                log.info("%s ready", self.name)
            else:
                reasons = "; ".join(f"{k}: {v}" for k, v in failing.items())
                log.warning("%s not ready: %s", self.name, reasons)

    def verdict(self) -> Verdict:
        with self._lock:
            return Verdict(ready=not self._failing, failing=dict(self._failing))

    @property
    def ready(self) -> bool:
        return self.verdict().ready

    def beat(self) -> None:
        """Called by the consuming loop on every turn (and while it waits on the broker)."""
        self._last_beat = self._clock()

    def alive(self) -> tuple[bool, float | None]:
        """``(alive, seconds since the last beat)``; alive until the first beat is overdue."""
        last = self._last_beat
        if last is None:
            return True, None
        since = self._clock() - last
        return since <= self.live_timeout_s, since
