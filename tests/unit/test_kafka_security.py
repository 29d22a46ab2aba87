"""Every Kafka client gets the same security settings, for every protocol.

The confluent-kafka clients are really constructed (librdkafka checks its
config and reads the certificate files on construction; nothing connects), and
the constructor argument is recorded; the Faust app's credentials are checked
through Faust's own translation to aiokafka options.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import confluent_kafka
import confluent_kafka.admin
import pytest
from typer.testing import CliRunner

import cli.main
import kafka_io.sink
import producer.publisher
from config.settings import Settings
from kafka_io.broker_watch import readiness_config
from kafka_io.client_config import KafkaSecurityError, confluent_common, faust_credentials, redacted
from tests.support.tls_certs import Pki, make_pki

PASSWORD = "s3cr3t-pa55word-never-logged"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _cases(pki: Pki) -> dict[str, dict[str, Any]]:
    ca = {"kafka_ssl_cafile": pki.ca_cert}
    mtls = {**ca, "kafka_ssl_certfile": pki.client_cert, "kafka_ssl_keyfile": pki.client_key}
    sasl = {"kafka_sasl_username": "churn", "kafka_sasl_password": PASSWORD}
    return {
        "plaintext": {"kafka_security_protocol": "PLAINTEXT"},
        "ssl-ca": {"kafka_security_protocol": "SSL", **ca},
        "ssl-mtls": {"kafka_security_protocol": "SSL", **mtls},
        "sasl-plaintext-plain": {
            "kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN", **sasl,
        },
        "sasl-ssl-scram256": {
            "kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-256", **sasl, **ca,
        },
        "sasl-ssl-scram512": {
            "kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512", **sasl, **mtls,
        },
    }  # fmt: skip


CASES = ["plaintext", "ssl-ca", "ssl-mtls", "sasl-plaintext-plain", "sasl-ssl-scram256", "sasl-ssl-scram512"]


def _settings(pki: Pki, case: str, tmp_path: Path) -> Settings:
    return Settings(
        kafka_bootstrap_servers="127.0.0.1:1",  # nothing listens; nothing here connects
        model_store=tmp_path / "store",
        **_cases(pki)[case],
    )


def _expected(settings: Settings) -> dict[str, Any]:
    """What every confluent-kafka client must carry, written out independently of kafka_config."""
    protocol = settings.kafka_security_protocol
    want: dict[str, Any] = {"security.protocol": protocol}
    if protocol.startswith("SASL_"):
        want["sasl.mechanism"] = settings.kafka_sasl_mechanism
        want["sasl.username"] = "churn"
        want["sasl.password"] = PASSWORD
    if protocol.endswith("SSL"):
        want["ssl.ca.location"] = str(settings.kafka_ssl_cafile)
        if settings.kafka_ssl_certfile:
            want["ssl.certificate.location"] = str(settings.kafka_ssl_certfile)
            want["ssl.key.location"] = str(settings.kafka_ssl_keyfile)
    return want


_SECURITY_KEYS = ("security.protocol", "sasl.", "ssl.")


def _security_part(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k.startswith(_SECURITY_KEYS)}


class Recorder:
    """Wraps the real confluent-kafka classes and keeps each constructor's config.

    The wrapper replaces the class in confluent_kafka and in every loaded module of ours
    that imported it by name.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.configs: dict[str, list[dict[str, Any]]] = {}
        for name in ("Producer", "Consumer"):
            real = getattr(confluent_kafka, name)
            wrapped = self._wrap(name, real)
            monkeypatch.setattr(confluent_kafka, name, wrapped)
            for module in list(sys.modules.values()):
                if module is not confluent_kafka and getattr(module, name, None) is real:
                    monkeypatch.setattr(module, name, wrapped)

    def _wrap(self, name: str, real: type) -> type:
        recorder = self

        def init(client: Any, config: dict[str, Any], *args: Any, **kwargs: Any) -> None:
            recorder.configs.setdefault(name, []).append(dict(config))
            real.__init__(client, config, *args, **kwargs)  # the real client validates the config

        return type(name, (real,), {"__init__": init})


