"""Re-publish dead letters to the input topic, optionally after fixing them.

Used by ``churn dlq replay``. The dead-letter topic keeps each bad record's
original key and bytes, with the reason in its headers (see
``schemas.dead_letters.DeadLetter``). Replaying reads the DLQ from the start
until nothing more arrives for ``idle_s`` (records dead-lettered after the
replay began wait for the next replay), keeps those whose ``error_type``
matches, applies a fix if one is given, and produces them to the events topic with the original
key and a ``replayed_from`` header (``dlq-topic:partition:offset``) that says
where on the DLQ the record came from.

Fixes work on the JSON object: a JSON merge patch (RFC 7386: ``null`` deletes a
field, objects merge, anything else replaces) and/or ``field=value`` overrides
(``value`` is parsed as JSON when it can be, else taken as a string). A record
whose value is not a JSON object cannot be fixed; it is skipped and counted.
Reading uses no consumer group: replaying never moves anyone's offsets.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from config.settings import Settings
from kafka_io.client_config import confluent_producer
from kafka_io.topics import MissingTopicError, iter_topic

log = logging.getLogger(__name__)

REPLAYED_FROM = "replayed_from"


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


@dataclass
class ReplaySummary:
    read: int = 0
    matched: int = 0
    replayed: int = 0
    unfixable: int = 0
    by_type: Counter[str] = field(default_factory=Counter)


def replay(
    settings: Settings,
    *,
    error_types: Iterable[str] = (),
    limit: int | None = None,
    fix: Fix | None = None,
    source_topic: str | None = None,
    target_topic: str | None = None,
    timeout_s: float = 120.0,
    idle_s: float = 2.0,
) -> ReplaySummary:
    """Replay dead letters of ``source_topic`` (default the DLQ) to ``target_topic`` (default events)."""
    source = source_topic or settings.dlq_topic
    target = target_topic or settings.events_topic
    wanted = set(error_types)
    fix = fix or Fix()
    summary = ReplaySummary()
    producer = Producer(confluent_producer(settings, **{"client.id": "churn-dlq-replay"}))
    failures: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(str(err))

    # The embedded broker's high watermarks can lag behind a fresh batch, so the end is not
    # taken from them: read until nothing arrives for ``idle_s``, and leave out records
    # dead-lettered after the replay started (the next replay gets them; no replay loops).
    started_ms = time.time() * 1000
    letters = iter_topic(settings, source, idle_s=idle_s, timeout_s=timeout_s, client_id="churn-dlq-replay")
    try:
        for message in letters:
            partition, offset = message.partition() or 0, message.offset() or 0
            if message.timestamp()[1] > started_ms:
                continue
            summary.read += 1
            error_type = error_type_of(message.headers())
            if wanted and error_type not in wanted:
                continue
            summary.matched += 1
            try:
                value = fix.apply(message.value())
            except FixError as exc:
                summary.unfixable += 1
                log.warning("not replayed %s:%d:%d: %s", source, partition, offset, exc)
            else:
                replay_headers: list[tuple[str, str | bytes | None]] = [
                    (REPLAYED_FROM, f"{source}:{partition}:{offset}".encode())
                ]
                producer.produce(
                    target, key=message.key(), value=value, headers=replay_headers, on_delivery=delivered
                )
                producer.poll(0)
                summary.replayed += 1
                summary.by_type[error_type] += 1
            if limit is not None and summary.matched >= limit:
                break
    except MissingTopicError:
        raise RuntimeError(f"dead-letter topic {source} does not exist") from None
    finally:
        letters.close()
    remaining = producer.flush(30)
    if remaining or failures:
        raise RuntimeError(f"{remaining} replayed records unacknowledged; errors: {failures[:3]}")
    return summary
