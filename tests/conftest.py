"""Shared fixtures: a real Kafka-compatible broker, a real Prometheus and a small trained model.

The broker, in order of preference: ``CHURN_KAFKA_BOOTSTRAP_SERVERS`` if set;
a testcontainers ``KafkaContainer`` when a Docker engine answers (and
testcontainers is installed); else the embedded Tansu broker on a free port.
Integration tests never skip: if no broker can be started, they error.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.internals import ResponseLog, known_digests
from tests.support.kafka_tools import KafkaTools
from tests.support.prometheus import PrometheusServer

log = logging.getLogger(__name__)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-minutes",
        type=float,
        default=0.0,
        help="Run the fuzz_long tests for this many minutes (they are deselected without it).",
    )
    parser.addoption(
        "--model-store-cache",
        type=Path,
        default=None,
        help="Train the `model_store` fixture's model into this directory once and reuse it in later "
        "sessions (mutation testing runs one short session per mutant).",
    )


_PLAIN_ID = re.compile(r"[A-Za-z0-9_.+-]+")


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """Test ids that survive a command line: text or bytes with other characters (quotes, spaces,
    backslashes, control characters) get a readable part and a checksum instead of pytest's escapes.

    mutmut runs the tests of a mutant by node id; an id pytest cannot find again from the command
    line ends that run as a usage error, which mutmut would count as a killed mutant.
    """
    if not isinstance(val, str | bytes):
        return None
    raw = val.encode("utf-8", "surrogatepass") if isinstance(val, str) else val
    text = raw.decode("ascii", "replace")
    if _PLAIN_ID.fullmatch(text):
        return None
    readable = re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_")[:24]
    return f"{readable or argname}-{zlib.crc32(raw):08x}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (reported as deselected, not skipped) the fuzz_long tests unless --fuzz-minutes is given."""
    if config.getoption("--fuzz-minutes"):
        return
    long = [item for item in items if item.get_closest_marker("fuzz_long") is not None]
    if long:
        config.hook.pytest_deselected(items=long)
        items[:] = [item for item in items if item.get_closest_marker("fuzz_long") is None]


def _docker_answers() -> bool:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return False
    path = host.removeprefix("unix://")
    if not os.path.exists(path):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"OK" in sock.recv(1024)
    except OSError:
        return False


#: Which broker the session's ``kafka_bootstrap`` is: "configured", "container" or "embedded".
BROKER_KIND = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[str]:
    configured = os.environ.get("CHURN_KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        pytestconfig.stash[BROKER_KIND] = "configured"
        yield configured
        return
    if _docker_answers():
        try:
            from testcontainers.kafka import KafkaContainer  # type: ignore[import-not-found]
        except ImportError:
            log.warning("Docker answers but testcontainers is not installed; using the embedded broker")
        else:
            pytestconfig.stash[BROKER_KIND] = "container"
            with KafkaContainer() as container:
                yield container.get_bootstrap_server()
            return
    from devstack.broker import EmbeddedBroker

    pytestconfig.stash[BROKER_KIND] = "embedded"
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log_path) as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def broker_kind(kafka_bootstrap: str, pytestconfig: pytest.Config) -> str:
    """``embedded`` when the session runs on the embedded Tansu broker (always so in CI)."""
    return pytestconfig.stash[BROKER_KIND]


@pytest.fixture(scope="session")
def kafka(kafka_bootstrap: str) -> KafkaTools:
    return KafkaTools(kafka_bootstrap)


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """A store with one small promoted model (spline logistic on 2,000 synthetic rows)."""
    from training.run import TrainConfig, train

    cache: Path | None = pytestconfig.getoption("--model-store-cache")
    if cache is not None and (cache / "CURRENT").is_file():
        return cache
    store = cache if cache is not None else tmp_path_factory.mktemp("store")
    train(TrainConfig(store=store, candidates=["spline_logistic"], plots=False, rows=2000))
    return store


@pytest.fixture(scope="session")
def predictor(model_store: Path):  # type: ignore[no-untyped-def]
    from models.predictor import Predictor
    from models.registry import ModelRegistry

    return Predictor.from_registry(ModelRegistry(model_store))


StartPrometheus = Callable[..., PrometheusServer]


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[StartPrometheus]:
    """Start a real Prometheus scraping the given targets; stopped after the test.

    Usage: ``prom = prometheus_server(scorer_targets=["127.0.0.1:6066"], api_targets=[...])``.
    """
    started: list[PrometheusServer] = []

    def start(
        scorer_targets: Sequence[str] = (), api_targets: Sequence[str] = (), **options: object
    ) -> PrometheusServer:
        workdir = tmp_path / f"prometheus-{len(started)}"
        workdir.mkdir()
        server = PrometheusServer(workdir, scorer_targets, api_targets, **options)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def _answers_leak_nothing(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ResponseLog]:
    """In the API test modules (``test_api*``), every response an httpx client gets (TestClient and
    clients over ASGITransport or real sockets) is scanned after the test: no filesystem path, no
    stack trace, no hash of a stored artifact (tests/support/internals.py)."""
    log = ResponseLog()
    if not request.module.__name__.rsplit(".", 1)[-1].startswith("test_api"):
        yield log
        return
    log.installed(monkeypatch)
    yield log
    if not log.seen:
        return
    base = tmp_path_factory.getbasetemp()
    repo = str(Path(__file__).resolve().parents[1])
    problems = list(log.problems(known_digests(base), extra_paths=(str(base), repo)))
    assert not problems, "internals in API answers:\n" + "\n".join(problems[:10])
