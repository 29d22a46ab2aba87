"""The scorer's work on one micro-batch of raw Kafka records, as one pure function.

:func:`score_batch` decodes, validates and scores a batch and returns the
records to write — predictions and dead letters — plus the figures the metrics
need. It knows nothing of Faust or of any Kafka client: the Faust worker
(:mod:`scorer.faust_engine`) and the native confluent-kafka engine (:mod:`scorer.native_engine`)
both wrap it, so both have the same semantics.

Rules:
- every input record yields exactly one output record: a prediction, or a dead
  letter with the original value bytes (cut to ``max_dead_letter_bytes`` when
  larger, see :class:`BatchLimits`) and reason headers;
- valid records are scored with one ``Predictor.predict_columns`` call (with
  reason codes, one ``Predictor.explain_columns`` call: the same probabilities and
  each record's reasons, see :class:`ReasonCodes`); when the model fails (raises,
  or returns NaN or the wrong shape) the batch is tried once more, then split in
  halves until only the records it really fails on are left:
  those are dead-lettered ``scoring_failed``, the rest scored;
- nothing here raises on bad input: an unexpected exception while handling one
  record makes that record alone an ``internal_error`` dead letter. Only resource
  errors (:data:`RESOURCE_ERRORS`) propagate, so that the worker crashes without
  committing and a restarted one scores the batch again.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
import orjson

from kafka_io.records import OutRecord, RawRecord
from models.explain import Reason
from schemas import dead_letters
from schemas.contract import Rejection, derived_event_id, future_rejection, read_event
from schemas.dead_letters import DeadLetter
from schemas.predictions import prediction_payloads
from scorer.fast_check import FastBatch, columns_of, read_batch

log = logging.getLogger(__name__)

#: Errors that say the process, not the record, is in trouble: they propagate out of
#: :func:`score_batch` (the worker crashes without committing; a restart scores the batch again).
#: A ``RecursionError`` is not one of them: the depth bound keeps input from causing one, so one
#: from the model is the model failing on particular input, isolated like any other failure.
RESOURCE_ERRORS: tuple[type[BaseException], ...] = (MemoryError,)
#: A dead letter's key is cut to this many bytes (events are keyed by ``customer_id``, ≤ 128 chars).
MAX_DEAD_LETTER_KEY_BYTES = 1024


class BatchPredictor(Protocol):
    """What the batch core needs from :class:`models.predictor.Predictor`."""

    @property
    def version(self) -> str: ...

    @property
    def threshold(self) -> float: ...

    def predict_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray: ...


class Explained(Protocol):
    @property
    def probability(self) -> np.ndarray: ...

    @property
    def reasons(self) -> list[list[Reason]]: ...


@runtime_checkable
class ExplainingPredictor(BatchPredictor, Protocol):
    """A :class:`BatchPredictor` that can also give reason codes (see :class:`ReasonCodes`)."""

    @property
    def explainable(self) -> bool: ...

    @property
    def no_reasons_because(self) -> str | None: ...

    def explain_columns(
        self, columns: Mapping[str, Sequence[Any]], n: int, *, top: int = 3, down: int = 0
    ) -> Explained: ...


@dataclass(frozen=True)
class ReasonCodes:
    """Reason codes asked of every prediction: ``top`` pushing churn up, then ``down`` pushing it down.

    A predictor that cannot explain its scores exactly (not an :class:`ExplainingPredictor`,
    or not ``explainable``) scores without them: each prediction then has ``reasons: null``
    and ``reasons_unavailable``, and :attr:`BatchResult.reasons_unavailable` says why.
    """

    top: int = 3
    down: int = 0


@dataclass(frozen=True)
class BatchLimits:
    max_event_bytes: int = 64 * 1024
    #: An event_time more than this far ahead of the scorer's clock is refused.
    max_future_skew_s: float = 300.0
    #: A dead letter's value is cut to this many bytes, so that it fits the producer's limit.
    max_dead_letter_bytes: int = 900_000


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
    #: Reason codes were asked for and the model serves none: why (see :class:`ReasonCodes`).
    reasons_unavailable: str | None = None
    #: The validated fields of each prediction's event, in the order of ``predictions``, and
    #: when they were scored: what a shadow challenger scores (:func:`shadow_predictions`).
    scored_columns: dict[str, list[Any]] = field(default_factory=dict)
    scored_event_times: list[datetime] = field(default_factory=list)
    scored_at: str = ""
    #: The challenger's predictions of the same events, for the shadow topic (set by the handler).
    shadow: list[OutRecord] = field(default_factory=list)
    shadow_version: str = ""
    shadow_probabilities: np.ndarray = field(default_factory=lambda: np.empty(0))
    #: Records the challenger failed to score (no shadow prediction for them; their champion one stands).
    shadow_failed: int = 0

    @property
    def consumed(self) -> int:
        return len(self.predictions) + len(self.dead_letters)


Clock = Callable[[], float]


def score_batch(
    records: Sequence[RawRecord],
    predictor: BatchPredictor,
    limits: BatchLimits,
    clock: Clock = time.time,
    reasons: ReasonCodes | None = None,
) -> BatchResult:
    """Decode, validate and score ``records``; one output record per input record.

    With ``reasons``, each prediction carries its reason codes (or says why it has none).

    The whole batch is decoded and validated in C by the fast path
    (:func:`scorer.fast_check.read_batch`); only the rows it cannot vouch for
    go through the input contract (:func:`schemas.contract.read_event`), which
    also words the error of a record it refuses. An event without ``event_time``
    takes its record's timestamp; one without ``event_id`` takes the id of its
    place on the topic (:func:`schemas.contract.derived_event_id`).
    """
    started = time.perf_counter()
    now = clock()
    failed_at = datetime.fromtimestamp(now, UTC)
    result = BatchResult(model_version=predictor.version)
    refused: list[_Refusal] = []
    if reasons is not None:
        result.reasons_unavailable = _why_no_reasons(predictor)
        if result.reasons_unavailable is not None:
            reasons = None

    fast = _read_fast(records, limits.max_event_bytes)
    events, times = fast.events, fast.event_times
    for row in fast.slow:
        try:
            event = read_event(records[row].value, limits.max_event_bytes)
        except RESOURCE_ERRORS:
            raise
        except Exception as exc:  # a case nobody foresaw: this record alone is dead-lettered
            refused.append(_internal_error(row, records[row], exc))
            continue
        if isinstance(event, Rejection):
            refused.append(_Refusal(row, event.error_type, event.message, field=event.field))
            continue
        events[row] = event
        times[row] = event.event_time
    valid: Sequence[int] = [row for row, event in enumerate(events) if event is not None]

    borrowed = _fill_record_times(times, valid, records, now)
    timestamps = _timestamps(valid, times, records, refused)
    valid = [row for row in valid if row in timestamps] if len(timestamps) < len(valid) else valid
    latest_allowed = now + limits.max_future_skew_s
    if timestamps and max(timestamps.values()) > latest_allowed:
        # Only an event's own time is refused: a record timestamp ahead of the clock is the
        # producer's clock, not the event's claim.
        ahead = {row for row in valid if timestamps[row] > latest_allowed and row not in borrowed}
        for row in sorted(ahead):
            rejection = future_rejection(times[row], limits.max_future_skew_s)  # type: ignore[arg-type]
            refused.append(_Refusal(row, rejection.error_type, rejection.message, field=rejection.field))
        valid = [row for row in valid if row not in ahead]

    if valid:
        columns = columns_of([events[row] for row in valid])
        _fill_event_ids(columns["event_id"], [records[row] for row in valid])
        valid_times: list[datetime] = [times[row] for row in valid]  # type: ignore[misc]
        seconds = [timestamps[row] for row in valid]
        _score(result, refused, valid, columns, valid_times, seconds, records, predictor, now, reasons)
    for refusal in sorted(refused, key=lambda r: r.row):
        _dead_letter(result, records[refusal.row], refusal, failed_at, limits.max_dead_letter_bytes)
    result.total_seconds = time.perf_counter() - started
    return result


def _why_no_reasons(predictor: BatchPredictor) -> str | None:
    """Why ``predictor`` serves no reason codes, or None when it does."""
    if not isinstance(predictor, ExplainingPredictor):
        return f"{type(predictor).__name__} gives no reason codes"
    if predictor.explainable:
        return None
    return predictor.no_reasons_because or "this model serves no reason codes"


@dataclass(frozen=True)
class _Refusal:
    """Why the record at ``row`` gets a dead letter instead of a prediction."""

    row: int
    error_type: str
    message: str
    exception_class: str | None = None
    field: str = ""


class _Throttle:
    """Says yes to each kind once per ``every_s`` and counts the noes in between."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def allow(self, kind: str) -> int | None:
        """The number of ``kind`` held back since the last yes, or None to hold this one back too."""
        now = self._clock()
        if now - self._last.get(kind, float("-inf")) < self.every_s:
            self._held[kind] += 1
            return None
        self._last[kind] = now
        return self._held.pop(kind, 0)


