"""The retrain webhook (``churn retrain --listen``): Alertmanager payloads, API key outcomes, and the
one-at-a-time rule (coalescing, cooldown) with a fake retrain function in place of training."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.auth import KeyStore, parse_keys_file, presented_key
from api.retrain_hook import (
    DEFAULT_ALERTNAMES,
    AlertmanagerPayload,
    check_hook_binding,
    create_hook_app,
    parse_listen,
    parse_payload,
)
from api.server import UnauthenticatedBindError
from monitoring.metrics import RetrainMetrics
from training.trigger import RetrainTrigger, Trigger, TriggerState

ADMIN = "a" * 40
PREDICT = "p" * 40
KEYS = f"ops admin {ADMIN}\nbilling predict {PREDICT}\n"


def payload(*alerts: tuple[str, str], version: str = "4") -> dict[str, Any]:
    """An Alertmanager v4 body with (alertname, status) alerts, as Alertmanager 0.25 sends it."""
    return {
        "version": version,
        "groupKey": '{}/{alertname=~"Churn.*"}:{alertname="ChurnPredictionDrift"}',
        "truncatedAlerts": 0,
        "status": "firing" if any(s == "firing" for _, s in alerts) else "resolved",
        "receiver": "retrain",
        "groupLabels": {"alertname": alerts[0][0]} if alerts else {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": name, "severity": "warning", "instance": "scorer:6066"},
                "annotations": {"summary": "drift"},
                "startsAt": "2026-12-02T10:00:00.000Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": f"fp-{name}",
            }
            for name, status in alerts
        ],
    }


# --- the one-at-a-time rule ---------------------------------------------------------------------


def test_a_trigger_starts_at_once_and_those_during_a_run_coalesce_into_one_follow_up() -> None:
    state = TriggerState(cooldown_s=0)
    assert state.submit(Trigger("alert"), now=0) == "started"
    first = state.take(now=0)
    assert first is not None and len(first) == 1
    assert state.submit(Trigger("alert"), now=1) == "queued"
    assert state.submit(Trigger("alert"), now=2) == "coalesced"
    assert state.submit(Trigger("schedule"), now=3) == "coalesced"
    assert state.take(now=4) is None  # still running
    state.finished()
    follow_up = state.take(now=5)
    assert follow_up is not None and [t.source for t in follow_up] == ["alert", "alert", "schedule"]
    state.finished()
    assert state.take(now=6) is None  # nothing more: three triggers made one follow-up


def test_the_cooldown_defers_a_follow_up_to_one_run_per_cooldown() -> None:
    state = TriggerState(cooldown_s=3600)
    state.submit(Trigger("alert"), now=0)
    assert state.take(now=0) is not None
    state.finished()  # a short run
    # A flapping alert, again and again within the hour: one follow-up, at the hour.
    assert state.submit(Trigger("alert"), now=60) == "queued"
    assert state.submit(Trigger("alert"), now=120) == "coalesced"
    assert state.wait_s(now=120) == 3480
    assert state.take(now=3599) is None
    batch = state.take(now=3600)
    assert batch is not None and len(batch) == 2
    state.finished()
    # After that run the next trigger waits for the cooldown again.
    assert state.submit(Trigger("alert"), now=3700) == "queued"
    assert state.take(now=3700) is None


def test_a_negative_cooldown_is_refused() -> None:
    with pytest.raises(ValueError, match="cooldown"):
        TriggerState(cooldown_s=-1)


class FakeRetrain:
    """Records each run's triggers; a run blocks until ``release`` is set."""

    def __init__(self, decision: str = "kept_challenger") -> None:
        self.calls: list[list[Trigger]] = []
        self.started = threading.Semaphore(0)
        self.release = threading.Event()
        self.decision = decision

    def __call__(self, triggers: Sequence[Trigger]) -> str:
        self.calls.append(list(triggers))
        self.started.release()
        assert self.release.wait(10)
        if self.decision == "boom":
            raise RuntimeError("broker away")
        return self.decision


