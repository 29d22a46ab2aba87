"""Runtime configuration: ``CHURN_*`` environment variables read once into a typed object.

Every component takes a :class:`Settings` instance as an argument; nothing reads
the environment behind its caller's back. CLI flags override fields with
``settings.model_copy(update=...)``.

Every secret setting ``CHURN_X`` (a ``SecretStr`` field) can also be given as
``CHURN_X_FILE``, the path of a file holding the value (:class:`SecretFiles`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

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
#: A URI's scheme (RFC 3986) and its colon; two characters at least, so a Windows drive is no scheme.
_URI_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")
ENV_PREFIX = "CHURN_"
FILE_SUFFIX = "_FILE"


class SecretFileError(ValueError):
    """A ``CHURN_X_FILE`` setting cannot be used; the message names the variable, never the value."""


def secret_fields(settings_cls: type[BaseSettings]) -> list[str]:
    """The names of the settings that hold secrets (``SecretStr`` fields)."""
    return [
        name
        for name, field in settings_cls.model_fields.items()
        if field.annotation is SecretStr or SecretStr in typing.get_args(field.annotation)
    ]


def read_secret_file(variable: str, path: Path) -> str:
    """The secret in ``path`` without one trailing newline; errors name ``variable`` and the path only."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise SecretFileError(f"{variable}: cannot read {path}: {reason}") from None
    value = text.removesuffix("\n").removesuffix("\r")
    if not value:
        raise SecretFileError(f"{variable}: {path} is empty")
    return value


