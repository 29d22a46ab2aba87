"""The scorer's work on one micro-batch of raw Kafka records, as one pure function.

:func:`score_batch` decodes, validates and scores a batch and returns the
records to write — predictions and dead letters — plus the figures the metrics
need. It knows nothing of Faust or of any Kafka client: the Faust worker
(:mod:`scorer.faust_engine`) and the native confluent-kafka engine (:mod:`scorer.native_engine`)
both wrap it, so both have the same semantics.

Rules:
- every input record yields exactly one output record: a prediction, or a dead
  letter with the original value bytes unchanged and reason headers;
- valid records are scored with one ``Predictor.predict_columns`` call;
- nothing here raises on bad input.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import orjson

from kafka_io.records import OutRecord, RawRecord
from schemas import dead_letters
from schemas.contract import Rejection, derived_event_id, future_rejection, read_event
from schemas.dead_letters import DeadLetter
from schemas.predictions import prediction_payloads
from scorer.fast_check import columns_of, read_batch


class BatchPredictor(Protocol):
    """What the batch core needs from :class:`models.predictor.Predictor`."""

    @property
    def version(self) -> str: ...

    @property
    def threshold(self) -> float: ...

    def predict_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray: ...


@dataclass(frozen=True)
class BatchLimits:
    max_event_bytes: int = 64 * 1024
    #: An event_time more than this far ahead of the scorer's clock is refused.
    max_future_skew_s: float = 300.0


@dataclass
class BatchResult:
    predictions: list[OutRecord] = field(default_factory=list)
    dead_letters: list[OutRecord] = field(default_factory=list)
    #: Churn probability of each prediction, in the order of ``predictions``.
    probabilities: np.ndarray = field(default_factory=lambda: np.empty(0))
    #: ``event_time`` of each prediction, epoch seconds (for end-to-end latency).
    event_times: list[float] = field(default_factory=list)
    dead_letter_types: Counter[str] = field(default_factory=Counter)
    churned: int = 0
    model_version: str = ""
    inference_seconds: float = 0.0
    total_seconds: float = 0.0

    @property
    def consumed(self) -> int:
        return len(self.predictions) + len(self.dead_letters)


Clock = Callable[[], float]


def score_batch(
    records: Sequence[RawRecord],
    predictor: BatchPredictor,
    limits: BatchLimits,
    clock: Clock = time.time,
) -> BatchResult:
    """Decode, validate and score ``records``; one output record per input record.

    The whole batch is decoded and validated in C by the fast path
    (:func:`scorer.fast_check.read_batch`); only the rows it cannot vouch for
    go through the input contract (:func:`schemas.contract.read_event`: orjson and
    the pydantic model), which also words the error of a record it refuses.
    An event without ``event_id`` gets ``topic:partition:offset``; one without
    ``event_time`` gets the record's timestamp (and is not checked against the clock).
    """
    started = time.perf_counter()
    now = clock()
    failed_at = datetime.fromtimestamp(now, UTC)
    result = BatchResult(model_version=predictor.version)
    refused: list[tuple[int, Rejection]] = []

    fast = read_batch(_fast_candidates(records, limits.max_event_bytes))
    events, times = fast.events, fast.event_times
    for row in fast.slow:
        event = read_event(records[row].value, limits.max_event_bytes)
        if isinstance(event, Rejection):
            refused.append((row, event))
            continue
        events[row] = event
        times[row] = event.event_time
    valid: Sequence[int] = [row for row, event in enumerate(events) if event is not None]

    valid_times: list[datetime] = [times[row] for row in valid]  # type: ignore[misc]
    own_time = _fill_record_times(valid_times, valid, records, now)
    timestamps = [when.timestamp() for when in valid_times]
    latest_allowed = now + limits.max_future_skew_s
    if timestamps and max(timestamps) > latest_allowed:
        keep = [k for k, ts in enumerate(timestamps) if ts <= latest_allowed or not own_time[k]]
        for k, ts in enumerate(timestamps):
            if ts > latest_allowed and own_time[k]:
                refused.append((valid[k], future_rejection(valid_times[k], limits.max_future_skew_s)))
        valid = [valid[k] for k in keep]
        valid_times = [valid_times[k] for k in keep]
        timestamps = [timestamps[k] for k in keep]

    for row, rejection in sorted(refused, key=lambda r: r[0]):
        _dead_letter(
            result, records[row], rejection.error_type, rejection.message, failed_at, rejection.field
        )
    if valid:
        columns = columns_of([events[row] for row in valid])
        raws = [records[row] for row in valid]
        _fill_event_ids(columns["event_id"], raws)
        _score(result, columns, valid_times, timestamps, raws, predictor, now, failed_at)
    result.total_seconds = time.perf_counter() - started
    return result


def _fill_record_times(
    times: list[datetime], rows: Sequence[int], records: Sequence[RawRecord], now: float
) -> list[bool]:
    """Fill each missing event time with its record's timestamp; whether each row had its own time."""
    if None not in times:
        return [True] * len(times)
    own = [True] * len(times)
    for k, when in enumerate(times):
        if when is None:
            stamp = records[rows[k]].timestamp
            # no timestamp (or librdkafka's -1 for "not available"): the time the scorer read it
            times[k] = datetime.fromtimestamp(stamp if stamp is not None and stamp > 0 else now, UTC)
            own[k] = False
    return own