#: Unexpected exceptions are logged (with their traceback) once per exception class a minute.
_INTERNAL_ERRORS = _Throttle(60.0)


def _internal_error(row: int, record: RawRecord, exc: Exception) -> _Refusal:
    """An ``internal_error`` refusal for ``exc``; logged once per exception class a minute."""
    kind = type(exc).__name__
    held = _INTERNAL_ERRORS.allow(kind)
    if held is not None:
        log.error(
            "internal error on %s:%d:%d, dead-lettered as internal_error: %s: %s "
            "(%d more %s in the last minute were not logged)",
            record.topic,
            record.partition,
            record.offset,
            kind,
            exc,
            held,
            kind,
            exc_info=exc,
        )
    return _Refusal(row, dead_letters.INTERNAL_ERROR, f"{kind}: {exc}", kind)


def _read_fast(records: Sequence[RawRecord], max_bytes: int) -> FastBatch:
    """The fast path over the batch; if it fails as a whole, over each row alone.

    A row whose fast read fails is left to the slow path, which dead-letters it
    if it must: one odd record never turns its batch into dead letters.
    """
    candidates = _fast_candidates(records, max_bytes)
    try:
        return read_batch(candidates)
    except RESOURCE_ERRORS:
        raise
    except Exception as exc:
        held = _INTERNAL_ERRORS.allow(f"fast path {type(exc).__name__}")
        if held is not None:
            log.error(
                "the fast path failed on a batch of %d (%s: %s); reading it row by row "
                "(%d more in the last minute were not logged)",
                len(records),
                type(exc).__name__,
                exc,
                held,
                exc_info=exc,
            )
    events: list[Any] = []
    times: list[datetime | None] = []
    for value in candidates:
        try:
            one = read_batch([value])
        except RESOURCE_ERRORS:
            raise
        except Exception:
            events.append(None)
            times.append(None)
        else:
            events.extend(one.events)
            times.extend(one.event_times)
    return FastBatch(events=events, event_times=times)


