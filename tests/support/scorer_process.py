"""Run ``churn score`` as a real subprocess, configured only through CHURN_* env vars."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from config.settings import Settings
from scorer.broker import free_port

CHURN = str(Path(sys.executable).with_name("churn"))


def scorer_env(bootstrap: str, store: Path, topics: dict[str, str], group: str) -> dict[str, str]:
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        model_store=store,
        events_topic=topics["events"],
        predictions_topic=topics["predictions"],
        dlq_topic=topics["dlq"],
        scorer_app_id=group,
        scorer_web_port=free_port(),
        topic_partitions=4,
    )
    return settings.child_env("scorer_web_port", "topic_partitions")


class ScorerProcess:
    def __init__(self, env: dict[str, str], log_path: Path, *extra: str, engine: str = "faust") -> None:
        self.env = env
        self.engine = engine
        self.web_port = int(env["CHURN_SCORER_WEB_PORT"])
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [CHURN, "score", "--engine", engine, *extra], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.web_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
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

    def wait_consumed(self, at_least: int, timeout: float = 60.0, poll_s: float = 0.05) -> None:
        """Block until ``churn_events_consumed_total`` reaches ``at_least``; fail if the scorer dies."""
        deadline = time.monotonic() + timeout
        while self.metric("churn_events_consumed_total") < at_least:
            assert time.monotonic() < deadline and self.running(), self.tail()
            time.sleep(poll_s)

    def wait_metrics(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.running(), self.tail()
            try:
                self.metrics()
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"scorer /metrics did not come up\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.running():
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"scorer ignored {sig} for {timeout} s\n{self.tail()}") from None
        finally:
            self._log.close()
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self._log.close()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