def test_the_worker_runs_one_retrain_at_a_time_and_one_follow_up() -> None:
    fake = FakeRetrain()
    seen: list[str | None] = []
    trigger = RetrainTrigger(fake, cooldown_s=0, on_run=seen.append)
    trigger.start()
    try:
        assert trigger.submit(Trigger("alert", ({"alertname": "ChurnPredictionDrift"},))) == "started"
        assert fake.started.acquire(timeout=10)
        assert trigger.status()["running"] is True
        outcomes = [trigger.submit(Trigger("alert", ({"alertname": f"A{i}"},))) for i in range(5)]
        assert outcomes == ["queued", "coalesced", "coalesced", "coalesced", "coalesced"]
        fake.release.set()
        assert fake.started.acquire(timeout=10)  # the follow-up
        assert [t.alerts[0]["alertname"] for t in fake.calls[1]] == [f"A{i}" for i in range(5)]
    finally:
        trigger.stop(timeout=10)
    assert len(fake.calls) == 2
    assert seen == [None, "kept_challenger", None, "kept_challenger"]
    assert trigger.status() | {"cooldown_remaining_s": 0} == {
        "running": False,
        "pending_triggers": 0,
        "cooldown_remaining_s": 0,
        "runs": 2,
        "last_decision": "kept_challenger",
    }


def test_a_failing_retrain_is_reported_and_the_worker_goes_on() -> None:
    fake = FakeRetrain("boom")
    fake.release.set()
    seen: list[str | None] = []
    done = threading.Event()

    def on_run(decision: str | None) -> None:
        seen.append(decision)
        if decision is not None:
            done.set()

    trigger = RetrainTrigger(fake, cooldown_s=0, on_run=on_run)
    trigger.start()
    try:
        trigger.submit(Trigger("alert"))
        assert done.wait(10)
        done.clear()
        fake.decision = "promoted"
        assert trigger.submit(Trigger("alert")) == "started"
        assert done.wait(10)
    finally:
        trigger.stop(timeout=10)
    assert seen == [None, "failed", None, "promoted"]


def test_stop_drops_a_waiting_follow_up_and_waits_for_the_running_retrain() -> None:
    fake = FakeRetrain()
    trigger = RetrainTrigger(fake, cooldown_s=3600)
    trigger.start()
    trigger.submit(Trigger("alert"))
    assert fake.started.acquire(timeout=10)
    assert trigger.submit(Trigger("alert")) == "queued"
    threading.Timer(0.2, fake.release.set).start()
    trigger.stop(timeout=10)
    assert len(fake.calls) == 1 and fake.release.is_set()


# --- payloads -----------------------------------------------------------------------------------


def test_an_alertmanager_body_parses() -> None:
    parsed = parse_payload(orjson.dumps(payload(("ChurnPredictionDrift", "firing"))))
    assert isinstance(parsed, AlertmanagerPayload)
    assert parsed.alerts[0].labels["alertname"] == "ChurnPredictionDrift"
    assert parsed.alerts[0].starts_at is not None and parsed.alerts[0].starts_at.year == 2026


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"", 400, None),
        (b"{not json", 400, None),
        (b"[]", 422, "body"),
        (orjson.dumps(payload(("ChurnPredictionDrift", "firing"), version="3")), 422, "version"),
        (orjson.dumps({k: v for k, v in payload(("X", "firing")).items() if k != "alerts"}), 422, "alerts"),
        (orjson.dumps(payload()), 422, "alerts"),
        (orjson.dumps(payload(("", "firing"))), 422, "alerts.0.labels"),
        (orjson.dumps(payload(("X", "pending"))), 422, "alerts.0.status"),
        (orjson.dumps(payload(("X", "firing")) | {"status": 1}), 422, "status"),
    ],
)
def test_a_body_that_is_not_a_webhook_payload_is_refused_naming_the_field(
    body: bytes, status: int, field: str | None
) -> None:
    answer = parse_payload(body)
    assert not isinstance(answer, AlertmanagerPayload)
    assert answer.status_code == status
    parsed = orjson.loads(bytes(answer.body))
    if field is None:
        assert parsed["error"] == "invalid_json"
    else:
        assert field in [e["field"] for e in parsed["errors"]], parsed
        assert field in parsed["message"]


