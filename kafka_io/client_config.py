"""Client configuration for the two Kafka client libraries, built from :class:`Settings`.

confluent-kafka (the producer, the consumer tool, the sink, the benchmarks, the
readiness probe) and Faust (aiokafka underneath) spell the same settings
differently; both are derived here so that security options are written once
and every client gets the same ones.

The SASL password only ever leaves its :class:`~pydantic.SecretStr` inside the
dict handed to a client constructor; use :func:`redacted` before logging a config.
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_SECRET_KEYS = frozenset({"sasl.password", "ssl.key.password"})


class KafkaSecurityError(ValueError):
    """The Kafka security settings contradict each other or miss a piece."""


def check_security(settings: Settings) -> None:
    """Raise :class:`KafkaSecurityError` with the exact problem, before any client is built."""
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL_"):
        mechanism = settings.kafka_sasl_mechanism
        if mechanism not in SASL_MECHANISMS:
            raise KafkaSecurityError(
                f"CHURN_KAFKA_SECURITY_PROTOCOL={protocol} needs CHURN_KAFKA_SASL_MECHANISM, "
                f"one of {', '.join(SASL_MECHANISMS)} (got {mechanism!r})"
            )
        if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
            raise KafkaSecurityError(
                f"CHURN_KAFKA_SECURITY_PROTOCOL={protocol} needs CHURN_KAFKA_SASL_USERNAME "
                "and CHURN_KAFKA_SASL_PASSWORD"
            )
    if (settings.kafka_ssl_certfile is None) != (settings.kafka_ssl_keyfile is None):
        raise KafkaSecurityError("mutual TLS needs both CHURN_KAFKA_SSL_CERTFILE and CHURN_KAFKA_SSL_KEYFILE")
    for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            raise KafkaSecurityError(f"CHURN_{name.upper()}={path} is not a readable file")


def confluent_common(settings: Settings) -> dict[str, Any]:
    """Connection and security options shared by every confluent-kafka client."""
    check_security(settings)
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL_"):
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        assert settings.kafka_sasl_password is not None  # check_security made sure
        config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        if settings.kafka_ssl_cafile:
            config["ssl.ca.location"] = str(settings.kafka_ssl_cafile)
        if settings.kafka_ssl_certfile:
            config["ssl.certificate.location"] = str(settings.kafka_ssl_certfile)
        if settings.kafka_ssl_keyfile:
            config["ssl.key.location"] = str(settings.kafka_ssl_keyfile)
    return config


def redacted(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a client config that is safe to log (secrets replaced by ``***``)."""
    return {k: ("***" if k in _SECRET_KEYS else v) for k, v in config.items()}


def confluent_producer(settings: Settings, **extra: Any) -> dict[str, Any]:
    """An idempotence-free, fully acknowledged producer (the embedded broker has no transactions).

    ``linger.ms`` is ``producer_linger_ms``; the scorer's delivery sink sets its own (it waits
    for every batch it produces).
    """
    config = confluent_common(settings)
    config.update({"acks": "all", "linger.ms": settings.producer_linger_ms, "enable.idempotence": False})
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


def faust_credentials(settings: Settings) -> Any:
    """Faust's ``broker_credentials`` for the security settings; None for PLAINTEXT.

    SSL gives ``faust.SSLCredentials`` around an :class:`ssl.SSLContext` (CA, and
    the client certificate for mutual TLS); SASL_* gives ``faust.SASLCredentials``
    with that context for SASL_SSL and none for SASL_PLAINTEXT. Faust maps them to
    aiokafka's ``security_protocol`` / ``sasl_mechanism`` / ``ssl_context``.
    """
    check_security(settings)
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    # Faust and aiokafka load only for the Faust engine: the native engine's memory stays lean.
    import faust
    from aiokafka.helpers import create_ssl_context

    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = create_ssl_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
            certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
            keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    assert settings.kafka_sasl_password is not None  # check_security made sure
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=context,
    )
