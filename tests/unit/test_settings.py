"""Settings refuse nonsense: every setting with a bad value, from the environment and from a flag."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.main import app
from config.settings import Settings

#: A value each setting must refuse, as the environment spells it.
BAD: dict[str, str] = {
    "kafka_bootstrap_servers": "localhost",
    "kafka_security_protocol": "TLS",
    "kafka_sasl_mechanism": "GSSAPI",
    "kafka_session_timeout_s": "0",
    "kafka_heartbeat_interval_s": "-1",
    "kafka_fetch_max_wait_ms": "0",
    "kafka_consumer_options": '{"enable.auto.commit": true}',
    "kafka_producer_options": '{"acks": "0"}',
    "kafka_enable_idempotence": "maybe",
    "kafka_compression": "brotli",
    "events_topic": "events with spaces",
    "predictions_topic": "..",
    "dlq_topic": "x" * 250,
    "topic_partitions": "-1",
    "topic_replication": "0",
    "model_poll_interval_s": "0",
    "scorer_app_id": "",
    "scorer_max_batch": "0",
    "scorer_max_wait_s": "0",
    "scorer_web_host": "",
    "scorer_web_port": "65536",
    "max_event_bytes": "100",
    "max_event_time_skew_s": "-5",
    "scorer_engine": "nativ",
    "scorer_explain": "perhaps",
    "scorer_explain_top": "0",
    "scorer_explain_down": "20",
    "scorer_threads": "-1",
    "drift_window": "10",
    "scorer_live_timeout_s": "0",
    "api_host": "",
    "api_port": "-1",
    "api_workers": "0",
    "api_max_batch": "0",
    "api_max_body_bytes": "10",
    "api_cors_origins": "https://a.example",
    "api_access_log": "sometimes",
    "api_rate_limit": "lots",
    "api_rate_limit_by": "user",
    "api_request_timeout_s": "-1",
    "producer_rate": "0",
    "log_level": "LOUD",
    "api_auth_failure_limit": "often",
    "api_backlog": "0",
    "api_header_timeout_s": "0",
    "api_keepalive_timeout_s": "0",
    "api_limit_concurrency": "0",
    "api_limit_max_requests": "0",
    "api_max_header_bytes": "100",
    "api_read_timeout_s": "-1",
    "api_trusted_proxies": "not-an-address",
    "delivery_failing_after_s": "0",
    "delivery_retry_backoff_max_s": "0",
    "delivery_retry_backoff_s": "-1",
    "delivery_timeout_s": "0",
    "dlq_max_replays": "0",
    "dlq_max_value_bytes": "10",
    "lag_query_interval_s": "0",
    "model_allow_pickle": "perhaps",
    "outcomes_dlq_topic": "a/b",
    "outcomes_topic": "",
    "shadow_predictions_topic": "..",
    "producer_linger_ms": "5000",
    "quality_alert_margin": "2",
    "quality_alert_min_labelled": "0",
    "quality_app_id": "",
    "quality_horizon_days": "0",
    "quality_interval_s": "0",
    "quality_outcome_grace_s": "-1",
    "quality_store": "redis://",
    "quality_web_host": "",
    "quality_web_port": "70000",
    "quality_window": "5",
    "scorer_faust_fetch_wait_ms": "0",
    "scorer_native_fetch_wait_ms": "6000",
    "scoring_breaker_threshold": "0",
    "scoring_breaker_window": "1",
    "scoring_probe_interval_s": "0",
    "stall_after_s": "0",
    "stall_max_fetch_wait_ms": "0",
    "api_allow_unauthenticated": "sometimes",
    "shadow_scoring": "half",
    "mlflow_tracking_uri": "mlruns",  # a bare path: MLflow would resolve it against the working directory
    "mlflow_experiment": "   ",
}
#: Settings any value of their type is right for, and why.
FREE: dict[str, str] = {
    "kafka_sasl_username": "any user name",
    "kafka_sasl_password": "any secret",
    "kafka_ssl_cafile": "a path; check_security tests that it is a readable file before a client is built",
    "kafka_ssl_certfile": "as kafka_ssl_cafile",
    "kafka_ssl_keyfile": "as kafka_ssl_cafile",
    "model_store": "a path; the registry creates it",
    "api_key": "any secret",
    "api_keys_file": "a path; api/auth.py reads and checks it at start-up (tests/unit/test_api_auth.py)",
    "model_signing_key": "any secret; its length is checked where it is used (models/signing.py)",
    "quality_data_dir": "a path; the quality job creates it",
}


def test_every_setting_has_a_bad_value_or_a_reason_why_none_exists() -> None:
    assert set(BAD) | set(FREE) == set(Settings.model_fields)
    assert not set(BAD) & set(FREE)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_environment_value_is_refused_naming_the_setting(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"CHURN_{name.upper()}", BAD[name])
    with pytest.raises(ValueError, match=name):  # pydantic's ValidationError, or a parse error
        Settings()


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_flag_value_is_refused_too(name: str) -> None:
    """with_overrides (how a command applies its flags) validates like the environment."""
    value: Any = BAD[name]
    if name.endswith("_options") or name == "api_cors_origins":
        import json

        value = json.loads(value) if value.startswith("{") else value
    with pytest.raises(ValidationError) as refused:
        Settings().with_overrides(**{name: value})
    assert refused.value.errors()[0]["loc"][0] == name


def test_heartbeat_must_be_below_the_session_timeout() -> None:
    with pytest.raises(ValidationError, match="below CHURN_KAFKA_SESSION_TIMEOUT_S"):
        Settings(kafka_session_timeout_s=3, kafka_heartbeat_interval_s=3)


def test_good_values_are_taken_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_LOG_LEVEL", "debug")
    monkeypatch.setenv("CHURN_KAFKA_BOOTSTRAP_SERVERS", "kafka1:9092, [::1]:9093")
    monkeypatch.setenv("CHURN_KAFKA_CONSUMER_OPTIONS", '{"fetch.min.bytes": 65536, "client.id": "me"}')
    monkeypatch.setenv("CHURN_KAFKA_PRODUCER_OPTIONS", '{"acks": "all", "linger.ms": 10}')
    settings = Settings()
    assert settings.log_level == "DEBUG"
    assert settings.kafka_bootstrap_servers == "kafka1:9092,[::1]:9093"
    assert settings.kafka_consumer_options == {"fetch.min.bytes": 65536, "client.id": "me"}
    assert settings.with_overrides(scorer_engine="native").scorer_engine == "native"


# ------------------------------------------------------------------------- the CLI
runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["score", "--engine", "nativ"], "'nativ' is not one of 'faust', 'native'"),
        (["score", "--max-batch", "0"], "CHURN_SCORER_MAX_BATCH: Input should be greater than or equal to 1"),
        (["score", "--partitions", "-2"], "CHURN_TOPIC_PARTITIONS"),
        (["score", "--web-port", "70000"], "CHURN_SCORER_WEB_PORT"),
        (["score", "--max-wait", "0"], "CHURN_SCORER_MAX_WAIT_S"),
        (["score", "--bootstrap", "nohost"], "CHURN_KAFKA_BOOTSTRAP_SERVERS"),
        (["score", "--events-topic", "a/b"], "CHURN_EVENTS_TOPIC"),
        (["api", "--port", "99999"], "CHURN_API_PORT"),
        (["api", "--workers", "0"], "'--workers': Input should be greater than or equal to 1"),
        (["broker", "--port", "0"], "--port"),
        (["--log-level", "loud", "models", "list"], "CHURN_LOG_LEVEL"),
        (["score", "--kafka-option", "enable.auto.commit=true"], "enable.auto.commit"),
        (["score", "--kafka-option", "producer:acks=1"], "acks=1"),
        (["score", "--kafka-option", "consumer:group.id=mine"], "--app-id"),
        (["produce", "--kafka-option", "producer:transactional.id=t"], "transactions"),
        (["consume", "--kafka-option", "producer:linger.ms=5"], "builds no producer"),
        (["dlq", "replay", "--kafka-option", "novalue"], "KEY=VALUE"),
    ],
)
def test_commands_refuse_nonsense_with_a_clear_message(
    args: list[str], says: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("CHURN_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("CHURN_MODEL_STORE", str(tmp_path))
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    text = " ".join(re.sub("[\u2500-\u257f]", " ", result.output).split())  # without rich's box
    assert says in text, result.output


def test_a_bad_variable_stops_every_command_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_SCORER_ENGINE", "nativ")
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 1
    assert "CHURN_SCORER_ENGINE: Input should be 'faust' or 'native' (got 'nativ')" in result.output


def test_version() -> None:
    from importlib import metadata

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"churn-stream {metadata.version('churn-stream')}"