# --- the key ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_api_key", "authorization", "expected"),
    [
        (None, None, None),
        (b"k1", None, b"k1"),
        (None, b"Bearer k2", b"k2"),
        (None, b"bearer   k3 ", b"k3"),
        (b"k1", b"Bearer k2", b"k1"),
        (None, b"Basic dXNlcjpwYXNz", None),
        (None, b"Bearer ", None),
        (None, b"Bearer", None),
    ],
)
def test_the_key_is_read_from_x_api_key_or_a_bearer_authorization(
    x_api_key: bytes | None, authorization: bytes | None, expected: bytes | None
) -> None:
    assert presented_key(x_api_key, authorization) == expected


# --- the app ------------------------------------------------------------------------------------


class Hook:
    def __init__(self, client: TestClient, fake: FakeRetrain, metrics: RetrainMetrics) -> None:
        self.client = client
        self.fake = fake
        self.metrics = metrics

    def post(self, body: Any, **headers: str) -> Any:
        return self.client.post("/alerts", content=orjson.dumps(body), headers=headers)

    def count(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return value or 0.0


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[Hook]:
    keys_file = tmp_path / "keys"
    keys_file.write_text(KEYS, encoding="utf-8")
    fake = FakeRetrain()
    fake.release.set()
    metrics = RetrainMetrics.create(CollectorRegistry())
    trigger = RetrainTrigger(fake, cooldown_s=3600)
    trigger.start()
    app = create_hook_app(trigger, keys=KeyStore([], keys_file), metrics=metrics)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Hook(client, fake, metrics)
    trigger.stop(timeout=10)


DRIFT = payload(("ChurnPredictionDrift", "firing"))


def test_no_key_is_401(hook: Hook) -> None:
    answer = hook.post(DRIFT)
    assert answer.status_code == 401
    assert answer.json()["error"] == "missing_api_key"
    assert answer.headers["www-authenticate"] == "Bearer"
    assert hook.count("churn_retrain_auth_failures_total", reason="missing_key") == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer " + "b" * 40},
        {"X-API-Key": "b" * 40},
        {"Authorization": f"Basic {ADMIN}"},
        {"Authorization": ADMIN},
    ],
)
def test_a_wrong_key_or_scheme_is_401(hook: Hook, headers: dict[str, str]) -> None:
    answer = hook.post(DRIFT, **headers)
    assert answer.status_code == 401, answer.text
    assert hook.fake.calls == []


def test_a_key_without_the_admin_scope_is_403(hook: Hook) -> None:
    answer = hook.post(DRIFT, Authorization=f"Bearer {PREDICT}")
    assert answer.status_code == 403
    assert answer.json()["error"] == "insufficient_scope"
    assert hook.count("churn_retrain_auth_failures_total", reason="insufficient_scope") == 1
    assert hook.fake.calls == []


