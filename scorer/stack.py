"""Run the local stack as child processes and stop all of them together (``churn up``).

The :class:`Stack` owns everything it starts: the embedded broker (only when
nothing listens at the bootstrap address), the scorer, the API (when the
``cli.api`` module exists) and a demo producer. :meth:`Stack.stop` stops them in
reverse order — producer first, broker last — with SIGTERM, then SIGKILL after a
grace period, so nothing is left running.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from config.settings import Settings
from scorer.broker import EmbeddedBroker, port_open, split_bootstrap

log = logging.getLogger(__name__)


def churn_executable() -> str:
    """The ``churn`` script next to this interpreter (works inside a venv without activation)."""
    candidate = Path(sys.executable).with_name("churn")
    return str(candidate) if candidate.exists() else "churn"


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    url: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None


@dataclass
class Stack:
    settings: Settings
    logs_dir: Path
    demo_rate: float = 20.0
    with_api: bool = True
    broker: EmbeddedBroker | None = None
    children: list[Child] = field(default_factory=list)

    # ------------------------------------------------------------------ start
    def ensure_broker(self) -> str:
        """Start the embedded broker unless something already listens at the bootstrap address."""
        host, port = split_bootstrap(self.settings.kafka_bootstrap_servers)
        if port_open(host, port):
            log.info("using the Kafka broker already listening at %s:%d", host, port)
            return "existing"
        self.broker = EmbeddedBroker(port=port, host=host, log_path=self.logs_dir / "broker.log").start()
        return "embedded"

    def needs_model(self) -> bool:
        from models.registry import ModelRegistry

        return ModelRegistry(self.settings.model_store).current() is None

    def train_model(self, rows: int = 7043, candidates: list[str] | None = None) -> Child:
        """Start ``churn train`` (synthetic data, promote) as a child, so a Ctrl-C can stop it too."""
        args = ["train", "--store", str(self.settings.model_store), "--rows", str(rows), "--no-plots"]
        for candidate in candidates or []:
            args += ["--candidate", candidate]
        return self.spawn("train", args)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["CHURN_KAFKA_BOOTSTRAP_SERVERS"] = self.settings.kafka_bootstrap_servers
        env["CHURN_MODEL_STORE"] = str(Path(self.settings.model_store).resolve())
        env["CHURN_SCORER_WEB_PORT"] = str(self.settings.scorer_web_port)
        env["CHURN_API_PORT"] = str(self.settings.api_port)
        env["CHURN_EVENTS_TOPIC"] = self.settings.events_topic
        env["CHURN_PREDICTIONS_TOPIC"] = self.settings.predictions_topic
        env["CHURN_DLQ_TOPIC"] = self.settings.dlq_topic
        return env

    def spawn(self, name: str, args: list[str], url: str | None = None) -> Child:
        log_path = self.logs_dir / f"{name}.log"
        log_file = log_path.open("ab")
        process = subprocess.Popen(
            [churn_executable(), *args],
            env=self._env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Own process group: a terminal Ctrl-C reaches only `churn up`, which stops
            # the children in order instead of all of them at once.
            start_new_session=True,
        )
        child = Child(name, process, log_path, log_file, url)
        self.children.append(child)
        log.info("started %s pid=%d log=%s", name, process.pid, log_path)
        return child

    def start_services(self) -> None:
        s = self.settings
        self.spawn("scorer", ["score"], url=f"http://{s.scorer_web_host}:{s.scorer_web_port}/metrics")
        if self.with_api and api_available():
            # The API engineer's `churn api` reads the same CHURN_* settings.
            self.spawn("api", ["api"], url=f"http://{s.api_host}:{s.api_port}")
        self.spawn("producer", ["produce", "--rate", f"{self.demo_rate:g}"])

    # ------------------------------------------------------------------ run
    def first_exited(self) -> Child | None:
        """The first long-running child that has exited (the one-shot ``train`` child excluded)."""
        for child in self.children:
            if child.name != "train" and not child.running():
                return child
        return None

    # ------------------------------------------------------------------ stop
    def stop(self, grace: float = 20.0) -> None:
        """Stop children newest first (SIGTERM, then SIGKILL after ``grace``), then the broker."""
        for child in reversed(self.children):
            if child.running():
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    log.warning("%s ignored SIGTERM for %.0f s; killing pid=%d", child.name, grace, child.pid)
                    child.process.kill()
                    child.process.wait(timeout=10)
            log.info("stopped %s pid=%d exit=%s", child.name, child.pid, child.process.returncode)
            child.log_file.close()
        if self.broker is not None:
            self.broker.stop()


def api_available() -> bool:
    """Whether the API command (built in parallel, issue 'api') is installed in this tree."""
    return importlib.util.find_spec("cli.api") is not None


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return True
        time.sleep(0.2)
    return False
