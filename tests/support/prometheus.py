"""A real Prometheus server for tests (the Debian ``prometheus`` package's binary).

``PrometheusServer`` renders a configuration for the given scrape targets
(``monitoring.prometheus_config``), starts ``prometheus`` on a free port with a
temporary storage directory, waits for ``/-/ready`` and stops it afterwards.
``query()`` and friends talk to its HTTP API.

In CI (``CI=true``) a missing binary is a failure; locally the tests that need it
are skipped with the reason (install it with ``bash .ci/sysdeps.sh``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.ports import free_port
from monitoring import prometheus_config

BINARY_ENV = "CHURN_PROMETHEUS_BIN"


#: Where each tool comes from (``.ci/sysdeps.sh`` installs the Debian ones).
BINARY_SOURCES = {
    "prometheus": "Debian package 'prometheus'",
    "promtool": "Debian package 'prometheus'",
    "amtool": "Debian package 'prometheus-alertmanager'",
    "prometheus-alertmanager": "Debian package 'prometheus-alertmanager'",
    "kubectl": "the machine image's 'kubectl' package (kubectl kustomize)",
}


def find_binary(name: str) -> str:
    """Path of a tool of BINARY_SOURCES; fail in CI, skip locally when absent."""
    override = os.environ.get(BINARY_ENV) if name == "prometheus" else None
    path = override or shutil.which(name)
    if path:
        return path
    source = BINARY_SOURCES.get(name, "see .ci/sysdeps.sh")
    message = f"{name} not found on PATH ({source}; run: bash .ci/sysdeps.sh)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


class PrometheusError(RuntimeError):
    pass


class PrometheusServer:
    """One Prometheus process scraping the given targets every ``scrape_interval``."""

    def __init__(
        self,
        workdir: Path,
        scorer_targets: Sequence[str] = (),
        api_targets: Sequence[str] = (),
        *,
        lag_exporter_targets: Sequence[str] = (),
        quality_targets: Sequence[str] = (),
        scrape_interval: str = "1s",
        rule_files: Sequence[Path] | None = (prometheus_config.ALERTS_FILE,),
        binary: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.binary = binary or find_binary("prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = prometheus_config.write(
            workdir / "prometheus.yml",
            scorer_targets,
            api_targets,
            lag_exporter_targets=lag_exporter_targets,
            quality_targets=quality_targets,
            scrape_interval=scrape_interval,
            rule_files=rule_files,
        )
        self.log_file = workdir / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._client = httpx.Client(base_url=self.url, timeout=10.0)

    # --- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> PrometheusServer:
        storage = self.workdir / "data"
        storage.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={storage}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self._process.returncode}: {self.log()}")
            try:
                if self._client.get("/-/ready").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise PrometheusError(f"prometheus not ready after {timeout:.0f} s: {self.log()}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._process = None
        self._client.close()

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")[-4000:]

    # --- HTTP API --------------------------------------------------------------------
    def api(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` of a successful answer, else PrometheusError."""
        response = self._client.get(f"/api/v1/{path}", params=params)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {response.status_code} {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result vector (``[]`` when no series matches)."""
        data = self.api("query", query=expr)
        result = data["result"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return list(result)

    def value(self, expr: str) -> float:
        """The single value of an instant query that must return exactly one series."""
        result = self.query(expr)
        if len(result) != 1:
            raise PrometheusError(f"{expr}: expected one series, got {len(result)}: {result}")
        return float(result[0]["value"][1])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets")["activeTargets"])

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def wait_for(self, expr: str, timeout: float = 30.0, poll: float = 0.25) -> list[dict[str, Any]]:
        """Poll until ``expr`` returns at least one series; its result."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise PrometheusError(f"no data for {expr!r} after {timeout:.0f} s")
            time.sleep(poll)

    def wait_until_scraped(self, timeout: float = 30.0) -> None:
        """Every target has been scraped successfully at least once."""
        deadline = time.monotonic() + timeout
        while True:
            targets = self.targets()
            if targets and all(t["health"] == "up" for t in targets):
                return
            if time.monotonic() > deadline:
                states = [(t["scrapeUrl"], t["health"], t.get("lastError")) for t in targets]
                raise PrometheusError(f"targets not up after {timeout:.0f} s: {states}")
            time.sleep(0.25)
