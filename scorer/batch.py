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

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import orjson
from pydantic import ValidationError

from kafka_io.records import OutRecord, RawRecord
from schemas import dead_letters
from schemas.dead_letters import DeadLetter
from schemas.events import CustomerEvent
from schemas.features import SCHEMA_VERSION
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

# A key is a JSON string followed by a colon; counts keys at every level (and, rarely,
# such patterns inside string values) — an upper bound used to skip the exact check.
_KEY_PATTERN = re.compile(rb'"\s*:')
_NON_FINITE_TOKENS = (b"NaN", b"Infinity", b"-Infinity")
_LAST_KEY = re.compile(rb'"([^"\\]{1,64})"\s*:[^:]*$')


class _RejectedError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def score_batch(
    records: Sequence[RawRecord],
    predictor: BatchPredictor,
    limits: BatchLimits,
    clock: Clock = time.time,
) -> BatchResult:
    """Decode, validate and score ``records``; one output record per input record.

    The whole batch is decoded and validated in C by the fast path
    (:func:`scorer.fast_check.read_batch`); only the rows it cannot vouch for
    are decoded with orjson and validated with the pydantic model, which also
    words the error of a record it refuses.
    """
    started = time.perf_counter()
    now = clock()
    failed_at = datetime.fromtimestamp(now, UTC)
    result = BatchResult(model_version=predictor.version)
    refused: list[tuple[int, str, str]] = []  # (row, error_type, message)

    fast = read_batch(_fast_candidates(records, limits.max_event_bytes))
    events, times = fast.events, fast.event_times
    for row in fast.slow:
        try:
            event = _model_validate(_decode(records[row], limits.max_event_bytes))
        except _RejectedError as exc:
            refused.append((row, exc.error_type, exc.message))
            continue
        events[row] = event
        times[row] = event.event_time
    valid: Sequence[int] = [row for row, event in enumerate(events) if event is not None]

    latest_allowed = now + limits.max_future_skew_s
    timestamps = [times[row].timestamp() for row in valid]  # type: ignore[union-attr]
    if timestamps and max(timestamps) > latest_allowed:
        keep = [k for k, ts in enumerate(timestamps) if ts <= latest_allowed]
        for k, ts in enumerate(timestamps):
            if ts > latest_allowed:
                when = times[valid[k]].isoformat()  # type: ignore[union-attr]
                skew = limits.max_future_skew_s
                message = f"event_time: {when} is more than {skew:g} s ahead of the scorer clock"
                refused.append((valid[k], dead_letters.EVENT_FROM_FUTURE, message))
        valid = [valid[k] for k in keep]
        timestamps = [timestamps[k] for k in keep]

    for row, error_type, message in sorted(refused, key=lambda r: r[0]):
        _dead_letter(result, records[row], error_type, message, failed_at)
    if valid:
        columns = columns_of([events[row] for row in valid])
        valid_times: list[datetime] = [times[row] for row in valid]  # type: ignore[misc]
        raws = [records[row] for row in valid]
        _score(result, columns, valid_times, timestamps, raws, predictor, now, failed_at)
    result.total_seconds = time.perf_counter() - started
    return result


def _fast_candidates(records: Sequence[RawRecord], max_bytes: int) -> list[bytes]:
    """Each record's value for the fast path; b"" (never canonical) for one it must not take.

    A record with no key or an oversize value is refused even when its value is
    a valid event, so it goes to the slow path, which says why.
    """
    values = [record.value for record in records]
    keys = [record.key for record in records]
    if None not in values and None not in keys and max(map(len, values), default=0) <= max_bytes:  # type: ignore[arg-type]
        return values  # type: ignore[return-value]
    return [
        value if value is not None and record.key is not None and len(value) <= max_bytes else b""
        for value, record in zip(values, records, strict=True)
    ]


