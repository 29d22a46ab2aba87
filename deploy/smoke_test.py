"""Smoke test of a running compose stack (CI runs it after `docker compose up`; so can you).

    make secrets && docker compose up -d --build --scale scorer=2
    python deploy/smoke_test.py --scorers 2

From the host, through the ports compose publishes on 127.0.0.1, against real Apache Kafka:

1. the API becomes ready; ``POST /predict`` is refused without the key and answered with it;
   ``/docs`` and ``/redoc`` load only files the API serves itself;
2. telco-shaped rows (telco column names, values as a CSV export writes them, blank
   ``TotalCharges`` for new customers) plus one undecodable record are published to the input
   topic; every row comes back as exactly one prediction, the bad record as one dead letter;
3. Prometheus scrapes every target (the scorer replicas found by DNS, the API, the quality job,
   the lag exporter, Alertmanager, itself), loaded the alert rules, counts the predictions and
   the API's requests, and reaches Alertmanager;
4. Grafana lists the provisioned dashboard and its datasource answers a health check.

Each step waits up to ``--timeout`` seconds, then fails with what it saw. Exit status 0 means
every check passed. Needs the project installed (httpx, confluent-kafka, the synthetic data).
``--prometheus ''`` or ``--grafana ''`` leaves that check out (logged), for a stack without it;
``--jobs`` names the Prometheus jobs to expect (the lag exporter's and Alertmanager's checks run
only when theirs are listed), e.g. for the processes of ``churn`` on one machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from confluent_kafka import Consumer, Producer

from training.data import to_telco_csv
from training.synthetic import generate

log = logging.getLogger("smoke")
T = TypeVar("T")

#: Prometheus jobs of monitoring/prometheus.yml that must have every target up.
JOBS = ("churn-scorer", "churn-api", "churn-quality", "kafka-exporter", "alertmanager", "prometheus")
DASHBOARD_UID = "churn-stream"
DATASOURCE_UID = "churn-prometheus"


class SmokeError(RuntimeError):
    pass


def wait_for(what: str, check: Callable[[], T | None], timeout: float, poll: float = 2.0) -> T:
    """Call ``check`` until it returns something other than None; its last complaint on timeout."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        try:
            result = check()
            if result is not None:
                log.info("ok: %s", what)
                return result
        except (httpx.HTTPError, SmokeError, KeyError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise SmokeError(f"{what}: not after {timeout:.0f} s ({last})")
        time.sleep(poll)


def telco_rows(count: int, run: str) -> list[dict[str, str]]:
    """``count`` synthetic customers exactly as a telco CSV export carries them, ids unique to ``run``."""
    frame = generate(count, seed=11)
    frame.loc[0, "tenure"] = 0  # a brand-new customer: TotalCharges is blank in the export
    frame.loc[0, "total_charges"] = float("nan")
    frame["customer_id"] = [f"smoke-{run}-{i:05d}" for i in range(count)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "customers.csv"
        to_telco_csv(frame.drop(columns=["churn"], errors="ignore"), path)
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))


# --- 1. the API ------------------------------------------------------------------------------


def check_api(api: str, key: str, row: dict[str, str], timeout: float) -> None:
    with httpx.Client(base_url=api, timeout=10.0) as client:

        def ready() -> bool | None:
            response = client.get("/health/ready")
            if response.status_code != 200:
                raise SmokeError(f"/health/ready answered {response.status_code}: {response.text[:200]}")
            return True

        wait_for("API ready", ready, timeout)
        refused = client.post("/predict", json=row)
        if refused.status_code != 401:
            raise SmokeError(f"/predict without X-API-Key answered {refused.status_code}, expected 401")
        answered = client.post("/predict", json=row, headers={"X-API-Key": key})
        if answered.status_code != 200:
            raise SmokeError(f"/predict answered {answered.status_code}: {answered.text[:300]}")
        body = answered.json()
        probability = float(body["churn_probability"])
        if not 0.0 <= probability <= 1.0 or body["customer_id"] != row["customerID"]:
            raise SmokeError(f"/predict answered {body}")
        log.info("ok: /predict refused without a key, answered with it (p=%.3f)", probability)

        for page in ("/docs", "/redoc"):
            html = client.get(page, headers={"X-API-Key": key})
            if html.status_code != 200:
                raise SmokeError(f"{page} answered {html.status_code}")
            if re.search(r"(?:https?:)?//[A-Za-z0-9.-]+", html.text):
                raise SmokeError(f"{page} references another host: {html.text[:300]}")
            for src in re.findall(r'\b(?:src|href)="([^"]+)"', html.text):
                if client.get(src, headers={"X-API-Key": key}).status_code != 200:
                    raise SmokeError(f"{page}: {src} does not load")
        log.info("ok: /docs and /redoc load only the API's own files")