def _fill_record_times(
    times: list[datetime | None], rows: Sequence[int], records: Sequence[RawRecord], now: float
) -> set[int]:
    """Give each of ``rows`` without an event time its record's timestamp; the rows that took one."""
    borrowed: set[int] = set()
    for row in rows:
        if times[row] is None:
            stamp = records[row].timestamp
            # no timestamp (or librdkafka's -1 for "not available"): the time the scorer read it
            times[row] = datetime.fromtimestamp(stamp if stamp is not None and stamp > 0 else now, UTC)
            borrowed.add(row)
    return borrowed


def _fill_event_ids(ids: list[Any], records: Sequence[RawRecord]) -> None:
    """Give each event without an id the id of its place on the topic (the same on a re-read)."""
    if None not in ids:
        return
    for k, event_id in enumerate(ids):
        if event_id is None:
            record = records[k]
            ids[k] = derived_event_id(record.topic, record.partition, record.offset)


def _timestamps(
    valid: Sequence[int],
    times: Sequence[datetime | None],
    records: Sequence[RawRecord],
    refused: list[_Refusal],
) -> dict[int, float]:
    """Epoch seconds of each valid row's ``event_time``; a row whose time has none is refused."""
    try:
        return {row: times[row].timestamp() for row in valid}  # type: ignore[union-attr]
    except RESOURCE_ERRORS:
        raise
    except Exception:  # a date-time at the edge of the calendar: row by row, to find it
        return _timestamps_one_by_one(valid, times, records, refused)


