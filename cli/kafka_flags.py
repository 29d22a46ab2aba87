"""``--kafka-option KEY=VALUE``: librdkafka properties from the command line.

Repeatable on ``churn score``, ``churn produce``, ``churn consume`` and ``churn dlq
replay``. ``consumer:KEY=VALUE`` or ``producer:KEY=VALUE`` addresses one kind
of client; a bare ``KEY=VALUE`` goes to every kind the command builds. Flags
are merged over ``CHURN_KAFKA_CONSUMER_OPTIONS`` / ``CHURN_KAFKA_PRODUCER_OPTIONS``
(a flag wins for its key) and validated like them: options the project owns are
refused by name (config.kafka_options).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer

from cli.console import fail, overridden

#: The ``--kafka-option`` declaration every command shares.
KAFKA_OPTION = typer.Option(
    [],
    "--kafka-option",
    help="librdkafka property KEY=VALUE (repeatable); consumer:KEY=VALUE or producer:KEY=VALUE for one "
    "kind of client. Overrides CHURN_KAFKA_CONSUMER_OPTIONS / CHURN_KAFKA_PRODUCER_OPTIONS.",
)

_KINDS = ("consumer", "producer")


def parse(items: Sequence[str], kinds: Sequence[str]) -> dict[str, dict[str, str]]:
    """``{"consumer": {...}, "producer": {...}}`` for the kinds a command builds; raises ValueError."""
    parsed: dict[str, dict[str, str]] = {kind: {} for kind in kinds}
    for item in items:
        target, colon, rest = item.partition(":")
        if colon and target in _KINDS:
            if target not in kinds:
                raise ValueError(f"{item!r}: this command builds no {target}")
            wanted, item = [target], rest
        else:
            wanted = list(kinds)
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise ValueError(f"--kafka-option wants KEY=VALUE, got {item!r}")
        for kind in wanted:
            parsed[kind][name.strip()] = value
    return parsed


def with_kafka_options(settings: Any, items: Sequence[str], kinds: Sequence[str]) -> Any:
    """``settings`` with the flags merged into its pass-through options (validated)."""
    if not items:
        return settings
    try:
        parsed = parse(items, kinds)
    except ValueError as exc:
        fail(str(exc))
    return overridden(
        settings,
        kafka_consumer_options={**settings.kafka_consumer_options, **parsed["consumer"]}
        if "consumer" in parsed
        else None,
        kafka_producer_options={**settings.kafka_producer_options, **parsed["producer"]}
        if "producer" in parsed
        else None,
    )
