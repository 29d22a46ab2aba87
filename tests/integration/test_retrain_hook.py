"""`churn retrain --listen` as a real process on the embedded broker: the API key outcomes over HTTP,
a firing alert that runs a gated retrain whose decision carries the alert, and a real Alertmanager
(Debian's prometheus-alertmanager) with the shipped receiver config posting to it after
`amtool alert add`. The topics are empty, so each run records `retrain_skipped` (nothing to train
on): what is checked is the trigger path, not the training (tests/integration/test_shadow_scoring.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from devstack.ports import free_port
from devstack.processes import ChurnProcess
from models.registry import ModelRegistry
from tests.support.prometheus import find_binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "ad" * 20
PREDICT = "pr" * 20


def alert_body(name: str, status: str = "firing") -> bytes:
    return orjson.dumps(
        {
            "version": "4",
            "groupKey": "{}:{}",
            "status": status,
            "receiver": "retrain",
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://am",
            "alerts": [
                {
                    "status": status,
                    "labels": {"alertname": name, "severity": "warning"},
                    "annotations": {},
                    "startsAt": "2026-12-02T10:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": "f1",
                }
            ],
        }
    )


def wait_for(what: str, check: Callable[[], Any], timeout: float, process: ChurnProcess) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.running(), f"the webhook exited while waiting for {what}:\n{process.tail()}"
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{process.tail()}")


class Hook:
    def __init__(self, process: ChurnProcess, url: str, store: Path) -> None:
        self.process = process
        self.url = url
        self.registry = ModelRegistry(store)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def post(self, body: bytes, **headers: str) -> httpx.Response:
        headers.setdefault("Content-Type", "application/json")
        return httpx.post(f"{self.url}/alerts", content=body, headers=headers, timeout=10)

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line.split()[-1])
        return 0.0

    def retrain_decisions(self) -> list[dict[str, Any]]:
        return [d for d in self.registry.decisions() if d["action"].startswith("retrain")]


@pytest.fixture
def start_hook(kafka_bootstrap: str, model_store: Path, tmp_path: Path) -> Iterator[Callable[..., Hook]]:
    started: list[ChurnProcess] = []

    def start(*extra: str, keys: bool = True, host: str = "127.0.0.1") -> Hook:
        store = tmp_path / f"store{len(started)}"
        shutil.copytree(model_store, store)
        (store / "decisions.jsonl").unlink(missing_ok=True)
        port = free_port()
        env = {
            **os.environ,
            "CHURN_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CHURN_MODEL_STORE": str(store),
            "CHURN_EVENTS_TOPIC": f"absent-events-{time.time_ns()}",
            "CHURN_OUTCOMES_TOPIC": f"absent-outcomes-{time.time_ns()}",
        }
        env.pop("CHURN_API_KEY", None)
        env.pop("CHURN_API_KEYS_FILE", None)
        if keys:
            keys_file = tmp_path / "keys"
            keys_file.write_text(f"ops admin {ADMIN}\nbilling predict {PREDICT}\n", encoding="utf-8")
            env["CHURN_API_KEYS_FILE"] = str(keys_file)
        args = ["retrain", "--listen", f"{host}:{port}", "--idle", "0.5", *extra]
        process = ChurnProcess(args, env, tmp_path / f"retrain{len(started)}.log")
        started.append(process)
        return Hook(process, f"http://127.0.0.1:{port}", store)

    yield start
    for process in started:
        if process.running():
            process.stop(timeout=30)


def test_the_key_decides_and_a_firing_alert_runs_a_retrain_with_the_alert_in_its_evidence(
    start_hook: Callable[..., Hook],
) -> None:
    hook = start_hook("--cooldown", "0s")
    wait_for("/health", hook.healthy, 90, hook.process)
    drift = alert_body("ChurnPredictionDrift")
    assert hook.post(drift).status_code == 401
    assert hook.post(drift, Authorization="Bearer " + "x" * 40).status_code == 401
    assert hook.post(drift, Authorization=f"Bearer {PREDICT}").status_code == 403
    bad = hook.post(b'{"version": "4", "status": "firing", "alerts": []}', Authorization=f"Bearer {ADMIN}")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "alerts"
    resolved = hook.post(alert_body("ChurnPredictionDrift", "resolved"), Authorization=f"Bearer {ADMIN}")
    assert resolved.status_code == 200 and resolved.json()["status"] == "ignored"
    assert hook.retrain_decisions() == []

    accepted = hook.post(drift, Authorization=f"Bearer {ADMIN}")
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "started"
    (decision,) = wait_for("the retrain's decision", hook.retrain_decisions, 90, hook.process)
    assert decision["action"] == "retrain_skipped"  # empty topics: nothing to train on
    (trigger,) = decision["evidence"]["trigger"]
    assert trigger["source"] == "alert"
    assert [a["alertname"] for a in trigger["alerts"]] == ["ChurnPredictionDrift"]
    wait_for(
        "the run counted",
        lambda: hook.metric("churn_retrain_runs_total", decision="skipped"),
        10,
        hook.process,
    )
    assert (
        hook.metric("churn_retrain_triggers_total", alertname="ChurnPredictionDrift", outcome="started") == 1
    )
    assert hook.metric("churn_retrain_auth_failures_total", reason="invalid_key") == 1
    assert hook.process.stop(timeout=30) == 0


def test_without_a_key_only_loopback_is_served(start_hook: Callable[..., Hook]) -> None:
    hook = start_hook(keys=False, host="0.0.0.0")
    code = hook.process.process.wait(timeout=90)
    assert code != 0
    assert "without an API key" in hook.process.tail()


def test_a_real_alertmanager_with_the_shipped_receiver_triggers_an_authenticated_retrain(
    start_hook: Callable[..., Hook], tmp_path: Path
) -> None:
    # Debian installs the server as prometheus-alertmanager; upstream's tarball as alertmanager.
    alertmanager = shutil.which("alertmanager") or find_binary("prometheus-alertmanager")
    amtool = find_binary("amtool")
    hook = start_hook("--cooldown", "1h")
    # The shipped configuration, pointed at this webhook and this key file, with short waits.
    config = yaml.safe_load((ROOT / "monitoring" / "alertmanager.yml").read_text(encoding="utf-8"))
    (receiver,) = [r for r in config["receivers"] if r["name"] == "retrain"]
    (webhook,) = receiver["webhook_configs"]
    webhook["url"] = f"{hook.url}/alerts"
    key_file = tmp_path / "api_key"
    key_file.write_text(ADMIN + "\n", encoding="utf-8")
    webhook["http_config"]["authorization"]["credentials_file"] = str(key_file)
    config["route"].update(group_wait="1s", group_interval="1s")
    am_config = tmp_path / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(config), encoding="utf-8")
    am_port = free_port()
    am_url = f"http://127.0.0.1:{am_port}"
    am_log = (tmp_path / "alertmanager.log").open("wb")
    am = subprocess.Popen(
        [
            alertmanager,
            f"--config.file={am_config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        stdout=am_log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for("/health", hook.healthy, 90, hook.process)

        def am_ready() -> bool:
            try:
                return httpx.get(f"{am_url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("Alertmanager ready", am_ready, 60, hook.process)
        for name in ("ChurnPredictionDrift", "ChurnApiDown"):
            added = subprocess.run(
                [
                    amtool,
                    "alert",
                    "add",
                    name,
                    "severity=warning",
                    "instance=scorer:6066",
                    f"--alertmanager.url={am_url}",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert added.returncode == 0, added.stdout + added.stderr
        (decision,) = wait_for("the retrain's decision", hook.retrain_decisions, 90, hook.process)
        (trigger,) = decision["evidence"]["trigger"]
        (alert,) = trigger["alerts"]
        assert alert["alertname"] == "ChurnPredictionDrift" and alert["receiver"] == "retrain"
        assert alert["labels"]["instance"] == "scorer:6066"
        assert (
            hook.metric("churn_retrain_triggers_total", alertname="ChurnPredictionDrift", outcome="started")
            == 1
        )
        # Only the retrain route's alerts reach the webhook, and always with the key.
        assert hook.metric("churn_retrain_triggers_total", alertname="other", outcome="ignored") == 0
        for reason in ("missing_key", "invalid_key", "insufficient_scope"):
            assert hook.metric("churn_retrain_auth_failures_total", reason=reason) == 0
    finally:
        am.terminate()
        am.wait(timeout=30)
        am_log.close()
    assert hook.process.stop(timeout=30) == 0
