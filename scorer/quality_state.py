"""The online-quality job's state: recent predictions joined with observed outcomes, in three tables.

The tables are plain mappings here (dicts in the unit tests, changelog-backed Faust
tables in ``churn quality``, see :mod:`scorer.quality_job`); every change is one
assignment or deletion of a whole value, so each one is one changelog record and a
restarted job rebuilds exactly this state. Values are JSON lists; times are epoch seconds.

=============  ==============================  =======================================================
table          key                             value
=============  ==============================  =======================================================
predictions    customer_id                     ``{model_version: [probability, threshold, event_time,
                                               scored_at, role]}``: the latest prediction (by event
                                               time) of each version for the customer
labelled       customer_id                     ``{model_version: [probability, churned, threshold,
                                               observed_at, event_time, role]}``: the customer's
                                               prediction joined with its outcome
pending        customer_id                     ``[churned, observed_at, received_at, joined]``: the
                                               customer's latest outcome, kept for ``grace_s``
=============  ==============================  =======================================================

**Join.** An outcome observed at ``t`` labels, for each model version, the customer's
prediction if its event time lies in ``[t - horizon, t]`` (a prediction made after the
outcome was observed is not labelled). Outcomes and predictions come from different
topics, so either may arrive first: every outcome waits in ``pending`` for ``grace_s``
and also labels the predictions that arrive in that time (a challenger's shadow
prediction behind the champion's, a predictions topic catching up after a restart). An
outcome that labelled nothing by then counts as unmatched. Joining the same outcome
with the same prediction again (a record read twice after a crash) changes nothing.

**Window.** Each version keeps its latest ``window`` labelled predictions by
``observed_at``; older pairs are deleted from ``labelled`` as new ones come, and pairs
observed before the horizon are swept like predictions.

**Horizon.** Predictions whose event time is older than the horizon are deleted by a
periodic sweep (:meth:`QualityState.sweep`) rather than a windowed table: the join
needs only the latest prediction per customer and version, which a sweep keeps in one
key, where a windowed table keeps one key per window and a lookup must scan them all.
The sweep measures age against the stream's own clock, the newest event time seen (never
ahead of the wall clock), so a replay of last year's data is not swept away on arrival.
An in-memory heap of each customer's oldest event time makes a sweep cost only what it
removes; it is rebuilt from the tables after recovery (:meth:`QualityState.rebuild`).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from scorer.quality_records import OutcomeSeen, PredictionSeen

Table = MutableMapping[Any, Any]

# Positions in the table values (JSON lists).
_P_PROB, _P_THRESHOLD, _P_EVENT_TIME, _P_SCORED_AT, _P_ROLE = range(5)
_L_PROB, _L_CHURNED, _L_THRESHOLD, _L_OBSERVED_AT, _L_EVENT_TIME, _L_ROLE = range(6)
_O_CHURNED, _O_OBSERVED_AT, _O_RECEIVED_AT, _O_JOINED = range(4)

#: Most entries one sweep removes; the rest wait for the next sweep, so the event loop is not held long.
SWEEP_LIMIT = 50_000


class JoinObserver(Protocol):
    """What the state reports as it joins (the job counts these in Prometheus)."""

    def joined(self, version: str, role: str, label_delay_s: float) -> None: ...

    def unmatched(self) -> None: ...


@dataclass
class VersionWindow:
    """One model version's labelled predictions in the window, oldest first."""

    version: str
    role: str
    probabilities: np.ndarray
    labels: np.ndarray
    thresholds: np.ndarray

    def __len__(self) -> int:
        return int(self.probabilities.size)


@dataclass
class SweepReport:
    predictions_dropped: int = 0
    labelled_dropped: int = 0
    outcomes_expired: int = 0
    unmatched: int = 0


@dataclass
class _Counts:
    """In-memory indexes over the tables, rebuilt from them after recovery."""

    expiry: list[tuple[float, str]] = field(default_factory=list)  # (oldest event_time, customer)
    windows: dict[str, list[tuple[float, str]]] = field(
        default_factory=dict
    )  # version -> (observed_at, customer)
    sizes: dict[str, int] = field(default_factory=dict)  # version -> pairs in `labelled`
    pending: list[tuple[float, float, str]] = field(default_factory=list)  # (expires, received_at, customer)
    tracked: int = 0  # (customer, version) entries in `predictions`


