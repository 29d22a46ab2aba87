"""Child processes, ``churn`` sub-commands above all: the one way to find the executable and start them.

:class:`ChildProcess` runs a command with a given environment, its output
appended to a log file; :class:`ChurnProcess` runs a ``churn`` sub-command;
:class:`ScorerProcess` (``churn score``) and :class:`QualityProcess` (``churn
quality``) are children that can also be asked for their metrics and health
(``/metrics`` on ``CHURN_SCORER_WEB_PORT`` / ``CHURN_QUALITY_WEB_PORT``). ``churn up``, the
chaos harness, the benchmarks and the tests start their children through
these classes.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def churn_executable() -> str:
    """The ``churn`` script next to this interpreter (works inside a venv without activation)."""
    candidate = Path(sys.executable).with_name("churn")
    return str(candidate) if candidate.exists() else "churn"


class ChildProcess:
    """One command in a child process; stdout and stderr go to ``log_path``.

    ``new_session`` puts the child in a process group of its own, so that a Ctrl-C in
    the terminal reaches only the parent, which then stops its children in order.
    ``name`` and ``url``, where the child serves, are for people.
    """

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        *,
        name: str,
        new_session: bool = False,
        url: str | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.env = dict(env)
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            list(command),
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=new_session,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send ``sig`` and wait; the exit code, or None if it was still running after ``timeout``
        and had to be killed."""
        if self.running():
            self.process.send_signal(sig)
        try:
            code: int | None = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s ignored signal %d for %.0f s; killing pid=%d", self.name, sig, timeout, self.pid)
            self.process.kill()
            self.process.wait(timeout=10)
            code = None
        self._log.close()
        return code

    def kill(self) -> None:
        """SIGKILL: no clean-up in the child."""
        self.process.kill()
        self.process.wait(timeout=10)
        self._log.close()

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the child's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class ChurnProcess(ChildProcess):
    """``churn ARGS...`` in a child process; named after its sub-command unless ``name`` says otherwise."""

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        *,
        new_session: bool = False,
        name: str | None = None,
        url: str | None = None,
    ) -> None:
        command = [churn_executable(), *args]
        super().__init__(command, env, log_path, name=name or args[0], new_session=new_session, url=url)


class ServiceProcess(ChurnProcess):
    """A long-running ``churn`` sub-command that serves ``/metrics`` and ``/health/*`` on ``web_port``."""

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        *,
        web_port: int,
        name: str,
        new_session: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.web_port = web_port
        self.web_url = f"http://{host}:{web_port}"
        self.metrics_url = f"{self.web_url}/metrics"
        super().__init__(args, env, log_path, new_session=new_session, name=name, url=self.metrics_url)

    def metrics(self) -> str:
        """The ``/metrics`` page; raises OSError while it is not served."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:  # noqa: S310 (http URL built here)
            return str(response.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            series, _, label_text = head.partition("{")
            if series != name:
                continue
            if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
                total += float(value)
        return total

    def wait_metrics(self, timeout: float = 30.0) -> None:
        """Block until ``/metrics`` answers; raise if the process exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                self.metrics()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} /metrics did not come up\n{self.tail()}") from None
                time.sleep(0.2)

    def health(self, probe: str) -> tuple[int, dict[str, object]]:
        """``(status, JSON body)`` of ``/health/<probe>`` (``live`` or ``ready``); OSError if not served."""
        url = f"{self.web_url}/health/{probe}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (http URL built here)
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), json.loads(error.read())

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until ``/health/ready`` answers 200; raise if the process exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        body: dict[str, object] = {}
        while True:
            self._check_alive()
            try:
                status, body = self.health("ready")
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {self.name} did not become ready: {body}\n{self.tail()}")
            time.sleep(0.2)

    def _check_alive(self) -> None:
        if not self.running():
            raise RuntimeError(f"the {self.name} exited with code {self.process.returncode}\n{self.tail()}")


class ScorerProcess(ServiceProcess):
    """``churn score [--engine ENGINE] [extra...]``, configured through ``CHURN_*`` variables in ``env``.

    Its metrics are read from ``host`` on the port ``CHURN_SCORER_WEB_PORT`` names.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        *extra: str,
        engine: str | None = None,
        new_session: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        args = ["score", *(["--engine", engine] if engine else []), *extra]
        web_port = int(env["CHURN_SCORER_WEB_PORT"])
        super().__init__(
            args, env, log_path, web_port=web_port, name="scorer", new_session=new_session, host=host
        )

    def consumed(self) -> float:
        """``churn_events_consumed_total`` now; 0 while ``/metrics`` is not up yet."""
        try:
            return self.metric("churn_events_consumed_total")
        except OSError:
            return 0.0

    def wait_consumed(self, at_least: int, timeout: float = 60.0, poll_s: float = 0.05) -> None:
        """Block until ``churn_events_consumed_total`` reaches ``at_least``; raise if the scorer exits."""
        deadline = time.monotonic() + timeout
        while self.metric("churn_events_consumed_total") < at_least:
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the scorer consumed fewer than {at_least} events\n{self.tail()}")
            time.sleep(poll_s)


class QualityProcess(ServiceProcess):
    """``churn quality [extra...]``, configured through ``CHURN_*`` variables in ``env``.

    Its metrics are read from ``host`` on the port ``CHURN_QUALITY_WEB_PORT`` names.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        *extra: str,
        new_session: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        web_port = int(env["CHURN_QUALITY_WEB_PORT"])
        super().__init__(
            ["quality", *extra],
            env,
            log_path,
            web_port=web_port,
            name="quality",
            new_session=new_session,
            host=host,
        )