def _timestamps_one_by_one(
    valid: Sequence[int],
    times: Sequence[datetime | None],
    records: Sequence[RawRecord],
    refused: list[_Refusal],
) -> dict[int, float]:
    stamps: dict[int, float] = {}
    for row in valid:
        try:
            stamps[row] = times[row].timestamp()  # type: ignore[union-attr]
        except (OverflowError, ValueError, OSError) as exc:
            when = times[row].isoformat()  # type: ignore[union-attr]
            refused.append(
                _Refusal(row, dead_letters.INVALID_TIMESTAMP, f"event_time: {when} is out of range ({exc})")
            )
        except RESOURCE_ERRORS:
            raise
        except Exception as exc:
            refused.append(_internal_error(row, records[row], exc))
    return stamps


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
    result: BatchResult, record: RawRecord, refusal: _Refusal, failed_at: datetime, max_bytes: int
) -> None:
    """Append the dead letter of ``record``: its key and value (cut to fit), the reason as headers."""
    value, key = record.value, record.key
    letter = DeadLetter(
        error_type=refusal.error_type,
        error_message=dead_letters.clip(refusal.message),
        error_field=refusal.field,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        failed_at=failed_at,
        exception_class=refusal.exception_class,
    )
    if value is not None and len(value) > max_bytes:
        letter.truncated = True
        letter.original_size = len(value)
        letter.original_sha256 = hashlib.sha256(value).hexdigest()
        value = value[:max_bytes]
    if key is not None and len(key) > MAX_DEAD_LETTER_KEY_BYTES:
        letter.key_truncated = True
        letter.original_key_size = len(key)
        letter.original_key_sha256 = hashlib.sha256(key).hexdigest()
        key = key[:MAX_DEAD_LETTER_KEY_BYTES]
    if record.headers:
        _copy_replay_headers(letter, record.headers)
    result.dead_letters.append(OutRecord(key=key, value=value, headers=letter.headers()))
    result.dead_letter_types[refusal.error_type] += 1