@pytest.mark.parametrize("case", CASES)
def test_every_confluent_client_gets_the_same_security(
    case: str, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = _settings(pki, case, tmp_path)
    want = _expected(settings)
    recorder = Recorder(monkeypatch)

    producer.publisher.Publisher(settings)  # churn produce
    kafka_io.sink.DeliverySink(settings)  # the scorer's output producer
    probe = readiness_config("127.0.0.1:1", 0.1, settings)  # the embedded broker's readiness probe
    confluent_kafka.admin.AdminClient(probe)
    recorder.configs["AdminClient"] = [probe]
    _run_consume_cli(settings, monkeypatch)  # churn consume (and --dlq, same code path)

    assert len(recorder.configs["Producer"]) == 2
    assert len(recorder.configs["Consumer"]) == 1
    for configs in recorder.configs.values():
        for config in configs:
            assert _security_part(config) == want
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(settings)


def _run_consume_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if name == "kafka_sasl_password":
            value = PASSWORD
        elif isinstance(value, list | dict):
            continue
        monkeypatch.setenv(f"CHURN_{name.upper()}", str(value))
    result = CliRunner().invoke(cli.main.app, ["consume", "--dlq", "--timeout", "0.1"])
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output


@pytest.mark.parametrize("case", CASES)
def test_faust_worker_and_bench_get_the_same_security(case: str, pki: Pki, tmp_path: Path) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from scorer.faust_engine import faust_app

    settings = _settings(pki, case, tmp_path)
    credentials = faust_credentials(settings)
    auth = credentials_to_aiokafka_auth(credentials)
    protocol = settings.kafka_security_protocol
    assert auth["security_protocol"] == protocol
    if protocol.startswith("SASL_"):
        assert auth["sasl_mechanism"] == settings.kafka_sasl_mechanism
        assert auth["sasl_plain_username"] == "churn"
        assert auth["sasl_plain_password"] == PASSWORD
        assert PASSWORD not in repr(credentials)
    context = auth.get("ssl_context")
    if protocol.endswith("SSL"):
        # The CA is loaded; for mutual TLS the client certificate too (load_cert_chain would have failed).
        assert context.cert_store_stats()["x509_ca"] == 1
        assert context.check_hostname
    else:
        assert context is None
    bench_app = faust_app(settings)
    assert credentials_to_aiokafka_auth(bench_app.conf.broker_credentials)["security_protocol"] == protocol


def test_the_scorer_app_passes_credentials(pki: Pki, tmp_path: Path, model_store: Path) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
    from prometheus_client import CollectorRegistry

    from models.live import LiveModel
    from models.registry import ModelRegistry
    from monitoring.metrics import ScorerMetrics
    from scorer.engines import build_engine

    settings = _settings(pki, "sasl-ssl-scram512", tmp_path).with_overrides(scorer_engine="faust")
    metrics = ScorerMetrics.create(CollectorRegistry())
    scorer = build_engine(settings, LiveModel.load(ModelRegistry(model_store)), metrics)
    auth = credentials_to_aiokafka_auth(scorer.app.conf.broker_credentials)
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["ssl_context"] is not None


def test_redacted_hides_the_password(pki: Pki, tmp_path: Path) -> None:
    config = confluent_common(_settings(pki, "sasl-ssl-scram256", tmp_path))
    assert config["sasl.password"] == PASSWORD
    assert PASSWORD not in repr(redacted(config))
    assert redacted(config)["sasl.username"] == "churn"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u", "kafka_sasl_password": "p"},
         "CHURN_KAFKA_SASL_MECHANISM"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN"},
         "CHURN_KAFKA_SASL_PASSWORD"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": Path("/etc/hostname")},
         "CHURN_KAFKA_SSL_KEYFILE"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": Path("/nonexistent/ca.pem")},
         "not a readable file"),
    ],
)  # fmt: skip
def test_contradictory_settings_fail_clearly(overrides: dict[str, Any], message: str) -> None:
    """Each value is valid alone (an unknown mechanism is refused by Settings itself: test_settings)."""
    settings = Settings(**overrides)
    with pytest.raises(KafkaSecurityError, match=message):
        confluent_common(settings)
    with pytest.raises(KafkaSecurityError, match=message):
        faust_credentials(settings)
