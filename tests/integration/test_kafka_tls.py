"""Producer, scorer and consumer over TLS (mutual TLS) with a CA made in the test.

Topology: the embedded broker listens in plaintext on a private port and
advertises the stunnel port; stunnel accepts TLS there (client certificate
required) and forwards to the broker. Clients learn only the TLS address from
the metadata, so every connection after bootstrap also goes through TLS.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from config.settings import Settings
from devstack.broker import EmbeddedBroker
from devstack.ports import free_port
from kafka_io.broker_watch import kafka_ready
from kafka_io.client_config import confluent_consumer
from kafka_io.topics import ensure_topics
from tests.support.scorer_process import CHURN, ScorerProcess, scorer_env
from tests.support.tls_certs import Pki, make_pki
from tests.support.tls_proxy import TlsProxy

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class TlsBroker:
    pki: Pki
    bootstrap: str  # the TLS address (stunnel)
    plain_port: int  # the broker's own plaintext port (never given to a client)
    proxy: TlsProxy


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    work = tmp_path_factory.mktemp("tls")
    pki = make_pki(work / "pki")
    inner, outer = free_port(), free_port()
    with (
        TlsProxy(pki, outer, inner, work, mutual=True) as proxy,
        EmbeddedBroker(inner, log_path=work / "tansu.log", advertised=f"127.0.0.1:{outer}"),
    ):
        yield TlsBroker(pki, f"127.0.0.1:{outer}", inner, proxy)


def _mtls_env(broker: TlsBroker) -> dict[str, str]:
    return {
        "CHURN_KAFKA_SECURITY_PROTOCOL": "SSL",
        "CHURN_KAFKA_SSL_CAFILE": str(broker.pki.ca_cert),
        "CHURN_KAFKA_SSL_CERTFILE": str(broker.pki.client_cert),
        "CHURN_KAFKA_SSL_KEYFILE": str(broker.pki.client_key),
    }


def _mtls_settings(broker: TlsBroker, **extra: object) -> Settings:
    return Settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=broker.pki.ca_cert,
        kafka_ssl_certfile=broker.pki.client_cert,
        kafka_ssl_keyfile=broker.pki.client_key,
        **extra,  # type: ignore[arg-type]
    )


def test_producer_scorer_and_consumer_over_mutual_tls(
    tls_broker: TlsBroker, model_store: Path, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = {"events": f"tls-events-{tag}", "predictions": f"tls-pred-{tag}", "dlq": f"tls-dlq-{tag}"}
    settings = _mtls_settings(
        tls_broker,
        events_topic=topics["events"],
        predictions_topic=topics["predictions"],
        dlq_topic=topics["dlq"],
    )
    ensure_topics(settings)
    env = scorer_env(tls_broker.bootstrap, model_store, topics, f"tls-scorer-{tag}") | _mtls_env(tls_broker)
    scorer = ScorerProcess(env, tmp_path / "scorer.log")
    try:
        scorer.wait_metrics(timeout=60)
        count = 300
        produced = subprocess.run(
            [CHURN, "produce", "--count", str(count), "--unlimited", "--seed", "5"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert produced.returncode == 0, produced.stdout + produced.stderr
        consumer = Consumer(confluent_consumer(settings, f"tls-reader-{tag}"))
        consumer.subscribe([topics["predictions"]])
        seen: set[str] = set()
        deadline = time.monotonic() + 90
        try:
            while len(seen) < count and time.monotonic() < deadline:
                assert scorer.running(), scorer.tail()
                for message in consumer.consume(500, timeout=0.5):
                    if message.error() is None:
                        seen.add(orjson.loads(message.value())["event_id"])  # type: ignore[arg-type]
        finally:
            consumer.close()
        assert len(seen) == count, scorer.tail()
        # `churn consume` (the consumer tool) reads the same predictions over TLS.
        consumed = subprocess.run(
            [CHURN, "consume", "--from-beginning", "--count", str(count), "--timeout", "60"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert consumed.returncode == 0, consumed.stdout + consumed.stderr
        assert f"read {count} records" in consumed.stdout
        assert "connected remote server" in tls_broker.proxy.log()  # traffic went through stunnel
    finally:
        if scorer.running():
            scorer.kill()


def test_only_tls_clients_with_a_certificate_get_in(tls_broker: TlsBroker, tmp_path: Path) -> None:
    # The mTLS client is answered (readiness probe with the security settings) ...
    assert kafka_ready(tls_broker.bootstrap, timeout=5.0, settings=_mtls_settings(tls_broker))
    # ... a PLAINTEXT client on the TLS port is not ...
    plain = AdminClient({"bootstrap.servers": tls_broker.bootstrap, "log_level": 0})
    with pytest.raises(KafkaException):
        plain.list_topics(timeout=3)
    assert not kafka_ready(tls_broker.bootstrap, timeout=3.0)
    # ... nor a TLS client without a client certificate (stunnel requires one).
    ca_only = Settings(
        kafka_bootstrap_servers=tls_broker.bootstrap,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=tls_broker.pki.ca_cert,
    )
    assert not kafka_ready(tls_broker.bootstrap, timeout=3.0, settings=ca_only)
    # A client whose certificate comes from another CA is refused, and does not trust the server.
    other = make_pki(tmp_path / "other-pki")
    stranger = Settings(
        kafka_bootstrap_servers=tls_broker.bootstrap,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=other.ca_cert,
        kafka_ssl_certfile=other.client_cert,
        kafka_ssl_keyfile=other.client_key,
    )
    assert not kafka_ready(tls_broker.bootstrap, timeout=3.0, settings=stranger)