# --- 2. the stream ---------------------------------------------------------------------------


def check_stream(bootstrap: str, rows: list[dict[str, str]], run: str, timeout: float) -> None:
    events, predictions, dlq = "customer-events", "churn-predictions", "customer-events-dlq"
    bad = f"smoke-{run}-undecodable {{".encode()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for row in rows:
        producer.produce(events, key=row["customerID"].encode(), value=json.dumps(row).encode())
    producer.produce(events, key=f"smoke-{run}-bad".encode(), value=bad)
    if producer.flush(30) != 0:
        raise SmokeError("could not publish every event within 30 s")
    log.info("published %d telco rows and 1 undecodable record to %s", len(rows), events)

    wanted = {row["customerID"] for row in rows}
    seen: Counter[str] = Counter()
    dead: list[bytes] = []
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"smoke-{run}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([predictions, dlq])
    try:

        def complete() -> bool | None:
            for message in consumer.consume(num_messages=500, timeout=1.0):
                if message.error() is not None:
                    raise SmokeError(f"consumer error: {message.error()}")
                value = message.value() or b""
                if message.topic() == dlq:
                    dead.append(value)
                    continue
                customer = str(json.loads(value)["customer_id"])
                if customer in wanted:
                    seen[customer] += 1
            if seen.keys() == wanted and bad in dead:
                return True
            raise SmokeError(f"{len(seen)}/{len(wanted)} predictions, dead letter seen: {bad in dead}")

        wait_for("every event scored or dead-lettered", complete, timeout, poll=0.0)
    finally:
        consumer.close()
    repeated = {customer: n for customer, n in seen.items() if n != 1}
    if repeated or dead.count(bad) != 1:
        raise SmokeError(f"outcomes not exactly once: predictions {repeated}, dead letters {dead.count(bad)}")
    log.info("ok: %d predictions and 1 dead letter, one outcome each", len(seen))


# --- 3. Prometheus and Alertmanager ----------------------------------------------------------


