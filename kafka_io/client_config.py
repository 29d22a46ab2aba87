"""Client configuration for the two Kafka client libraries, built from :class:`Settings`.

confluent-kafka (the producer, the consumer tool, the sink, the benchmarks, the
readiness probe) and Faust (aiokafka underneath) spell the same settings
differently; both are derived here so that security options are written once
and every client gets the same ones.

Pass-through: every confluent consumer gets ``CHURN_KAFKA_CONSUMER_OPTIONS`` and
every producer ``CHURN_KAFKA_PRODUCER_OPTIONS`` (librdkafka property names; the
ones the project owns are refused when the settings are read, see
:mod:`config.kafka_options`), applied last. The Faust engine's consumer is
aiokafka: :data:`FAUST_CONSUMER_OPTIONS` maps the librdkafka properties it has
an equivalent for, and :func:`faust_consumer_settings` refuses the others by name.
Producers are idempotent when ``CHURN_KAFKA_ENABLE_IDEMPOTENCE`` says so and
compress as ``CHURN_KAFKA_COMPRESSION`` says.

The SASL password only ever leaves its :class:`~pydantic.SecretStr` inside the
dict handed to a client constructor; use :func:`redacted` before logging a config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, get_args

from config.choices import SaslMechanism
from config.kafka_options import OptionValue
from config.settings import Settings

SASL_MECHANISMS: Final = get_args(SaslMechanism)
_SECRET_KEYS = frozenset({"sasl.password", "ssl.key.password"})


class KafkaOptionError(ValueError):
    """A pass-through option the chosen client cannot take (the message names it)."""


def _seconds(value: OptionValue) -> float:
    return float(value) / 1000


def _reset(value: OptionValue) -> str:
    text = str(value)
    return {"smallest": "earliest", "beginning": "earliest", "largest": "latest", "end": "latest"}.get(
        text, text
    )


def _flag(value: OptionValue) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1")


#: librdkafka consumer property -> (Faust setting, conversion): what the Faust engine can pass on.
FAUST_CONSUMER_OPTIONS: Final[dict[str, tuple[str, Callable[[OptionValue], Any]]]] = {
    "client.id": ("broker_client_id", str),
    "auto.offset.reset": ("consumer_auto_offset_reset", _reset),
    "max.partition.fetch.bytes": ("consumer_max_fetch_size", int),
    "max.poll.interval.ms": ("broker_max_poll_interval", _seconds),
    "request.timeout.ms": ("broker_request_timeout", _seconds),
    "metadata.max.age.ms": ("consumer_metadata_max_age_ms", int),
    "connections.max.idle.ms": ("consumer_connections_max_idle_ms", int),
    "check.crcs": ("broker_check_crcs", _flag),
    "group.instance.id": ("consumer_group_instance_id", str),
}


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
    """A fully acknowledged producer, idempotent and compressing as the settings say.

    ``linger.ms`` is ``producer_linger_ms``; the scorer's delivery sink sets its own (it waits
    for every batch it produces). ``extra`` is the caller's (e.g. the sink's client id); the
    user's pass-through options come last.
    """
    config = confluent_common(settings)
    config.update(
        {
            "acks": "all",
            "linger.ms": settings.producer_linger_ms,
            "enable.idempotence": settings.kafka_enable_idempotence,
            "compression.type": settings.kafka_compression,
        }
    )
    config.update(extra)
    config.update(settings.kafka_producer_options)
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
    config.update(settings.kafka_consumer_options)
    return config


def faust_consumer_settings(settings: Settings) -> dict[str, Any]:
    """The Faust app settings for the pass-through consumer options; refuses what aiokafka cannot take."""
    options = settings.kafka_consumer_options
    unsupported = sorted(name for name in options if name not in FAUST_CONSUMER_OPTIONS)
    if unsupported:
        raise KafkaOptionError(
            f"the Faust engine (aiokafka) has no equivalent of {', '.join(unsupported)}; it takes "
            f"{', '.join(FAUST_CONSUMER_OPTIONS)} (or use --engine native, which takes every "
            "librdkafka property)"
        )
    converted = {}
    for name, value in options.items():
        setting, convert = FAUST_CONSUMER_OPTIONS[name]
        try:
            converted[setting] = convert(value)
        except ValueError as exc:
            raise KafkaOptionError(f"{name}={value!r}: {exc}") from None
    return converted


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