def _fill_event_ids(ids: list[Any], records: Sequence[RawRecord]) -> None:
    """Give each event without an id the id of its place on the topic (the same on a re-read)."""
    if None not in ids:
        return
    for k, event_id in enumerate(ids):
        if event_id is None:
            record = records[k]
            ids[k] = derived_event_id(record.topic, record.partition, record.offset)


def _fast_candidates(records: Sequence[RawRecord], max_bytes: int) -> list[bytes]:
    """Each record's value for the fast path; b"" (never an event) for one it must not take.

    A tombstone or an oversize value is refused even when its value is a valid
    event, so it goes to the slow path, which says why.
    """
    values = [record.value for record in records]
    if None not in values and max(map(len, values), default=0) <= max_bytes:  # type: ignore[arg-type]
        return values  # type: ignore[return-value]
    return [value if value is not None and len(value) <= max_bytes else b"" for value in values]


def _dead_letter(
    result: BatchResult,
    record: RawRecord,
    error_type: str,
    message: str,
    failed_at: datetime,
    field: str = "",
) -> None:
    letter = DeadLetter(
        error_type=error_type,
        error_message=dead_letters.clip(message),
        error_field=field,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        failed_at=failed_at,
    )
    result.dead_letters.append(OutRecord(key=record.key, value=record.value, headers=letter.headers()))
    result.dead_letter_types[error_type] += 1


def _score(
    result: BatchResult,
    columns: dict[str, list[Any]],
    event_times: list[datetime],
    timestamps: list[float],
    raws: list[RawRecord],
    predictor: BatchPredictor,
    now: float,
    failed_at: datetime,
) -> None:
    n = len(raws)
    inference_started = time.perf_counter()
    try:
        probabilities = np.asarray(predictor.predict_columns(columns, n), dtype=np.float64)
        if probabilities.shape != (n,) or not np.isfinite(probabilities).all():
            raise ValueError(f"the model returned {probabilities.shape} probabilities for {n} events")
    except Exception as exc:
        message = f"model {predictor.version} failed on this batch: {type(exc).__name__}: {exc}"
        for raw in raws:
            _dead_letter(result, raw, dead_letters.SCORING_FAILED, message, failed_at)
        return
    result.inference_seconds = time.perf_counter() - inference_started

    version = predictor.version
    version_header = ("model_version", version.encode())
    ids = columns["event_id"]
    customer_ids = columns["customer_id"]
    payloads = prediction_payloads(
        ids,
        customer_ids,
        event_times,
        probabilities.tolist(),
        predictor.threshold,
        version,
        datetime.fromtimestamp(now, UTC).isoformat(),  # once per batch, as orjson writes a datetime
    )
    headers = [[("event_id", event_id), version_header] for event_id in map(str.encode, ids)]
    keys = map(str.encode, customer_ids)
    result.predictions.extend(map(OutRecord, keys, map(orjson.dumps, payloads), headers))
    result.event_times = timestamps
    result.probabilities = probabilities
    result.churned = int(np.count_nonzero(probabilities >= predictor.threshold))