class QualityState:
    """The join of outcomes with predictions over the three tables (see the module docstring)."""

    def __init__(
        self,
        predictions: Table,
        labelled: Table,
        pending: Table,
        *,
        window: int,
        horizon_s: float,
        grace_s: float,
        observer: JoinObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.predictions = predictions
        self.labelled = labelled
        self.pending = pending
        self.window = window
        self.horizon_s = horizon_s
        self.grace_s = grace_s
        self.observer = observer
        self.clock = clock
        self.stream_time = 0.0
        self._started = clock()
        self._counts = _Counts()

    # ------------------------------------------------------------------ records
    def on_prediction(self, seen: PredictionSeen) -> None:
        """Keep ``seen`` as its customer's latest prediction of its version; label it if an outcome waits."""
        customer, version = seen.customer_id, seen.model_version
        old = self.predictions.get(customer) or {}
        current = old.get(version)
        if current is not None and current[_P_EVENT_TIME] > seen.event_time:
            return  # an older event of this customer arriving late: the newer prediction stays
        entry = dict(old)
        entry[version] = [seen.probability, seen.threshold, seen.event_time, seen.scored_at, seen.role]
        self.predictions[customer] = entry
        if current is None:
            self._counts.tracked += 1
        oldest_before = min((r[_P_EVENT_TIME] for r in old.values()), default=None)
        if oldest_before is None or seen.event_time < oldest_before:
            heapq.heappush(self._counts.expiry, (seen.event_time, customer))
        self._advance(seen.event_time)

        waiting = self.pending.get(customer)
        if waiting is None:
            return
        observed_at = waiting[_O_OBSERVED_AT]
        if not self._joinable(seen.event_time, observed_at):
            return
        labelled = self._join(customer, version, entry[version], bool(waiting[_O_CHURNED]), observed_at)
        if labelled and not waiting[_O_JOINED]:
            self.pending[customer] = [*waiting[:_O_JOINED], 1]

    def on_outcome(self, seen: OutcomeSeen) -> None:
        """Label the customer's predictions with ``seen``, and keep it ``grace_s`` for those still to come."""
        customer, observed_at = seen.customer_id, seen.observed_at
        self._advance(observed_at)
        previous = self.pending.get(customer)
        if previous is not None and not previous[_O_JOINED] and self.observer is not None:
            self.observer.unmatched()  # replaced before it found a prediction
        joined = False
        for version, record in (self.predictions.get(customer) or {}).items():
            if self._joinable(record[_P_EVENT_TIME], observed_at):
                self._join(customer, version, record, seen.churned, observed_at)
                joined = True
        received_at = self.clock()
        self.pending[customer] = [int(seen.churned), observed_at, received_at, int(joined)]
        heapq.heappush(self._counts.pending, (received_at + self.grace_s, received_at, customer))

    def _joinable(self, event_time: float, observed_at: float) -> bool:
        return event_time <= observed_at and observed_at - event_time <= self.horizon_s

    def _join(
        self, customer: str, version: str, record: list[Any], churned: bool, observed_at: float
    ) -> bool:
        """Label one prediction; False if exactly this pair is already labelled."""
        pairs = dict(self.labelled.get(customer) or {})
        previous = pairs.get(version)
        pair = [
            record[_P_PROB],
            int(churned),
            record[_P_THRESHOLD],
            observed_at,
            record[_P_EVENT_TIME],
            record[_P_ROLE],
        ]
        if previous == pair:
            return False
        pairs[version] = pair
        self.labelled[customer] = pairs
        counts = self._counts
        if previous is None:
            counts.sizes[version] = counts.sizes.get(version, 0) + 1
        heapq.heappush(counts.windows.setdefault(version, []), (observed_at, customer))
        if self.observer is not None:
            self.observer.joined(version, record[_P_ROLE], observed_at - record[_P_EVENT_TIME])
        self._trim(version)
        return True

    def _trim(self, version: str) -> None:
        """Delete the version's oldest pairs beyond the window."""
        counts = self._counts
        heap = counts.windows.get(version, [])
        while counts.sizes.get(version, 0) > self.window and heap:
            observed_at, customer = heapq.heappop(heap)
            self._drop_pair(customer, version, observed_at)

    def _drop_pair(self, customer: str, version: str, observed_at: float) -> bool:
        """Delete one labelled pair; False if the index entry is stale (the pair was replaced since)."""
        pairs = self.labelled.get(customer)
        if not pairs or version not in pairs or pairs[version][_L_OBSERVED_AT] != observed_at:
            return False
        rest = {v: p for v, p in pairs.items() if v != version}
        if rest:
            self.labelled[customer] = rest
        else:
            del self.labelled[customer]
        self._counts.sizes[version] -= 1
        return True

    def _advance(self, when: float) -> None:
        if when > self.stream_time:
            self.stream_time = min(when, self.clock())

    # ------------------------------------------------------------------ housekeeping
    def sweep(self, limit: int = SWEEP_LIMIT) -> SweepReport:
        """Drop predictions older than the horizon and outcomes whose grace has passed."""
        report = SweepReport()
        counts = self._counts
        if self.stream_time > 0:
            cutoff = min(self.stream_time, self.clock()) - self.horizon_s
            while counts.expiry and counts.expiry[0][0] < cutoff and limit > 0:
                _, customer = heapq.heappop(counts.expiry)
                entry = self.predictions.get(customer)
                if not entry:
                    continue
                keep = {v: r for v, r in entry.items() if r[_P_EVENT_TIME] >= cutoff}
                dropped = len(entry) - len(keep)
                if keep:
                    if dropped:
                        self.predictions[customer] = keep
                    heapq.heappush(counts.expiry, (min(r[_P_EVENT_TIME] for r in keep.values()), customer))
                else:
                    del self.predictions[customer]
                counts.tracked -= dropped
                report.predictions_dropped += dropped
                limit -= max(dropped, 1)
            # Labelled pairs observed before the horizon: a version that stopped predicting
            # leaves the dashboard once its last outcomes are that old.
            for version, heap in counts.windows.items():
                while heap and heap[0][0] < cutoff and limit > 0:
                    observed_at, customer = heapq.heappop(heap)
                    if self._drop_pair(customer, version, observed_at):
                        report.labelled_dropped += 1
                        limit -= 1
        now = self.clock()
        while counts.pending and counts.pending[0][0] < now and limit > 0:
            _, received_at, customer = heapq.heappop(counts.pending)
            waiting = self.pending.get(customer)
            if waiting is None or waiting[_O_RECEIVED_AT] != received_at:
                continue  # replaced by a newer outcome of the customer
            del self.pending[customer]
            report.outcomes_expired += 1
            limit -= 1
            if not waiting[_O_JOINED]:
                report.unmatched += 1
                if self.observer is not None:
                    self.observer.unmatched()
        return report

    def rebuild(self) -> None:
        """Rebuild the in-memory indexes from the tables (after Faust recovered them)."""
        counts = _Counts()
        latest = 0.0
        for customer, entry in self.predictions.items():
            if not entry:
                continue
            times = [r[_P_EVENT_TIME] for r in entry.values()]
            counts.expiry.append((min(times), customer))
            counts.tracked += len(entry)
            latest = max(latest, *times)
        heapq.heapify(counts.expiry)
        for customer, pairs in self.labelled.items():
            for version, pair in (pairs or {}).items():
                counts.windows.setdefault(version, []).append((pair[_L_OBSERVED_AT], customer))
                counts.sizes[version] = counts.sizes.get(version, 0) + 1
                latest = max(latest, pair[_L_OBSERVED_AT])
        for heap in counts.windows.values():
            heapq.heapify(heap)
        # Outcomes that waited before the restart get a full grace period from now.
        for customer, waiting in self.pending.items():
            received_at = waiting[_O_RECEIVED_AT]
            counts.pending.append((max(received_at, self._started) + self.grace_s, received_at, customer))
            latest = max(latest, waiting[_O_OBSERVED_AT])
        heapq.heapify(counts.pending)
        self._counts = counts
        self.stream_time = max(self.stream_time, min(latest, self.clock()))
        for version in list(counts.sizes):
            self._trim(version)  # the window may be smaller than before the restart

    # ------------------------------------------------------------------ reading
    @property
    def tracked(self) -> int:
        """(customer, version) predictions held for joining."""
        return self._counts.tracked

    def sizes(self) -> dict[str, int]:
        """Labelled pairs in the window, per model version."""
        return {v: n for v, n in self._counts.sizes.items() if n}

    def windows(self) -> dict[str, VersionWindow]:
        """Each version's labelled predictions in the window (read from the ``labelled`` table)."""
        columns: dict[str, list[list[Any]]] = {}
        for pairs in self.labelled.values():
            for version, pair in (pairs or {}).items():
                columns.setdefault(version, []).append(pair)
        return {version: _window(version, pairs) for version, pairs in columns.items()}


def _window(version: str, pairs: Iterable[list[Any]]) -> VersionWindow:
    ordered = sorted(pairs, key=lambda p: p[_L_OBSERVED_AT])
    array = np.asarray([p[:_L_OBSERVED_AT] for p in ordered], dtype=np.float64).reshape(-1, 3)
    return VersionWindow(
        version=version,
        role=str(ordered[-1][_L_ROLE]) if ordered else "",
        probabilities=array[:, _L_PROB],
        labels=array[:, _L_CHURNED].astype(np.int64),
        thresholds=array[:, _L_THRESHOLD],
    )
