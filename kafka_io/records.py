"""Kafka records as plain data, independent of the client library that reads or writes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class RawRecord:
    """One consumed Kafka record."""

    value: bytes | None
    key: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: float | None = None  # broker/producer timestamp, epoch seconds
    #: The record's headers as the client returns them (read when it is dead-lettered, by the quality job).
    headers: Sequence[tuple[str, bytes | None]] | None = None


@dataclass(slots=True)
class OutRecord:
    """One record to produce."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
