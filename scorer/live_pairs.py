"""Live data read back from the topics: labelled predictions for `churn models compare`, and the
last-seen features with their outcomes for `churn retrain` (:func:`read_last_seen`).

The predictions topic, the shadow topic and the outcomes topic are read from their start
(no consumer group, nothing committed). Records are decoded by the quality job's readers
(:mod:`scorer.quality_records`: what it refuses is skipped and counted) and joined by its
rule (:class:`scorer.quality_state.QualityState`): an outcome observed at ``t`` labels each
model version's latest prediction for the customer whose event time lies in
``[t - horizon, t]``. Records are fed in time order (predictions by event time, outcomes
by observed time), so a prediction made after an outcome never replaces the one it labels.

The topics are the source, so what can be compared is what their retention keeps: keep
the predictions, shadow and outcomes topics at least as long as the label delay plus the
window you want to compare (docs/mlops.md).
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from config.settings import Settings
from kafka_io.records import RawRecord
from kafka_io.topics import MissingTopicError, iter_topic
from schemas.contract import Rejection, read_event
from schemas.features import FEATURES
from scorer.quality_records import (
    CHALLENGER,
    CHAMPION,
    OutcomeSeen,
    PredictionSeen,
    Refused,
    read_outcome,
    read_prediction,
)
from scorer.quality_state import QualityState
from training.retrain import SeenEvent, SeenOutcome

log = logging.getLogger(__name__)

#: customer_id -> model_version -> (probability, churned)
Labelled = dict[str, dict[str, tuple[float, int]]]


@dataclass
class LivePairs:
    """Every labelled prediction per customer and version, and what was read to find them."""

    labelled: Labelled = field(default_factory=dict)
    read: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    #: The version each role was last seen with (by event time), e.g. to default the challenger.
    latest: dict[str, str] = field(default_factory=dict)

    def versions(self) -> Counter[str]:
        """Labelled predictions per model version."""
        return Counter(version for pairs in self.labelled.values() for version in pairs)

    def paired(self, a: str, b: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Labels and the probabilities of ``a`` and ``b`` for the customers labelled for both."""
        rows = [(p[a][1], p[a][0], p[b][0]) for p in self.labelled.values() if a in p and b in p]
        array = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
        return array[:, 0].astype(np.int64), array[:, 1], array[:, 2]


def join(predictions: list[PredictionSeen], outcomes: list[OutcomeSeen], *, horizon_s: float) -> LivePairs:
    """Join ``predictions`` with ``outcomes`` by the quality job's rule, in time order."""
    state = QualityState({}, {}, {}, window=2**62, horizon_s=horizon_s, grace_s=math.inf, clock=lambda: 0.0)
    pairs = LivePairs()
    timeline: list[tuple[float, int, PredictionSeen | OutcomeSeen]] = [
        (p.event_time, 0, p) for p in predictions
    ]
    timeline += [(o.observed_at, 1, o) for o in outcomes]  # at equal times the prediction goes first
    timeline.sort(key=lambda item: (item[0], item[1]))
    for _, _, item in timeline:
        if isinstance(item, PredictionSeen):
            state.on_prediction(item)
            pairs.latest[item.role] = item.model_version
        else:
            state.on_outcome(item)
    for customer, labelled in state.labelled.items():
        pairs.labelled[customer] = {v: (float(pair[0]), int(pair[1])) for v, pair in labelled.items()}
    return pairs


def read_pairs(settings: Settings, *, idle_s: float = 3.0, timeout_s: float | None = None) -> LivePairs:
    """Read the three topics from their start and join them (see the module docstring)."""
    max_bytes = settings.max_event_bytes
    predictions: list[PredictionSeen] = []
    outcomes: list[OutcomeSeen] = []
    refused: Counter[str] = Counter()
    read: Counter[str] = Counter()
    now = time.time()
    sources = (
        (settings.predictions_topic, CHAMPION),
        (settings.shadow_predictions_topic, CHALLENGER),
        (settings.outcomes_topic, None),
    )
    for topic, role in sources:
        for record in _records(settings, topic, idle_s, timeout_s):
            read[topic] += 1
            seen: PredictionSeen | OutcomeSeen | Refused
            if role is None:
                seen = read_outcome(record, max_bytes, now, settings.max_event_time_skew_s)
            else:
                seen = read_prediction(record, role, max_bytes)
            if isinstance(seen, Refused):
                refused[seen.error_type] += 1
            elif isinstance(seen, PredictionSeen):
                predictions.append(seen)
            else:
                outcomes.append(seen)
    pairs = join(predictions, outcomes, horizon_s=settings.quality_horizon_days * 86400.0)
    pairs.read, pairs.refused = read, refused
    if refused:
        log.warning("skipped %d records that cannot be read: %s", sum(refused.values()), dict(refused))
    return pairs


def _records(settings: Settings, topic: str, idle_s: float, timeout_s: float | None) -> list[RawRecord]:
    out: list[RawRecord] = []
    try:
        for m in iter_topic(
            settings, topic, idle_s=idle_s, timeout_s=timeout_s, client_id="churn-live-pairs"
        ):
            if m.error() is not None:
                continue
            out.append(
                RawRecord(
                    m.value(),  # type: ignore[arg-type]
                    m.key(),  # type: ignore[arg-type]
                    topic,
                    m.partition() or 0,
                    m.offset() or 0,
                    m.timestamp()[1] / 1000,
                    m.headers(),  # type: ignore[arg-type]
                )
            )
    except MissingTopicError:
        log.warning("topic %s does not exist: nothing read from it", topic)
    return out


def read_last_seen(
    settings: Settings, *, idle_s: float = 3.0, timeout_s: float | None = None
) -> tuple[list[SeenEvent], list[SeenOutcome], Counter[str]]:
    """Every valid event and outcome of the events and outcomes topics, from their start.

    Events are read by the input contract (:func:`schemas.contract.read_event`, as the scorer
    reads them); an event or outcome it refuses is skipped and counted (``<topic>:skipped``).
    """
    counts: Counter[str] = Counter()
    events: list[SeenEvent] = []
    topic = settings.events_topic
    for record in _records(settings, topic, idle_s, timeout_s):
        counts[topic] += 1
        event = read_event(record.value, settings.max_event_bytes)
        if isinstance(event, Rejection):
            counts[f"{topic}:skipped"] += 1
            continue
        # An event without event_time happened when it was written: the record's timestamp.
        when = event.event_time.timestamp() if event.event_time is not None else record.timestamp
        if when is None:
            counts[f"{topic}:skipped"] += 1
            continue
        features = {name: getattr(event, name) for name in FEATURES}
        events.append(SeenEvent(event.customer_id, when, features))
    outcomes: list[SeenOutcome] = []
    topic, now = settings.outcomes_topic, time.time()
    for record in _records(settings, topic, idle_s, timeout_s):
        counts[topic] += 1
        seen = read_outcome(record, settings.max_event_bytes, now, settings.max_event_time_skew_s)
        if isinstance(seen, Refused):
            counts[f"{topic}:skipped"] += 1
            continue
        outcomes.append(SeenOutcome(seen.customer_id, seen.churned, seen.observed_at))
    return events, outcomes, counts
