"""One retrain at a time, started by alerts or a schedule: coalescing and a cooldown.

:class:`TriggerState` is the rule, on a clock it is given (no thread, no sleep):

* a trigger that arrives while nothing runs, nothing waits and the cooldown has passed
  starts a run now (``started``);
* otherwise it becomes the one follow-up run (``queued``), or joins the follow-up already
  waiting (``coalesced``): however many triggers arrive during a run, one more run follows;
* the follow-up starts once the running retrain has ended **and** ``cooldown_s`` has passed
  since the previous run started, so a flapping alert retrains at most once per cooldown.

A follow-up reads the topics afresh when it starts, so it sees what the alerts that queued it
saw. :class:`RetrainTrigger` runs the rule in one worker thread around a ``run`` function that
receives the triggers it serves (their alerts go into the decision's evidence).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

log = logging.getLogger(__name__)

Outcome = Literal["started", "queued", "coalesced"]


@dataclass(frozen=True)
class Trigger:
    """Why a retrain was asked for: ``source`` is ``alert`` or ``schedule``."""

    source: str
    alerts: tuple[Mapping[str, Any], ...] = ()
    received_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def as_evidence(self) -> dict[str, Any]:
        alerts = [dict(a) for a in self.alerts]
        return {"source": self.source, "received_at": self.received_at, "alerts": alerts}


class TriggerState:
    """The coalescing and cooldown rule (see the module docstring); ``now`` comes from the caller."""

    def __init__(self, cooldown_s: float) -> None:
        if cooldown_s < 0:
            raise ValueError("cooldown_s must be >= 0")
        self.cooldown_s = cooldown_s
        self.running = False
        self.pending: list[Trigger] = []
        self.last_start: float | None = None

    def submit(self, trigger: Trigger, now: float) -> Outcome:
        if self.pending:
            self.pending.append(trigger)
            return "coalesced"
        self.pending.append(trigger)
        return "started" if not self.running and self.wait_s(now) == 0 else "queued"

    def wait_s(self, now: float) -> float:
        """Seconds until the cooldown since the last start has passed (0: it has)."""
        if self.last_start is None:
            return 0.0
        return max(0.0, self.last_start + self.cooldown_s - now)

    def take(self, now: float) -> list[Trigger] | None:
        """The triggers of the run to start now, or ``None`` (running, nothing waiting, or cooling down)."""
        if self.running or not self.pending or self.wait_s(now) > 0:
            return None
        batch, self.pending = self.pending, []
        self.running = True
        self.last_start = now
        return batch

    def finished(self) -> None:
        self.running = False


class RetrainTrigger:
    """A worker thread that runs ``run(triggers)`` under :class:`TriggerState`'s rule.

    ``run`` returns the decision (``promoted``, ``kept_challenger``, ``skipped``); an exception
    is logged and reported as ``failed``. ``on_run`` hears of every run's start
    (``decision=None``) and end.
    """

    def __init__(
        self,
        run: Callable[[Sequence[Trigger]], str],
        *,
        cooldown_s: float,
        on_run: Callable[[str | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run = run
        self._on_run = on_run or (lambda _decision: None)
        self._clock = clock
        self._state = TriggerState(cooldown_s)
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="retrain-trigger", daemon=True)
        self.last_decision: str | None = None
        self.runs = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, trigger: Trigger) -> Outcome:
        with self._cond:
            outcome = self._state.submit(trigger, self._clock())
            self._cond.notify_all()
        log.info(
            "retrain_trigger source=%s alerts=%s outcome=%s",
            trigger.source,
            ",".join(str(a.get("alertname", "")) for a in trigger.alerts) or "-",
            outcome,
        )
        return outcome

    def status(self) -> dict[str, Any]:
        with self._cond:
            return {
                "running": self._state.running,
                "pending_triggers": len(self._state.pending),
                "cooldown_remaining_s": round(self._state.wait_s(self._clock()), 3),
                "runs": self.runs,
                "last_decision": self.last_decision,
            }

    def stop(self, timeout: float | None = None) -> None:
        """Start nothing more (a waiting follow-up is dropped, logged); wait for a running retrain."""
        with self._cond:
            self._stopping = True
            dropped = len(self._state.pending)
            self._cond.notify_all()
        if dropped:
            log.warning("retrain_trigger_stopped dropped_triggers=%d", dropped)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    batch = self._state.take(self._clock())
                    if batch is not None:
                        break
                    # Waiting for a trigger or the run's end (notified), or for the cooldown to pass.
                    idle = self._state.running or not self._state.pending
                    self._cond.wait(None if idle else self._state.wait_s(self._clock()))
            self._on_run(None)
            decision = "failed"
            try:
                decision = self._run(batch)
            except Exception:  # a failed run (broker away, bad data) must not stop the trigger
                log.exception("retrain_run_failed triggers=%d", len(batch))
            finally:
                with self._cond:
                    self._state.finished()
                    self.runs += 1
                    self.last_decision = decision
                    self._cond.notify_all()
                self._on_run(decision)
