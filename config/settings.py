"""Runtime configuration: ``CHURN_*`` environment variables read once into a typed object.

Every component takes a :class:`Settings` instance as an argument; nothing reads
the environment behind its caller's back. CLI flags override fields with
``settings.model_copy(update=...)``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Final

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.choices import (
    Compression,
    LogLevel,
    RateLimitBy,
    SaslMechanism,
    ScorerEngine,
    SecurityProtocol,
)
from config.kafka_options import CONSUMER_OWNED, PRODUCER_OWNED, OptionValue, refusals

#: A legal Kafka topic name (the broker's own rule).
_TOPIC: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")


class Settings(BaseSettings):
    """All settings of churn-stream; see ``docs/configuration.md`` for each one."""

    # validate_assignment: a flag applied with ``with_overrides`` is checked like the variable.
    model_config = SettingsConfigDict(env_prefix="CHURN_", extra="ignore", validate_assignment=True)

    # --- Kafka -----------------------------------------------------------------
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    # The embedded broker needs a short session timeout or group joins take ~20 s.
    kafka_session_timeout_s: float = Field(default=6.0, gt=0, le=3600)
    kafka_heartbeat_interval_s: float = Field(default=1.0, gt=0, le=3600)
    # How long a fetch may wait for data; Tansu holds fetches that long when data trickles in,
    # so this bounds the consume latency at low rates (Faust itself hard-codes 1500 ms).
    kafka_fetch_max_wait_ms: int = Field(default=20, ge=1, le=5000)
    # librdkafka properties added to every consumer / producer the project builds (JSON objects);
    # the ones the project owns are refused by name (config.kafka_options).
    kafka_consumer_options: dict[str, OptionValue] = Field(default_factory=dict)
    kafka_producer_options: dict[str, OptionValue] = Field(default_factory=dict)
    # Every producer is idempotent (the embedded broker grants producer ids too).
    kafka_enable_idempotence: bool = True
    kafka_compression: Compression = "none"

    events_topic: str = "customer-events"
    predictions_topic: str = "churn-predictions"
    dlq_topic: str = "customer-events-dlq"
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication: int = Field(default=1, ge=1)

    # --- model -----------------------------------------------------------------
    model_store: Path = Path("model-store")

    # --- scorer ----------------------------------------------------------------
    scorer_app_id: str = Field(default="churn-scorer", min_length=1, max_length=249)
    scorer_max_batch: int = Field(default=500, ge=1, le=100_000)
    scorer_max_wait_s: float = Field(default=0.05, gt=0, le=60)
    scorer_web_host: str = Field(default="127.0.0.1", min_length=1)
    scorer_web_port: int = Field(default=6066, ge=0, le=65535)
    max_event_bytes: int = Field(default=64 * 1024, ge=256, le=16 * 1024 * 1024)
    # Events whose event_time is further ahead of the scorer's clock go to the DLQ.
    max_event_time_skew_s: float = Field(default=300.0, ge=0)
    model_poll_interval_s: float = Field(default=5.0, gt=0)
    # Scoring engine of `churn score`: "faust" (default) or "native" (confluent-kafka loop).
    scorer_engine: ScorerEngine = "faust"
    # Recent predictions in the churn_drift_psi window.
    drift_window: int = Field(default=5000, ge=100)
    # /health/live turns 503 when the consuming loop has not turned for this long (a wedged scorer).
    scorer_live_timeout_s: float = Field(default=120.0, gt=0)

    # --- API -------------------------------------------------------------------
    api_host: str = Field(default="127.0.0.1", min_length=1)
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_workers: int = Field(default=1, ge=1, le=512)
    api_key: SecretStr | None = None
    api_max_batch: int = Field(default=1000, ge=1)
    api_max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    api_cors_origins: list[str] = Field(default_factory=list)
    # One INFO line per request costs 10-20 % of a worker's throughput; request counts by
    # route and status are in /metrics anyway.
    api_access_log: bool = False
    # Requests per client and window, e.g. "100/second" or "5000/minute" (the ``limits`` syntax);
    # None (the default) disables the limiter. Counted per worker process; see docs/api.md.
    api_rate_limit: str | None = None
    # Who a limit applies to: the client address, or the X-API-Key value (address when absent).
    api_rate_limit_by: RateLimitBy = "address"
    # A request still running after this many seconds is answered 504 (0 disables the timeout).
    api_request_timeout_s: float = Field(default=30.0, ge=0)

    # --- producer --------------------------------------------------------------
    producer_rate: float = Field(default=50.0, gt=0)

    # --- logging ---------------------------------------------------------------
    log_level: LogLevel = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        hosts = [h.strip() for h in value.split(",")]
        for host in hosts:
            name, sep, port = host.rpartition(":")
            if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"not a host:port list like 'kafka1:9092,kafka2:9092': {host!r}")
        return ",".join(hosts)

    @field_validator("events_topic", "predictions_topic", "dlq_topic")
    @classmethod
    def _topic_name(cls, value: str) -> str:
        if not _TOPIC.fullmatch(value) or value in (".", ".."):
            raise ValueError("a topic name is 1-249 of the characters A-Z a-z 0-9 . _ -")
        return value

    @field_validator("kafka_consumer_options", "kafka_producer_options")
    @classmethod
    def _not_owned(cls, value: dict[str, OptionValue], info: ValidationInfo) -> dict[str, OptionValue]:
        owned = CONSUMER_OWNED if info.field_name == "kafka_consumer_options" else PRODUCER_OWNED
        refused = refusals(value, owned)
        if refused:
            raise ValueError("options the project owns: " + "; ".join(refused))
        return value

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> Settings:
        if self.kafka_heartbeat_interval_s >= self.kafka_session_timeout_s:
            raise ValueError(
                "CHURN_KAFKA_HEARTBEAT_INTERVAL_S must be below CHURN_KAFKA_SESSION_TIMEOUT_S "
                f"({self.kafka_heartbeat_interval_s:g} >= {self.kafka_session_timeout_s:g})"
            )
        return self

    @field_validator("api_rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from limits import parse  # the rate-limit library loads only when a limit is configured

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '100/second': {value!r}") from exc
        return value

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with the given fields replaced, each validated; ``None`` values are ignored (unset flags).

        Raises ``pydantic.ValidationError`` for a value the variable would not take either.
        """
        update = {k: v for k, v in values.items() if v is not None}
        if not update:
            return self
        copy = self.model_copy()
        for name, value in update.items():
            setattr(copy, name, value)  # validate_assignment checks it
        return copy

    def for_run(self, prefix: str, tag: str, **values: Any) -> Settings:
        """A copy with topics and a consumer group of its own: ``{prefix}-events-{tag}``, ...

        For runs that must not see each other's records (benchmarks, chaos runs);
        ``values`` override further fields, e.g. a shared preloaded ``events_topic``.
        """
        own = {
            "events_topic": f"{prefix}-events-{tag}",
            "predictions_topic": f"{prefix}-predictions-{tag}",
            "dlq_topic": f"{prefix}-dlq-{tag}",
            "scorer_app_id": f"{prefix}-{tag}",
        }
        return self.with_overrides(**(own | values))

    def child_env(self, *extra: str) -> dict[str, str]:
        """The environment of a ``churn`` child process that should run with these settings.

        This process's environment without its ``CHURN_*`` variables, plus the broker,
        model store, topics and consumer group (and the ``extra`` fields) as ``CHURN_*``.
        """
        names = (
            *("kafka_bootstrap_servers", "model_store", "events_topic", "predictions_topic"),
            *("dlq_topic", "scorer_app_id", *extra),
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
        env.update({f"CHURN_{name.upper()}": str(getattr(self, name)) for name in names})
        return env
