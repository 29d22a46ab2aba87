"""Re-publish dead letters to the input topic, optionally after fixing them: ``churn dlq replay``.

The dead-letter topic keeps each bad record's original key and bytes, with the
reason in its headers (see ``schemas.dead_letters.DeadLetter``). A replay reads a
range of the DLQ, decides for each dead letter whether it goes back, applies a fix
if one is given, and produces it to the events topic with the original key and
two headers: ``replayed_from`` (``dlq-topic:partition:offset``, where on the DLQ it
came from) and ``replay_count`` (the dead letter's own count plus one). The scorer
copies both onto the dead letter of a replayed record that fails again, so a
replay can tell a record that already went round.

**It cannot loop.** Each run remembers how far it got: it reads from the offsets its
consumer group (``churn-dlq-replay``, or one per ``--error-type`` selection, or
``--group``) committed last time and commits where it stopped, once everything it
replayed is acknowledged. Dead letters written after the run started are left for
the next run. A dead letter of a record that was replayed and failed again
(``replay_count`` ≥ 1) is not replayed unless asked (``--again``, which also reads
the range again from the start and then skips a dead letter whose record failed
again later in the range, so one record goes back once); one at
``CHURN_DLQ_MAX_REPLAYS`` is never replayed unless forced. An explicit range
(``--from``/``--until``, offsets or ISO times) is read as given and moves no
progress; ``--dry-run`` lists what would go and neither produces nor commits. A
dead letter whose value was cut to fit (``truncated``) is never replayed: the
original is on the source topic at the coordinates in its headers.

Fixes work on the JSON object: a JSON merge patch (RFC 7386: ``null`` deletes a
field, objects merge, anything else replaces) and/or ``field=value`` overrides
(``value`` is parsed as JSON when it can be, else taken as a string). A record
whose value is not a JSON object cannot be fixed; it is skipped and counted.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition

from config.settings import Settings
from kafka_io.client_config import confluent_consumer, confluent_producer
from schemas.dead_letters import REPLAY_COUNT, REPLAYED_FROM

log = logging.getLogger(__name__)

DEFAULT_GROUP: Final = "churn-dlq-replay"

#: Why a dead letter read by a replay was not replayed.
NOT_SELECTED: Final = "not_selected"
TRUNCATED: Final = "truncated"
MAX_REPLAYS: Final = "max_replays"
FAILED_AGAIN: Final = "failed_again"
SUPERSEDED: Final = "superseded"
UNFIXABLE: Final = "unfixable"
SKIP_REASONS: Final[dict[str, str]] = {
    NOT_SELECTED: "its error_type was not selected",
    TRUNCATED: "its value was cut to fit the DLQ; replay the original from its source coordinates",
    MAX_REPLAYS: "replayed CHURN_DLQ_MAX_REPLAYS times already (--force to replay it anyway)",
    FAILED_AGAIN: "it was replayed before and failed again (--again to replay it once more)",
    SUPERSEDED: "a later dead letter in the range is the same record failing again",
    UNFIXABLE: "the fix needs a JSON object",
}


class FixError(ValueError):
    """A dead letter the requested fix cannot apply to (its value is not a JSON object)."""


@dataclass(frozen=True)
class Fix:
    """What to change in a dead letter's JSON before replaying it; empty = replay as is."""

    merge_patch: Mapping[str, Any] | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, patch: str | None, overrides: Sequence[str] = ()) -> Fix:
        """From ``--fix '{"tenure": 3}'`` and ``--set tenure=3`` style arguments."""
        merge = None
        if patch is not None:
            parsed = orjson.loads(patch)
            if not isinstance(parsed, dict):
                raise ValueError("--fix must be a JSON object (a JSON merge patch)")
            merge = parsed
        values: dict[str, Any] = {}
        for item in overrides:
            name, sep, raw = item.partition("=")
            if not sep or not name:
                raise ValueError(f"--set wants field=value, got {item!r}")
            try:
                values[name] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                values[name] = raw
        return cls(merge, values)

    @property
    def empty(self) -> bool:
        return self.merge_patch is None and not self.overrides

    def apply(self, value: bytes | None) -> bytes | None:
        if self.empty:
            return value
        try:
            obj = orjson.loads(value or b"")
        except orjson.JSONDecodeError as exc:
            raise FixError(f"value is not JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise FixError("value is not a JSON object")
        if self.merge_patch is not None:
            obj = merge_patch(obj, self.merge_patch)
        obj.update(self.overrides)
        return orjson.dumps(obj)


def error_type_of(headers: Mapping[str, Any] | Sequence[tuple[str, Any]] | None) -> str:
    """The ``error_type`` header of a dead letter (``unknown`` if a record lacks it)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, value in pairs:
        if name == "error_type" and isinstance(value, bytes):
            return value.decode(errors="replace")
    return "unknown"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch of ``target`` by ``patch`` (returns a new value)."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


@dataclass(frozen=True)
class Bound:
    """One end of a range: an offset (the same on every partition) or a time."""

    offset: int | None = None
    time_ms: int | None = None

    @classmethod
    def parse(cls, text: str) -> Bound:
        """``120`` (an offset) or an ISO 8601 time (``2026-05-01T12:00:00Z``; no zone means UTC)."""
        text = text.strip()
        if text.isdigit():
            return cls(offset=int(text))
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an offset or an ISO 8601 time: {text!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return cls(time_ms=int(when.timestamp() * 1000))

    def reached_by(self, offset: int, timestamp_ms: int) -> bool:
        """Whether a record at ``offset``/``timestamp_ms`` is at or past this bound."""
        if self.offset is not None:
            return offset >= self.offset
        return self.time_ms is not None and timestamp_ms >= self.time_ms


@dataclass(frozen=True)
class ReplayRules:
    """What a replay sends back; see the module docstring."""

    error_types: frozenset[str] = frozenset()
    max_replays: int = 3
    again: bool = False
    force: bool = False


def replay_count_of(headers: Mapping[str, bytes]) -> int:
    """A dead letter's ``replay_count`` header (0 when absent or not a number)."""
    raw = headers.get(REPLAY_COUNT)
    try:
        return max(0, int(raw.decode("ascii"))) if raw is not None else 0
    except (UnicodeDecodeError, ValueError):
        return 0


def decide(
    headers: Mapping[str, bytes], coordinates: str, rules: ReplayRules, superseded: set[str]
) -> str | None:
    """None to replay the dead letter at ``coordinates`` (``topic:partition:offset``), else why not."""
    if rules.error_types and error_type_of(headers) not in rules.error_types:
        return NOT_SELECTED
    if headers.get("truncated") == b"true":
        return TRUNCATED
    count = replay_count_of(headers)
    if count >= rules.max_replays and not rules.force:
        return MAX_REPLAYS
    if count >= 1 and not rules.again:
        return FAILED_AGAIN
    if coordinates in superseded:
        return SUPERSEDED
    return None


def headers_of(message: Message) -> dict[str, bytes]:
    """A consumed record's headers by name (the last one of a repeated name)."""
    pairs: list[tuple[str, Any]] = message.headers() or []  # type: ignore[assignment]  # a list when consumed
    return {name: value for name, value in pairs if isinstance(value, bytes)}


def default_group(error_types: Iterable[str]) -> str:
    """The consumer group keeping a selection's progress: one per set of selected error types."""
    selected = sorted(set(error_types))
    return f"{DEFAULT_GROUP}.{'+'.join(selected)}" if selected else DEFAULT_GROUP


@dataclass(frozen=True)
class Planned:
    """A dead letter a run replays (or, with ``--dry-run``, would replay)."""

    partition: int
    offset: int
    error_type: str
    replay_count: int
    key: bytes | None


@dataclass
class ReplaySummary:
    group: str
    read: int = 0
    replayed: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    planned: list[Planned] = field(default_factory=list)
    committed: bool = False

    @property
    def unfixable(self) -> int:
        return self.skipped[UNFIXABLE]


def replay(
    settings: Settings,
    *,
    error_types: Iterable[str] = (),
    limit: int | None = None,
    fix: Fix | None = None,
    group: str | None = None,
    start: Bound | None = None,
    until: Bound | None = None,
    again: bool = False,
    force: bool = False,
    dry_run: bool = False,
    source_topic: str | None = None,
    target_topic: str | None = None,
    timeout_s: float = 120.0,
    idle_s: float = 2.0,
) -> ReplaySummary:
    """Replay dead letters of ``source_topic`` (default the DLQ) to ``target_topic`` (default events)."""
    source = source_topic or settings.dlq_topic
    target = target_topic or settings.events_topic
    rules = ReplayRules(frozenset(error_types), settings.dlq_max_replays, again, force)
    fix = fix or Fix()
    summary = ReplaySummary(group=group or default_group(rules.error_types))
    # An explicit range is the operator's; it moves no progress (nor does a dry run).
    commit = not dry_run and start is None and until is None
    # Dead letters written after this moment wait for the next run: a replayed record that fails
    # again during this run is not replayed by it.
    started_ms = int(time.time() * 1000)
    reader = _Reader(settings, source, summary.group, idle_s, timeout_s)
    try:
        superseded = reader.superseded(start, until, started_ms, rules) if again else set()
        producer = (
            None if dry_run else Producer(confluent_producer(settings, **{"client.id": "churn-dlq-replay"}))
        )
        failures: list[str] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(str(err))

        for message in reader.read(start, until, started_ms, rules):
            partition, offset = message.partition() or 0, message.offset() or 0
            headers = headers_of(message)
            coordinates = f"{source}:{partition}:{offset}"
            summary.read += 1
            reason = decide(headers, coordinates, rules, superseded)
            value = message.value()
            if reason is None:
                try:
                    value = fix.apply(value)
                except FixError as exc:
                    reason = UNFIXABLE
                    log.warning("not replayed %s: %s", coordinates, exc)
            if reason is not None:
                summary.skipped[reason] += 1
                continue
            error_type = error_type_of(headers)
            count = replay_count_of(headers)
            summary.planned.append(Planned(partition, offset, error_type, count, message.key()))
            summary.replayed += 1
            summary.by_type[error_type] += 1
            if producer is not None:
                replay_headers: list[tuple[str, str | bytes | None]] = [
                    (REPLAYED_FROM, coordinates.encode()),
                    (REPLAY_COUNT, str(count + 1).encode()),
                ]
                _produce(producer, target, message.key(), value, replay_headers, delivered)
            if limit is not None and summary.replayed >= limit:
                break
        if producer is not None:
            remaining = producer.flush(30)
            if remaining or failures:
                raise RuntimeError(f"{remaining} replayed records unacknowledged; errors: {failures[:3]}")
        if commit:
            reader.commit()
            summary.committed = True
    finally:
        reader.close()
    return summary


def _produce(
    producer: Producer,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, str | bytes | None]],
    on_delivery: Any,
) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
            producer.poll(0)
            return
        except BufferError:  # local queue full: serve delivery reports, then retry
            producer.poll(0.1)


