"""Client configuration for the two Kafka client libraries, built from :class:`Settings`.

confluent-kafka (the producer, the benchmark loop, the test helpers) and Faust
(aiokafka underneath) spell the same settings differently; both are derived
here so that security options are written once.
"""

from __future__ import annotations

from typing import Any

from schemas.settings import Settings


def confluent_common(settings: Settings) -> dict[str, Any]:
    """Connection and security options shared by every confluent-kafka client."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username:
        config["sasl.username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password is not None:
        config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_cafile:
        config["ssl.ca.location"] = str(settings.kafka_ssl_cafile)
    if settings.kafka_ssl_certfile:
        config["ssl.certificate.location"] = str(settings.kafka_ssl_certfile)
    if settings.kafka_ssl_keyfile:
        config["ssl.key.location"] = str(settings.kafka_ssl_keyfile)
    return config


def confluent_producer(settings: Settings, **extra: Any) -> dict[str, Any]:
    """An idempotence-free, fully acknowledged producer (the embedded broker has no transactions)."""
    config = confluent_common(settings)
    config.update({"acks": "all", "linger.ms": 5, "enable.idempotence": False})
    config.update(extra)
    return config


def confluent_consumer(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    config = confluent_common(settings)
    config.update(
        {
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": int(settings.kafka_session_timeout_s * 1000),
            "heartbeat.interval.ms": int(settings.kafka_heartbeat_interval_s * 1000),
            "fetch.wait.max.ms": settings.kafka_fetch_max_wait_ms,
        }
    )
    config.update(extra)
    return config


def faust_broker_url(settings: Settings) -> str:
    """``kafka://host:port;host:port`` for Faust."""
    hosts = [h.strip() for h in settings.kafka_bootstrap_servers.split(",") if h.strip()]
    return ";".join(f"kafka://{h}" for h in hosts)