def check_prometheus(prometheus: str, jobs: list[str], scorers: int, events: int, timeout: float) -> None:
    with httpx.Client(base_url=prometheus, timeout=10.0) as client:

        def data(path: str, **params: Any) -> Any:
            body = client.get(f"/api/v1/{path}", params=params).json()
            if body.get("status") != "success":
                raise SmokeError(f"{path}: {body}")
            return body["data"]

        def targets_up() -> bool | None:
            active = data("targets")["activeTargets"]
            by_job: dict[str, list[str]] = {}
            for target in active:
                by_job.setdefault(target["labels"]["job"], []).append(target["health"])
            problems = {job: by_job.get(job, []) for job in jobs if by_job.get(job, []).count("up") < 1}
            if (
                len(by_job.get("churn-scorer", [])) != scorers
                or by_job["churn-scorer"].count("up") != scorers
            ):
                problems["churn-scorer"] = by_job.get("churn-scorer", [])
            if problems:
                raise SmokeError(f"targets not up: {problems}")
            return True

        wait_for(f"Prometheus targets up ({scorers} scorers)", targets_up, timeout)

        rules = {rule["name"] for group in data("rules")["groups"] for rule in group["rules"]}
        for name in ("ChurnBrokerDown", "ChurnNoPredictions", "ChurnScorerNotReady", "ChurnDeliveryFailing"):
            if name not in rules:
                raise SmokeError(f"alert rule {name} not loaded: {sorted(rules)}")

        def counted() -> float | None:
            result = data("query", query='sum(churn_predictions_total{job="churn-scorer"})')["result"]
            value = float(result[0]["value"][1]) if result else 0.0
            if value < events:
                raise SmokeError(f"churn_predictions_total = {value}, expected >= {events}")
            return value

        wait_for("Prometheus counts the predictions", counted, timeout)

        def api_counted() -> float | None:
            query = 'sum(churn_api_requests_total{job="churn-api",route="/predict"})'
            result = data("query", query=query)["result"]
            value = float(result[0]["value"][1]) if result else 0.0
            if value < 2:  # the refused request and the answered one
                raise SmokeError(f"{query} = {value}, expected >= 2")
            return value

        wait_for("Prometheus counts the API's requests", api_counted, timeout)
        if "kafka-exporter" not in jobs:
            log.warning("skipped: lag exporter check (kafka-exporter not in --jobs)")
        if "alertmanager" not in jobs:
            log.warning("skipped: Alertmanager check (alertmanager not in --jobs)")
            return

        def lag_exported() -> bool | None:
            if not data("query", query='kafka_consumergroup_lag{consumergroup="churn-scorer"}')["result"]:
                raise SmokeError("no kafka_consumergroup_lag series for churn-scorer")
            return True

        if "kafka-exporter" in jobs:
            wait_for("the lag exporter reports the scorer group", lag_exported, timeout)

        def alertmanager() -> bool | None:
            if not data("alertmanagers")["activeAlertmanagers"]:
                raise SmokeError("no active Alertmanager")
            return True

        wait_for("Prometheus reaches Alertmanager", alertmanager, timeout)


# --- 4. Grafana ------------------------------------------------------------------------------


def check_grafana(grafana: str, password: str, timeout: float) -> None:
    with httpx.Client(base_url=grafana, timeout=10.0, auth=("admin", password)) as client:

        def dashboard() -> bool | None:
            found = client.get("/api/search", params={"query": "churn-stream"}).raise_for_status().json()
            if DASHBOARD_UID not in {item.get("uid") for item in found}:
                raise SmokeError(f"dashboard {DASHBOARD_UID} not listed: {found}")
            return True

        wait_for("Grafana lists the provisioned dashboard", dashboard, timeout)
        loaded = client.get(f"/api/dashboards/uid/{DASHBOARD_UID}").raise_for_status().json()
        if not loaded["dashboard"]["panels"]:
            raise SmokeError("the provisioned dashboard has no panels")

        def datasource() -> bool | None:
            health = client.get(f"/api/datasources/uid/{DATASOURCE_UID}/health")
            if health.status_code != 200 or health.json().get("status") != "OK":
                raise SmokeError(f"datasource health: {health.status_code} {health.text[:200]}")
            return True

        wait_for("Grafana's datasource answers", datasource, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--grafana", default="http://127.0.0.1:3000")
    parser.add_argument("--secrets", type=Path, default=Path("secrets"), help="folder of `make secrets`")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--scorers", type=int, default=1, help="scorer replicas Prometheus must find")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds each step may wait")
    parser.add_argument(
        "--jobs", default=",".join(JOBS), help="comma-separated Prometheus jobs whose targets must be up"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s smoke %(message)s")

    key = (args.secrets / "api_key").read_text(encoding="utf-8").strip()
    password_file = args.secrets / "grafana_admin_password"
    password = password_file.read_text(encoding="utf-8").strip() if args.grafana else ""
    run = uuid.uuid4().hex[:8]
    rows = telco_rows(args.events, run)
    try:
        check_api(args.api, key, rows[0], args.timeout)
        check_stream(args.bootstrap, rows, run, args.timeout)
        if args.prometheus:
            jobs = [job for job in args.jobs.split(",") if job]
            check_prometheus(args.prometheus, jobs, args.scorers, args.events, args.timeout)
        else:
            log.warning("skipped: Prometheus and Alertmanager checks (--prometheus '')")
        if args.grafana:
            check_grafana(args.grafana, password, args.timeout)
        else:
            log.warning("skipped: Grafana checks (--grafana '')")
    except SmokeError as exc:
        log.error("FAILED: %s", exc)
        return 1
    log.info("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