def test_the_key_is_checked_before_the_body(hook: Hook) -> None:
    assert hook.client.post("/alerts", content=b"{not json").status_code == 401


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {ADMIN}"}, {"X-API-Key": ADMIN}])
def test_a_firing_drift_alert_with_the_admin_key_queues_a_retrain(
    hook: Hook, headers: dict[str, str]
) -> None:
    answer = hook.post(DRIFT, **headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "started"
    assert answer.json()["alerts"] == ["ChurnPredictionDrift"]
    assert hook.fake.started.acquire(timeout=10)
    (trigger,) = hook.fake.calls[0]
    evidence = trigger.as_evidence()
    assert evidence["source"] == "alert"
    (alert,) = evidence["alerts"]
    assert alert["alertname"] == "ChurnPredictionDrift" and alert["labels"]["instance"] == "scorer:6066"
    assert alert["starts_at"].startswith("2026-12-02T10:00:00") and alert["receiver"] == "retrain"
    assert (
        hook.count("churn_retrain_triggers_total", alertname="ChurnPredictionDrift", outcome="started") == 1
    )


def test_within_the_cooldown_alerts_coalesce_into_one_waiting_retrain(hook: Hook) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    assert hook.post(DRIFT, **auth).json()["status"] == "started"
    assert hook.fake.started.acquire(timeout=10)
    live = payload(("ChurnLiveRocAucBelowTraining", "firing"))
    second = hook.post(live, **auth)
    assert second.status_code == 202 and second.json()["status"] == "queued"
    assert second.json()["retrain"]["cooldown_remaining_s"] > 3500
    assert hook.post(DRIFT, **auth).json()["status"] == "coalesced"
    assert len(hook.fake.calls) == 1
    labels = {"alertname": "ChurnLiveRocAucBelowTraining", "outcome": "queued"}
    assert hook.count("churn_retrain_triggers_total", **labels) == 1
    assert hook.client.get("/health").json()["retrain"]["pending_triggers"] == 2


@pytest.mark.parametrize(
    "body",
    [
        payload(("ChurnPredictionDrift", "resolved")),
        payload(("ChurnApiDown", "firing")),
        payload(("ChurnApiDown", "firing"), ("ChurnLiveRocAucBelowTraining", "resolved")),
    ],
)
def test_resolved_and_other_alerts_are_acknowledged_and_ignored(hook: Hook, body: dict[str, Any]) -> None:
    answer = hook.post(body, Authorization=f"Bearer {ADMIN}")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert hook.fake.calls == []
    assert hook.count("churn_retrain_triggers_total", alertname="other", outcome="ignored") == sum(
        a["labels"]["alertname"] == "ChurnApiDown" for a in body["alerts"]
    )


def test_only_the_matching_alerts_of_a_mixed_group_are_in_the_evidence(hook: Hook) -> None:
    body = payload(("ChurnPredictionDrift", "firing"), ("ChurnApiDown", "firing"))
    assert hook.post(body, Authorization=f"Bearer {ADMIN}").status_code == 202
    assert hook.fake.started.acquire(timeout=10)
    assert [a["alertname"] for a in hook.fake.calls[0][0].alerts] == ["ChurnPredictionDrift"]


def test_a_bad_body_with_the_key_is_4xx_naming_the_field(hook: Hook) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    assert hook.client.post("/alerts", content=b"{", headers=auth).status_code == 400
    answer = hook.post(payload(("ChurnPredictionDrift", "firing"), version="3"), **auth)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "version"
    big = b'{"version": "4", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert hook.client.post("/alerts", content=big, headers=auth).status_code == 413
    assert hook.fake.calls == []


def test_probes_and_metrics_need_no_key(hook: Hook) -> None:
    health = hook.client.get("/health")
    assert health.status_code == 200 and health.json()["retrain"]["running"] is False
    metrics = hook.client.get("/metrics")
    assert metrics.status_code == 200 and "churn_retrain_runs_total" in metrics.text
    assert hook.client.get("/docs").status_code == 404
    assert hook.client.get("/alerts").status_code == 405


def test_without_keys_the_hook_is_open_and_only_loopback_may_be_served() -> None:
    fake = FakeRetrain()
    fake.release.set()
    trigger = RetrainTrigger(fake, cooldown_s=0)
    trigger.start()
    app = create_hook_app(trigger, keys=None, metrics=RetrainMetrics.create(CollectorRegistry()))
    with TestClient(app) as client:
        assert client.post("/alerts", content=orjson.dumps(DRIFT)).status_code == 202
    trigger.stop(timeout=10)
    check_hook_binding("127.0.0.1", None)
    check_hook_binding("::1", None)
    with pytest.raises(UnauthenticatedBindError, match="start retraining"):
        check_hook_binding("0.0.0.0", None)
    check_hook_binding("0.0.0.0", KeyStore(parse_keys_file(KEYS, "test")))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8081", ("127.0.0.1", 8081)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:9", ("::1", 9)),
        ("8081", ("127.0.0.1", 8081)),
        (":8081", ("127.0.0.1", 8081)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["host", "host:", "host:0", "host:70000", "host:80x"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(text)


def test_the_default_alerts_are_rules_that_exist() -> None:
    rules = yaml.safe_load((Path(__file__).resolve().parents[2] / "monitoring" / "alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert set(DEFAULT_ALERTNAMES) <= names