def _decode(record: RawRecord, max_bytes: int) -> dict[str, Any]:
    """The record's value as a JSON object, or the reason it is not one."""
    value = record.value
    if not value or value.isspace():
        raise _RejectedError(dead_letters.EMPTY_VALUE, "record value is empty")
    if record.key is None:
        # Producers key events by customer_id so that one customer's events stay in order on
        # one partition; an unkeyed event may overtake or trail that customer's others.
        raise _RejectedError(dead_letters.MISSING_KEY, "record has no key; key events by customer_id")
    if len(value) > max_bytes:
        raise _RejectedError(
            dead_letters.OVERSIZE, f"record value is {len(value)} bytes; the limit is {max_bytes}"
        )
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise _json_error(value, exc) from None
    if not isinstance(obj, dict):
        kind = "array" if isinstance(obj, list) else type(obj).__name__
        raise _RejectedError(dead_letters.NOT_AN_OBJECT, f"record is a JSON {kind}, not an object")
    duplicate = _duplicate_key(value, obj)
    if duplicate is not None:
        raise _RejectedError(dead_letters.DUPLICATE_KEYS, f"{duplicate}: key appears more than once")
    return obj


def _model_validate(obj: dict[str, Any]) -> CustomerEvent:
    """The slow path: the pydantic model decides (lenient forms) and words the error."""
    try:
        event = CustomerEvent.model_validate(obj)
    except ValidationError as exc:
        error_type, message, _ = dead_letters.describe_validation(exc.errors(include_url=False))  # type: ignore[arg-type]
        raise _RejectedError(error_type, message) from None
    if event.schema_version > SCHEMA_VERSION:
        raise _RejectedError(
            dead_letters.UNSUPPORTED_SCHEMA_VERSION,
            f"schema_version: {event.schema_version} is newer than this scorer's {SCHEMA_VERSION}",
        )
    return event


def _json_error(value: bytes, exc: orjson.JSONDecodeError) -> _RejectedError:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as bad:
        where = _key_before(value, bad.start)
        message = f"{where}value is not UTF-8: invalid byte at position {bad.start}"
        return _RejectedError(dead_letters.NOT_UTF8, message)
    position = exc.pos
    at = len(text[:position].encode())  # orjson reports characters; the regex works on bytes
    if "infinity" in exc.msg or any(value.startswith(t, at) for t in _NON_FINITE_TOKENS):
        where = _key_before(value, at + 1)
        return _RejectedError(dead_letters.NOT_FINITE, f"{where}NaN or Infinity is not a finite number")
    message = dead_letters.clip(f"not valid JSON: {exc.msg} (character {position})")
    return _RejectedError(dead_letters.INVALID_JSON, message)


def _key_before(value: bytes, position: int) -> str:
    """``"name: "`` for the JSON key just before ``position``, to say where a byte-level error is."""
    match = _LAST_KEY.search(value, max(0, position - 256), position)
    return f"{match.group(1).decode('utf-8', 'replace')}: " if match else ""


def _duplicate_key(value: bytes, obj: dict[str, Any]) -> str | None:
    """The first repeated top-level key, or None; cheap unless the bytes look suspicious.

    orjson keeps the last of duplicate keys silently. Every key in the text is
    followed by a colon, so if the text has exactly as many colons as the
    object has keys (plus those inside the event_time string), nothing repeats.
    """
    expected = len(obj)
    event_time = obj.get("event_time")
    if isinstance(event_time, str):
        expected += event_time.count(":")
    if value.count(b":") == expected:
        return None
    if len(_KEY_PATTERN.findall(value)) == len(obj):
        return None
    # object_pairs_hook runs for every object, innermost first: the last call is the top level.
    top_level_repeats: list[str] = []

    def hook(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        top_level_repeats.clear()
        for key, _ in items:
            if key in seen:
                top_level_repeats.append(key)
            seen.add(key)
        return dict(items)

    json.loads(value, object_pairs_hook=hook)
    return top_level_repeats[0] if top_level_repeats else None


def _dead_letter(
    result: BatchResult, record: RawRecord, error_type: str, message: str, failed_at: datetime
) -> None:
    letter = DeadLetter(
        error_type=error_type,
        error_message=dead_letters.clip(message),
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