def _copy_replay_headers(letter: DeadLetter, headers: Sequence[tuple[str, bytes | None]]) -> None:
    """Carry a replayed record's ``replay_count`` and ``replayed_from`` onto its new dead letter."""
    for name, raw in headers:
        if not isinstance(raw, bytes):
            continue
        if name == dead_letters.REPLAY_COUNT:
            try:
                letter.replay_count = int(raw.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                continue  # not a count this tool wrote; leave it out rather than guess
        elif name == dead_letters.REPLAYED_FROM:
            letter.replayed_from = raw.decode("utf-8", "replace")[:512]


class ModelOutputError(ValueError):
    """The model returned something that is not one finite probability per record."""


#: Each scored record's reason codes, in order; None when not asked for.
RowReasons = list[list[Reason]] | None


def _predict(
    predictor: BatchPredictor, columns: Mapping[str, Sequence[Any]], n: int, reasons: ReasonCodes | None
) -> tuple[np.ndarray, RowReasons]:
    """The model's probabilities for ``n`` records (and their reasons, if asked for).

    Raises :class:`ModelOutputError` unless there is one probability in [0, 1] per record.
    """
    explained: RowReasons = None
    if reasons is None:
        probabilities = np.asarray(predictor.predict_columns(columns, n), dtype=np.float64)
    else:
        assert isinstance(predictor, ExplainingPredictor)  # score_batch asks reasons of no other
        answer = predictor.explain_columns(columns, n, top=reasons.top, down=reasons.down)
        probabilities = np.asarray(answer.probability, dtype=np.float64)
        explained = answer.reasons
        if len(explained) != n:
            raise ModelOutputError(f"the model returned {len(explained)} lists of reasons for {n} events")
    if probabilities.shape != (n,):
        raise ModelOutputError(f"the model returned {probabilities.shape} probabilities for {n} events")
    if not np.isfinite(probabilities).all():
        raise ModelOutputError("the model returned a probability that is NaN or infinite")
    if probabilities.min() < 0.0 or probabilities.max() > 1.0:
        raise ModelOutputError("the model returned a probability outside [0, 1]")
    return probabilities, explained


def _take(columns: Mapping[str, Sequence[Any]], rows: Sequence[int]) -> dict[str, list[Any]]:
    return {name: [values[i] for i in rows] for name, values in columns.items()}


def _predict_isolated(
    predictor: BatchPredictor, columns: Mapping[str, Sequence[Any]], n: int, reasons: ReasonCodes | None
) -> tuple[np.ndarray, RowReasons, dict[int, Exception]]:
    """Probabilities (and reasons) of the ``n`` records, and the exception of each one the model fails on.

    One call for the batch; if it fails, one more (a passing fault); if that fails too,
    halves of the batch are scored, and halves of the halves that fail, down to single
    records: k failing records among n cost about 2k·log2(n) calls. Failed rows hold NaN.
    """
    error: Exception = ModelOutputError("not scored")
    for _attempt in range(2):  # a passing fault gets a second try
        try:
            return (*_predict(predictor, columns, n, reasons), {})
        except RESOURCE_ERRORS:
            raise
        except Exception as exc:
            error = exc
    if n == 1:
        return np.full(1, np.nan), None if reasons is None else [[]], {0: error}
    probabilities = np.full(n, np.nan)
    explained: RowReasons = None if reasons is None else [[] for _ in range(n)]
    failed: dict[int, Exception] = {}
    half = n // 2
    todo = [list(range(half, n)), list(range(half))]
    while todo:
        rows = todo.pop()
        try:
            probabilities[rows], part = _predict(predictor, _take(columns, rows), len(rows), reasons)
            if explained is not None and part is not None:
                for row, why in zip(rows, part, strict=True):
                    explained[row] = why
        except RESOURCE_ERRORS:
            raise
        except Exception as exc:
            if len(rows) == 1:
                failed[rows[0]] = exc
            else:
                half = len(rows) // 2
                todo += [rows[half:], rows[:half]]
    return probabilities, explained, failed


def _score(
    result: BatchResult,
    refused: list[_Refusal],
    valid: Sequence[int],
    columns: dict[str, list[Any]],
    event_times: list[datetime],
    timestamps: list[float],
    records: Sequence[RawRecord],
    predictor: BatchPredictor,
    now: float,
    reasons: ReasonCodes | None,
) -> None:
    """Score the valid rows; append their predictions to ``result`` and model failures to ``refused``."""
    n = len(valid)
    version = predictor.version
    inference_started = time.perf_counter()
    probabilities, explained, failed = _predict_isolated(predictor, columns, n, reasons)
    result.inference_seconds = time.perf_counter() - inference_started
    if failed:
        for k, exc in failed.items():
            kind = type(exc).__name__
            message = f"model {version} failed on this record: {kind}: {exc}"
            refused.append(_Refusal(valid[k], dead_letters.SCORING_FAILED, message, kind))
        keep = [k for k in range(n) if k not in failed]
        if not keep:
            return
        columns = _take(columns, keep)
        event_times = [event_times[k] for k in keep]
        timestamps = [timestamps[k] for k in keep]
        probabilities = probabilities[keep]
        valid = [valid[k] for k in keep]
        explained = None if explained is None else [explained[k] for k in keep]

    unavailable = result.reasons_unavailable
    scored_at = datetime.fromtimestamp(now, UTC).isoformat()  # once per batch, as orjson writes a datetime
    try:
        predictions = _prediction_records(
            columns,
            event_times,
            probabilities,
            predictor.threshold,
            version,
            scored_at,
            explained,
            unavailable,
        )
    except RESOURCE_ERRORS:
        raise
    except Exception:  # one record's fields cannot be written: find it, write the others
        predictions, keep = [], []
        for k, row in enumerate(valid):
            try:
                one = _take(columns, [k])
                predictions += _prediction_records(
                    one,
                    [event_times[k]],
                    probabilities[k : k + 1],
                    predictor.threshold,
                    version,
                    scored_at,
                    None if explained is None else [explained[k]],
                    unavailable,
                )
                keep.append(k)
            except RESOURCE_ERRORS:
                raise
            except Exception as exc:
                refused.append(_internal_error(row, records[row], exc))
        timestamps = [timestamps[k] for k in keep]
        probabilities = probabilities[keep]
        columns = _take(columns, keep)
        event_times = [event_times[k] for k in keep]
    result.scored_columns = columns
    result.scored_event_times = event_times
    result.scored_at = scored_at
    result.predictions.extend(predictions)
    result.event_times = timestamps
    result.probabilities = probabilities
    result.churned = int(np.count_nonzero(probabilities >= predictor.threshold))


def _prediction_records(
    columns: Mapping[str, Sequence[Any]],
    event_times: Sequence[datetime],
    probabilities: np.ndarray,
    threshold: float,
    version: str,
    scored_at: str,
    reasons: RowReasons = None,
    reasons_unavailable: str | None = None,
    extra_headers: Sequence[tuple[str, bytes]] = (),
) -> list[OutRecord]:
    ids = columns["event_id"]
    customer_ids = columns["customer_id"]
    payloads = prediction_payloads(
        ids,
        customer_ids,
        event_times,
        probabilities.tolist(),
        threshold,
        version,
        scored_at,
        reasons=reasons,
        reasons_unavailable=reasons_unavailable,
    )
    version_header = ("model_version", version.encode())
    headers = [[("event_id", event_id), version_header, *extra_headers] for event_id in map(str.encode, ids)]
    keys = map(str.encode, customer_ids)
    return list(map(OutRecord, keys, map(orjson.dumps, payloads), headers))


#: The header that marks a shadow prediction (the quality job reads it; see docs/mlops.md).
ROLE_HEADER = ("role", b"challenger")


def shadow_predictions(result: BatchResult, challenger: BatchPredictor) -> tuple[list[OutRecord], np.ndarray]:
    """The challenger's predictions of the events ``result`` scored, and their probabilities.

    Same payload as the champion's (the challenger's own ``model_version`` and threshold), a
    ``role: challenger`` header. One model call for the whole batch; it raises when the
    challenger fails (the caller keeps the champion's output and counts the failure).
    """
    n = len(result.predictions)
    if n == 0:
        return [], np.empty(0)
    columns = result.scored_columns
    probabilities, _ = _predict(challenger, columns, n, None)  # shadow predictions carry no reasons
    records = _prediction_records(
        columns,
        result.scored_event_times,
        probabilities,
        challenger.threshold,
        challenger.version,
        result.scored_at,
        extra_headers=(ROLE_HEADER,),
    )
    return records, probabilities
