"""Which Kafka client properties a user may pass through, and which the project owns.

``CHURN_KAFKA_CONSUMER_OPTIONS`` / ``CHURN_KAFKA_PRODUCER_OPTIONS`` (JSON objects)
and ``--kafka-option`` add librdkafka properties to every consumer or producer
the project builds, as Quix Streams' ``consumer_extra_config`` does. A few
properties carry the delivery guarantee or are set by a ``CHURN_*`` setting of
their own: :func:`refusals` names each one a set of options touches, with the
reason, so ``Settings`` can refuse them before any client is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

#: A property's value as librdkafka takes it.
OptionValue = str | int | float | bool

_SETTING: Final = "set it with {}"
#: Properties of both kinds of client, each set by a setting.
_BOTH: Final[dict[str, str]] = {
    "bootstrap.servers": _SETTING.format("CHURN_KAFKA_BOOTSTRAP_SERVERS (or --bootstrap)"),
    "metadata.broker.list": _SETTING.format("CHURN_KAFKA_BOOTSTRAP_SERVERS (or --bootstrap)"),
    "security.protocol": _SETTING.format("CHURN_KAFKA_SECURITY_PROTOCOL"),
    "sasl.mechanism": _SETTING.format("CHURN_KAFKA_SASL_MECHANISM"),
    "sasl.mechanisms": _SETTING.format("CHURN_KAFKA_SASL_MECHANISM"),
    "sasl.username": _SETTING.format("CHURN_KAFKA_SASL_USERNAME"),
    "sasl.password": _SETTING.format("CHURN_KAFKA_SASL_PASSWORD"),
    "ssl.ca.location": _SETTING.format("CHURN_KAFKA_SSL_CAFILE"),
    "ssl.certificate.location": _SETTING.format("CHURN_KAFKA_SSL_CERTFILE"),
    "ssl.key.location": _SETTING.format("CHURN_KAFKA_SSL_KEYFILE"),
}
_COMMITS: Final = "offsets are committed only after a record's output is acknowledged (at-least-once)"
#: Consumer properties the project owns.
CONSUMER_OWNED: Final[dict[str, str]] = {
    **_BOTH,
    "group.id": _SETTING.format("CHURN_SCORER_APP_ID (or --app-id)"),
    "enable.auto.commit": _COMMITS,
    "enable.auto.offset.store": _COMMITS,
    "enable.partition.eof": "the consuming loops read end-of-partition as an error record",
    "partition.assignment.strategy": "the native engine's rebalance handling assumes eager assignment",
    "session.timeout.ms": _SETTING.format("CHURN_KAFKA_SESSION_TIMEOUT_S"),
    "heartbeat.interval.ms": _SETTING.format("CHURN_KAFKA_HEARTBEAT_INTERVAL_S"),
    "fetch.wait.max.ms": _SETTING.format("CHURN_KAFKA_FETCH_MAX_WAIT_MS"),
}
#: Producer properties the project owns (``acks`` may only say what it already is: all).
PRODUCER_OWNED: Final[dict[str, str]] = {
    **_BOTH,
    "enable.idempotence": _SETTING.format("CHURN_KAFKA_ENABLE_IDEMPOTENCE"),
    "compression.type": _SETTING.format("CHURN_KAFKA_COMPRESSION"),
    "compression.codec": _SETTING.format("CHURN_KAFKA_COMPRESSION"),
    "transactional.id": "churn-stream does not use transactions (at-least-once, deduplicate by event_id)",
    "delivery.report.only.error": "the scorer's sink acknowledges a batch by its failure reports",
}
_ALL_ACKS: Final = frozenset({"all", "-1"})
_ACKS: Final = "outputs count as delivered only once every in-sync replica has them: acks stays all"


def refusals(options: Mapping[str, OptionValue], owned: Mapping[str, str]) -> list[str]:
    """One line per option in ``options`` that the project owns: ``name: why``."""
    lines = [f"{name}: {owned[name]}" for name in options if name in owned]
    if "acks" in options and owned is PRODUCER_OWNED and str(options["acks"]).strip() not in _ALL_ACKS:
        lines.append(f"acks={options['acks']}: {_ACKS}")
    lines += [f"{name!r}: not a property name" for name in options if not name or name != name.strip()]
    return lines