class _Reader:
    """Reads a range of the DLQ partition by partition and keeps the position reached in each.

    Partitions are assigned directly (no group join, no rebalance); the group id only
    names whose committed offsets the range starts from and where :meth:`commit` writes.
    """

    def __init__(self, settings: Settings, topic: str, group: str, idle_s: float, timeout_s: float) -> None:
        self.topic = topic
        self.idle_s = idle_s
        self.timeout_s = timeout_s
        self._consumer = Consumer(
            confluent_consumer(
                settings,
                group,
                **{
                    "client.id": "churn-dlq-replay",
                    "enable.auto.offset.store": False,
                    "enable.partition.eof": True,
                },
            )
        )
        meta = self._consumer.list_topics(topic, timeout=10)
        if topic not in meta.topics or meta.topics[topic].error is not None:
            self._consumer.close()
            raise RuntimeError(f"dead-letter topic {topic} does not exist")
        self.partitions = sorted(meta.topics[topic].partitions)
        self.positions: dict[int, int] = {}

    def _starts(self, start: Bound | None, again: bool) -> list[TopicPartition]:
        tps = [TopicPartition(self.topic, p) for p in self.partitions]
        if start is not None and start.offset is not None:
            return [TopicPartition(self.topic, p, start.offset) for p in self.partitions]
        if start is not None and start.time_ms is not None:
            # A seek for brokers that answer it; records before the time are skipped as read anyway.
            wanted = [TopicPartition(self.topic, p, start.time_ms) for p in self.partitions]
            found = self._consumer.offsets_for_times(wanted, timeout=10)
            return [TopicPartition(self.topic, tp.partition, max(tp.offset, 0)) for tp in found]
        if again:
            return [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self.partitions]
        committed = self._consumer.committed(tps, timeout=10)
        return [
            TopicPartition(self.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
            for tp in committed
        ]

    def read(
        self, start: Bound | None, until: Bound | None, started_ms: int, rules: ReplayRules
    ) -> Iterator[Message]:
        """The records of the range in order per partition; :attr:`positions` follows what was yielded.

        A partition is done once it reached its end (librdkafka's end-of-partition event) or the
        end of the range; the read ends when every partition is done and nothing arrived for
        ``idle_s`` (the embedded broker's end offsets can trail a fresh write by a moment).
        """
        consumer = self._consumer
        consumer.assign(self._starts(start, rules.again))
        stopped: set[int] = set()
        at_end: set[int] = set()
        everything = set(self.partitions)
        deadline = time.monotonic() + self.timeout_s
        last = time.monotonic()
        while stopped != everything and (
            (at_end | stopped) != everything or time.monotonic() - last <= self.idle_s
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still reading {self.topic} after {self.timeout_s:g} s")
            for message in consumer.consume(1000, timeout=0.2):
                partition, offset = message.partition() or 0, message.offset() or 0
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(partition)
                    else:
                        log.warning("error reading %s: %s", self.topic, error)
                    continue
                last = time.monotonic()
                at_end.discard(partition)
                if partition in stopped:
                    continue
                timestamp_ms = message.timestamp()[1]
                if timestamp_ms > started_ms or (
                    until is not None and until.reached_by(offset, timestamp_ms)
                ):
                    stopped.add(partition)  # the next run starts here
                    continue
                self.positions[partition] = offset + 1
                if start is not None and start.time_ms is not None and timestamp_ms < start.time_ms:
                    continue
                yield message

    def superseded(
        self, start: Bound | None, until: Bound | None, started_ms: int, rules: ReplayRules
    ) -> set[str]:
        """Coordinates of the dead letters in the range whose record failed again later in it."""
        found = {
            headers_of(message)[REPLAYED_FROM].decode("utf-8", "replace")
            for message in self.read(start, until, started_ms, rules)
            if REPLAYED_FROM in headers_of(message)
        }
        self.positions.clear()
        return found

    def commit(self) -> None:
        if self.positions:
            offsets = [TopicPartition(self.topic, p, o) for p, o in self.positions.items()]
            self._consumer.commit(offsets=offsets, asynchronous=False)

    def close(self) -> None:
        self._consumer.close()