class SecretFiles(PydanticBaseSettingsSource):
    """``CHURN_<NAME>_FILE`` for every secret setting: the content of that file is the value.

    The content loses one trailing newline (what ``echo`` and editors add). Setting both
    ``CHURN_X`` and ``CHURN_X_FILE`` is an error, as is a file that cannot be read or is
    empty; the errors name the variable and the path, never the content. Our own ~30 lines:
    the ``_FILE`` sources on PyPI neither refuse both-set nor limit themselves to secrets.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = {key.upper(): value for key, value in environ.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything happens in __call__

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in secret_fields(self.settings_cls):
            variable = f"{ENV_PREFIX}{name.upper()}"
            path = self._environ.get(variable + FILE_SUFFIX)
            if path is None:
                continue
            if variable in self._environ:
                raise SecretFileError(f"{variable} and {variable}{FILE_SUFFIX} are both set; keep one")
            values[name] = read_secret_file(variable + FILE_SUFFIX, Path(path))
        return values


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
    # How long a fetch of the tools that read topics (churn consume, churn dlq replay, audits,
    # benchmark readers) may wait for data: librdkafka's own default. The scorers have their own
    # (scorer_*_fetch_wait_ms). See docs/streaming.md on the embedded broker's fetch limit.
    kafka_fetch_max_wait_ms: int = Field(default=500, ge=1, le=5000)
    # librdkafka properties added to every consumer / producer the project builds (JSON objects);
    # the ones the project owns are refused by name (config.kafka_options).
    kafka_consumer_options: dict[str, OptionValue] = Field(default_factory=dict)
    kafka_producer_options: dict[str, OptionValue] = Field(default_factory=dict)
    # Idempotent producers: off by default. Delivery is at-least-once and consumers deduplicate by
    # event_id anyway; and a broker that forgets producer ids (the embedded one, after a restart)
    # fences an idempotent producer for good, which stops the scorer (docs/streaming.md).
    kafka_enable_idempotence: bool = False
    kafka_compression: Compression = "none"

    events_topic: str = "customer-events"
    predictions_topic: str = "churn-predictions"
    dlq_topic: str = "customer-events-dlq"
    # Observed churn per customer (``schemas.CustomerOutcome``), joined with predictions by `churn quality`.
    outcomes_topic: str = "customer-outcomes"
    # Outcome (and prediction) records `churn quality` cannot read, with reason headers.
    outcomes_dlq_topic: str = "customer-outcomes-dlq"
    # The challenger's predictions (same payload as churn-predictions); never for decisions.
    shadow_predictions_topic: str = "churn-predictions-shadow"
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication: int = Field(default=1, ge=1)

    # --- model -----------------------------------------------------------------
    model_store: Path = Path("model-store")
    # HMAC-SHA256 key that signs manifests (training) and that readers require; kept outside
    # the store. Unset: manifests are neither signed nor checked for a signature.
    model_signing_key: SecretStr | None = None
    # Whether readers may unpickle versions saved with joblib (those trained before the skops
    # format); a pickle runs code when loaded.
    model_allow_pickle: bool = True

    # Whether the scorers and the API score the challenger (the registry's CHALLENGER pointer)
    # in shadow beside the champion; off, they ignore the pointer.
    shadow_scoring: bool = True

    # --- experiment tracking (the optional `mlflow` extra, training/tracking.py) ---------------
    # MLflow tracking URI of `churn train` and `churn retrain` (file:///abs/mlruns, sqlite:///...,
    # http(s)://host:5000); unset: nothing is tracked and mlflow is never imported.
    mlflow_tracking_uri: str | None = None
    # The MLflow experiment the runs go to (created when missing).
    mlflow_experiment: str = Field(default="churn-stream", min_length=1, max_length=500)

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
    # Reason codes on every prediction (both engines): the `top` features pushing churn up and
    # the `down` pushing it down. A model without an exact decomposition serves none and says why.
    scorer_explain: bool = False
    scorer_explain_top: int = Field(default=3, ge=1, le=19)
    scorer_explain_down: int = Field(default=0, ge=0, le=19)
    # Threads of each native pool (OpenMP, BLAS) in a scorer process; 0 leaves the libraries' own.
    scorer_threads: int = Field(default=1, ge=0)
    # Recent predictions in the churn_drift_psi window.
    drift_window: int = Field(default=5000, ge=100)
    # /health/live turns 503 when the consuming loop has not turned for this long (a wedged scorer).
    scorer_live_timeout_s: float = Field(default=120.0, gt=0)
    # The model-failure breaker: when more than `threshold` of the last `window` valid records
    # failed in the model, consuming pauses (readiness `scoring`) and one held batch is retried
    # every `probe_interval_s` and whenever another model version is loaded.
    scoring_breaker_window: int = Field(default=1000, ge=10)
    scoring_breaker_threshold: float = Field(default=0.5, gt=0, le=1)
    scoring_probe_interval_s: float = Field(default=30.0, gt=0)

    # --- dead letters and delivery ---------------------------------------------
    # A dead letter's value is cut to this many bytes (headers `truncated`, `original_size`,
    # `original_sha256`); it stays below the producer's message.max.bytes (1,000,000 by default).
    dlq_max_value_bytes: int = Field(default=900_000, ge=1024, le=100_000_000)
    # `churn dlq replay` skips a dead letter that has been replayed this many times (unless --force).
    dlq_max_replays: int = Field(default=3, ge=1)
    # How long librdkafka tries to deliver one output record before reporting it failed
    # (message.timeout.ms); the sink then produces it again after a backoff.
    delivery_timeout_s: float = Field(default=60.0, ge=0.1)
    delivery_retry_backoff_s: float = Field(default=0.5, gt=0)
    delivery_retry_backoff_max_s: float = Field(default=30.0, gt=0)
    # Readiness `delivery` turns false (and churn_delivery_failing 1) while a batch's output has
    # been unacknowledged for longer than this.
    delivery_failing_after_s: float = Field(default=30.0, gt=0)

    # --- online model quality (`churn quality`) -----------------------------------
    quality_app_id: str = Field(default="churn-quality", min_length=1, max_length=249)
    quality_web_host: str = Field(default="127.0.0.1", min_length=1)
    quality_web_port: int = Field(default=6067, ge=0, le=65535)
    # Faust table store: "memory://" rebuilds the tables from their changelog topics at start;
    # "rocksdb://" keeps them on disk under quality_data_dir (needs the rocksdict package).
    quality_store: Literal["memory://", "rocksdb://"] = "memory://"
    quality_data_dir: Path = Path("quality-data")
    # The metrics cover the last N labelled predictions of each model version.
    quality_window: int = Field(default=5000, ge=10)
    # Predictions older than this (event time) are dropped and no longer joined with outcomes.
    quality_horizon_days: float = Field(default=90.0, gt=0)
    # An outcome that finds no prediction waits this long for one to arrive before it counts as unmatched.
    quality_outcome_grace_s: float = Field(default=300.0, ge=0)
    # How often the metrics are recomputed and the horizon is swept.
    quality_interval_s: float = Field(default=5.0, gt=0)
    # ChurnLiveRocAucBelowTraining fires when live ROC AUC < training ROC AUC - margin ...
    quality_alert_margin: float = Field(default=0.05, ge=0, le=1)
    # ... and at least this many labelled predictions are in the window.
    quality_alert_min_labelled: int = Field(default=500, ge=1)
    # How long the native engine's and the Faust worker's fetches may wait for data. On Apache Kafka
    # a fetch returns as soon as data arrives, so a long wait costs nothing; the embedded broker
    # holds an empty fetch in rounds, so the wait adds latency when data trickles in, and a short
    # one makes it return empty partitions for good once they hold many batches (docs/streaming.md).
    scorer_native_fetch_wait_ms: int = Field(default=25, ge=1, le=5000)
    scorer_faust_fetch_wait_ms: int = Field(default=25, ge=1, le=5000)
    # An assigned partition whose position has not moved for this long while it has lag is stalled:
    # churn_partition_stalled, readiness `stall`, self-healing. Longer than a group rejoin.
    stall_after_s: float = Field(default=20.0, gt=0)
    # Self-healing raises the fetch wait x4 per step up to this (docs/streaming.md).
    stall_max_fetch_wait_ms: int = Field(default=1000, ge=1, le=30000)
    # How often the scorer asks the broker for its partitions' high watermarks (lag, stalls).
    lag_query_interval_s: float = Field(default=5.0, gt=0)

    # --- API -------------------------------------------------------------------
    api_host: str = Field(default="127.0.0.1", min_length=1)
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_workers: int = Field(default=1, ge=1, le=512)
    # One key with both scopes (predict and admin).
    api_key: SecretStr | None = None
    # A file of named keys with scopes, re-read when it changes (see docs/security.md).
    api_keys_file: Path | None = None
    # `churn api` refuses to listen on a non-loopback address without a key unless this is true.
    api_allow_unauthenticated: bool = False
    api_max_batch: int = Field(default=1000, ge=1)
    api_max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    api_cors_origins: list[str] = Field(default_factory=list)
    # One INFO line per request costs 10-20 % of a worker's throughput; request counts by
    # route and status are in /metrics anyway.
    api_access_log: bool = False
    # Requests per client and window, e.g. "100/second" or "5000/minute" (the ``limits`` syntax);
    # None (the default) disables the limiter. Counted per worker process; see docs/api.md.
    api_rate_limit: str | None = None
    # Who a limit applies to: the client address, or the API key's name (address when absent).
    api_rate_limit_by: RateLimitBy = "address"
    # Wrong API keys per client address and window before every request of it gets 429.
    api_auth_failure_limit: str | None = "10/minute"
    # A request still running after this many seconds is answered 504 (0 disables the timeout).
    api_request_timeout_s: float = Field(default=30.0, ge=0)
    # Addresses or networks of reverse proxies whose X-Forwarded-For/-Proto are believed
    # (comma-separated); none by default, so the peer address is the client.
    api_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # HTTP server limits (api/server.py): request line + headers, time to send them, time to
    # send the whole request, idle keep-alive, open connections + running requests, listen
    # backlog, requests before the process exits for its supervisor to restart it.
    api_max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    api_header_timeout_s: float = Field(default=10.0, gt=0)
    api_read_timeout_s: float = Field(default=30.0, gt=0)
    api_keepalive_timeout_s: int = Field(default=5, ge=1)
    api_limit_concurrency: int | None = Field(default=1000, ge=1)
    api_backlog: int = Field(default=2048, ge=1)
    api_limit_max_requests: int | None = Field(default=None, ge=1)

    # --- producer --------------------------------------------------------------
    producer_rate: float = Field(default=50.0, gt=0)
    # librdkafka linger.ms of the event producers (churn produce, dlq replay): fewer, larger
    # batches; the embedded broker's fetch cost grows with the batches a partition holds.
    producer_linger_ms: float = Field(default=20.0, ge=0, le=1000)

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

    @field_validator(
        "events_topic",
        "predictions_topic",
        "dlq_topic",
        "outcomes_topic",
        "outcomes_dlq_topic",
        "shadow_predictions_topic",
    )
    @classmethod
    def _topic_name(cls, value: str) -> str:
        if not _TOPIC.fullmatch(value) or value in (".", ".."):
            raise ValueError("a topic name is 1-249 of the characters A-Z a-z 0-9 . _ -")
        return value

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _tracking_uri(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        # MLflow would take a bare path as a file store relative to wherever `churn` runs.
        if value != "databricks" and not _URI_SCHEME.match(value):
            raise ValueError(
                f"not a tracking URI with a scheme, e.g. file:///abs/path/mlruns, sqlite:///mlflow.db, "
                f"http://host:5000: {value!r}"
            )
        return value

    @field_validator("mlflow_experiment")
    @classmethod
    def _experiment_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an MLflow experiment name is not blank")
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secret_files = SecretFiles(settings_cls, os.environ)
        return init_settings, env_settings, secret_files, dotenv_settings, file_secret_settings

    @field_validator("api_trusted_proxies", mode="before")
    @classmethod
    def _proxies_are_networks(cls, value: Any) -> list[str]:
        items = value.split(",") if isinstance(value, str) else list(value or [])
        networks = []
        for item in (str(i).strip() for i in items):
            if not item:
                continue
            try:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError as exc:
                raise ValueError(f"not an IP address or network: {item!r}") from exc
        return networks

    @field_validator("api_rate_limit", "api_auth_failure_limit")
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

    @model_validator(mode="after")
    def _limits_agree(self) -> Settings:
        if self.dlq_max_value_bytes < self.max_event_bytes:
            raise ValueError(
                f"CHURN_DLQ_MAX_VALUE_BYTES ({self.dlq_max_value_bytes}) must be at least "
                f"CHURN_MAX_EVENT_BYTES ({self.max_event_bytes}): an event's dead letter is never cut"
            )
        if self.delivery_retry_backoff_max_s < self.delivery_retry_backoff_s:
            raise ValueError(
                "CHURN_DELIVERY_RETRY_BACKOFF_MAX_S must be at least CHURN_DELIVERY_RETRY_BACKOFF_S"
            )
        return self

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
