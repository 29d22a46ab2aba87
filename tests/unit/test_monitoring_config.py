"""The Prometheus config, alert rules, Alertmanager config and Grafana dashboard agree with
monitoring/metrics.py (and with the lag exporter's series, ``promql.LAG_EXPORTER_SERIES``).

promtool comes from Debian's ``prometheus`` package and amtool from
``prometheus-alertmanager`` (``bash .ci/sysdeps.sh``): these tests fail in CI without them
and are skipped locally with the reason.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring import prometheus_config, promql
from tests.support.prometheus import find_binary

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "churn.json"
DATASOURCES = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = MONITORING / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"

#: Panel title -> a series its queries must use: every panel the dashboard promises.
REQUIRED_PANELS = {
    "Events consumed /s": "churn_events_consumed_total",
    "Predictions /s by outcome": "churn_predictions_total",
    "Predicted churn rate": "churn_predictions_total",
    "Distribution of predicted churn": "churn_prediction_probability_bucket",
    "Inference latency (model time per batch)": "churn_inference_latency_seconds_bucket",
    "End-to-end latency": "churn_end_to_end_latency_seconds_bucket",
    "Dead letters /s by type": "churn_dead_letters_total",
    "Consumer lag by partition": "churn_consumer_lag",
    "Model version in use": "churn_model_info",
    "Drift (PSI vs training reference)": "churn_drift_psi",
    "API requests /s": "churn_api_requests_total",
    "API latency": "churn_api_request_latency_seconds_bucket",
    "API error rate": "churn_api_requests_total",
    "Broker reachable": "churn_broker_up",
    "Stalled partitions": "churn_partition_stalled",
    "Stall recoveries": "churn_stall_recoveries_total",
    "Memory (RSS) per instance": "process_resident_memory_bytes",
    "CPU per instance": "process_cpu_seconds_total",
    "Consumer group lag (broker view)": "kafka_consumergroup_lag",
    "Live ROC AUC vs training": "churn_live_roc_auc",
    "Live precision and recall": "churn_live_recall",
    "Live Brier score": "churn_live_brier",
    "Calibration: observed churn rate by predicted bucket": "churn_live_calibration_observed",
    "Labelled predictions": "churn_live_labelled",
    "Label delay": "churn_label_delay_seconds_bucket",
    "Challenger in shadow": "churn_challenger_info",
    "Shadow predictions /s": "churn_shadow_predictions_total",
    "Shadow failures /s": "churn_shadow_failures_total",
    "Champion vs challenger: predicted churn": "churn_shadow_probability_sum",
    "Champion: share of predictions by bucket": "churn_prediction_probability_bucket",
    "Challenger: share of predictions by bucket": "churn_shadow_probability_bucket",
}

#: Alert name -> (severity, a series its expression must use): every alert the rules promise.
REQUIRED_ALERTS = {
    "ChurnNoPredictions": ("critical", "churn_predictions_total"),
    "ChurnDeadLetterRateHigh": ("warning", "churn_dead_letters_total"),
    "ChurnEndToEndLatencyHigh": ("warning", "churn_end_to_end_latency_seconds_bucket"),
    "ChurnPredictionDrift": ("warning", "churn_drift_psi"),
    "ChurnConsumerLagGrowing": ("warning", "churn_consumer_lag"),
    "ChurnApiErrorRateHigh": ("critical", "churn_api_requests_total"),
    "ChurnBrokerDown": ("critical", "churn_broker_up"),
    "ChurnDeliveryFailing": ("critical", "churn_delivery_failing"),
    "ChurnScoringPaused": ("critical", "churn_scoring_paused"),
    "ChurnPartitionStalled": ("critical", "churn_partition_stalled"),
    "ChurnConsumerGroupLagGrowing": ("warning", "kafka_consumergroup_lag"),
    "ChurnLagExporterDown": ("warning", "up"),
    "ChurnLiveRocAucBelowTraining": ("warning", "churn_live_roc_auc"),
    "ChurnQualityJobDown": ("warning", "up"),
    "ChurnModelFallback": ("critical", "churn_model_fallback"),
    "ChurnShadowScoringFailing": ("warning", "churn_shadow_failures_total"),
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in panels:
        out.append(panel)
        out.extend(all_panels(panel.get("panels", [])))
    return out


def alert_rules() -> list[dict[str, Any]]:
    doc = load_yaml(MONITORING / "alerts.yml")
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def all_queries() -> list[promql.Query]:
    return promql.dashboard_queries(dashboard()) + promql.rule_queries(load_yaml(MONITORING / "alerts.yml"))


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_binary("promtool"), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def amtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_binary("amtool"), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


# --- promtool ------------------------------------------------------------------------


def test_promtool_accepts_the_compose_config_and_its_rules() -> None:
    result = promtool("check", "config", MONITORING / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_accepts_the_rendered_test_config(tmp_path: Path) -> None:
    path = prometheus_config.write(
        tmp_path / "p.yml", ["127.0.0.1:16066", "127.0.0.1:16067"], ["127.0.0.1:18000"]
    )
    result = promtool("check", "config", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_alert_rules() -> None:
    result = promtool("check", "rules", MONITORING / "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_alert_rules_pass() -> None:
    result = promtool("test", "rules", MONITORING / "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_catch_a_broken_threshold(tmp_path: Path) -> None:
    """The unit tests are not vacuous: loosening the drift threshold makes them fail."""
    rules = (MONITORING / "alerts.yml").read_text(encoding="utf-8")
    assert "churn_drift_psi > 0.2" in rules
    (tmp_path / "alerts.yml").write_text(rules.replace("churn_drift_psi > 0.2", "churn_drift_psi > 0.05"))
    (tmp_path / "alerts_test.yml").write_text((MONITORING / "alerts_test.yml").read_text(encoding="utf-8"))
    result = promtool("test", "rules", tmp_path / "alerts_test.yml")
    assert result.returncode != 0
    assert "PSI 0.1 -> silent" in result.stdout + result.stderr


# --- Alertmanager ----------------------------------------------------------------------


def test_amtool_accepts_the_alertmanager_config() -> None:
    result = amtool("check-config", MONITORING / "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_amtool_refuses_a_broken_alertmanager_config(tmp_path: Path) -> None:
    """The check is not vacuous: a route to a receiver that does not exist is refused."""
    text = (MONITORING / "alertmanager.yml").read_text(encoding="utf-8")
    (tmp_path / "am.yml").write_text(text.replace("receiver: operators", "receiver: nobody", 1))
    result = amtool("check-config", tmp_path / "am.yml")
    assert result.returncode != 0
    assert "nobody" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["alertname=ChurnPredictionDrift", "severity=warning"], "retrain,operators"),
        (["alertname=ChurnLiveRocAucBelowTraining", "severity=warning"], "retrain,operators"),
        (["alertname=ChurnNoPredictions", "severity=critical"], "operators"),
        (["alertname=ChurnQualityJobDown", "severity=warning"], "operators"),
    ],
)
def test_the_retrain_alerts_reach_the_webhook_and_still_the_operators(
    labels: list[str], receivers: str
) -> None:
    """`continue: true` on the retrain route: the operators get the alerts that start a retrain."""
    result = amtool("config", "routes", "test", "--config.file", MONITORING / "alertmanager.yml", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_prometheus_sends_alerts_to_the_compose_alertmanager() -> None:
    config = load_yaml(MONITORING / "prometheus.yml")
    targets = [
        t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]
    ]
    assert targets == ["alertmanager:9093"]
    compose = load_yaml(ROOT / "docker-compose.yml")
    assert "alertmanager" in compose["services"]
    mounts = compose["services"]["alertmanager"]["volumes"]
    assert "./monitoring/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in mounts


def test_alertmanager_inhibitions_name_real_alerts() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    for rule in load_yaml(MONITORING / "alertmanager.yml").get("inhibit_rules", []):
        for matcher in (*rule.get("source_matchers", []), *rule.get("target_matchers", [])):
            match = re.fullmatch(r'(\w+)\s*(=~|=)\s*"(.*)"', matcher)
            assert match, matcher
            label, op, value = match.groups()
            if label != "alertname":
                continue
            matched = {n for n in names if re.fullmatch(value, n)} if op == "=~" else {value} & names
            assert matched, f"{matcher!r} matches no alert in alerts.yml"
            if op == "=~":
                assert matched == set(value.split("|")), f"{matcher!r} names an alert that does not exist"


# --- alert rules ---------------------------------------------------------------------


def test_every_required_alert_exists_with_severity_and_annotations() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    for name, (severity, series) in REQUIRED_ALERTS.items():
        assert name in rules, f"missing alert {name}"
        rule = rules[name]
        assert rule["labels"]["severity"] == severity, name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name
        assert series in promql.metric_names(rule["expr"]), (name, rule["expr"])
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_every_alert_links_its_runbook_section() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    anchors = {github_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
    for rule in alert_rules():
        url = rule["annotations"].get("runbook_url", "")
        page, _, anchor = url.partition("#")
        assert page == "docs/runbook.md", (rule["alert"], url)
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in docs/runbook.md"


def test_github_anchor() -> None:
    assert github_anchor(" ChurnBrokerDown") == "churnbrokerdown"
    assert github_anchor("What to do, now!") == "what-to-do-now"


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    tests = load_yaml(MONITORING / "alerts_test.yml")["tests"]
    fires: set[str] = set()
    silent: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fires == set(), "alerts never shown to fire"
    assert names - silent == set(), "alerts never shown to stay silent"


# --- metric names --------------------------------------------------------------------


def test_every_metric_in_alerts_and_dashboard_is_defined_in_metrics_py() -> None:
    known = promql.exported_series() | promql.SCRAPE_SERIES | promql.LAG_EXPORTER_SERIES
    queries = all_queries()
    assert len(queries) > 20
    for query in queries:
        names = promql.metric_names(promql.for_prometheus(query.expr))
        assert names, f"{query.source}: no metric found in {query.expr!r}"
        unknown = names - set(known)
        assert not unknown, f"{query.source}: {sorted(unknown)} not defined in monitoring/metrics.py"
        allowed = set(promql.TARGET_LABELS).union(*(known[name] for name in names))
        bad_labels = promql.label_names(query.expr) - allowed
        assert not bad_labels, f"{query.source}: labels {sorted(bad_labels)} not on {sorted(names)}"


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, route) (rate(churn_api_request_latency_seconds_bucket"
        '{job="churn-api",route=~"/pre.*"}[5m]))) > 1e-3 and on(job) up offset 1m '
        "unless deriv(sum by (topic) (churn_consumer_lag)[5m:30s]) > bool 0"
    )
    assert promql.metric_names(expr) == {
        "churn_api_request_latency_seconds_bucket",
        "up",
        "churn_consumer_lag",
    }
    assert promql.label_names(expr) == {"le", "route", "job", "topic"}
    assert promql.metric_names('sum(rate(churn_typo_total{outcome="churn_predictions_total"}[1m]))') == {
        "churn_typo_total"
    }


def test_grafana_variables_are_replaced() -> None:
    expr = "increase(x[$__range]) / rate(x[$__rate_interval])"
    assert promql.for_prometheus(expr, "30s", "10m") == "increase(x[10m]) / rate(x[30s])"
    expr = 'x{instance=~"$instance",topic=~"${topic}"}'
    assert promql.for_prometheus(expr) == 'x{instance=~".*",topic=~".*"}'
    with pytest.raises(ValueError, match="unreplaced"):
        promql.for_prometheus("rate(x[$window])")


def test_process_and_gc_series_are_exported_by_both_components() -> None:
    series = promql.exported_series()
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "python_gc_collections_total"):
        assert name in series, name
    assert series["python_gc_collections_total"] == {"generation"}


# --- dashboard -----------------------------------------------------------------------


def test_dashboard_is_a_grafana_dashboard() -> None:
    dash = dashboard()
    assert dash["uid"] == "churn-stream"
    assert dash["title"]
    assert 36 <= dash["schemaVersion"] <= 41
    panels = all_panels(dash["panels"])
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            refs = [target["refId"] for target in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]


def test_dashboard_has_every_required_panel() -> None:
    panels = {panel["title"]: panel for panel in all_panels(dashboard()["panels"])}
    for title, series in REQUIRED_PANELS.items():
        assert title in panels, f"missing panel {title!r}"
        used = set().union(*(promql.metric_names(t["expr"]) for t in panels[title]["targets"]))
        assert series in used, (title, used)


def test_latency_panels_show_p50_p95_p99() -> None:
    panels = {panel["title"]: panel for panel in all_panels(dashboard()["panels"])}
    for title in ("Inference latency (model time per batch)", "End-to-end latency", "API latency"):
        exprs = " ".join(t["expr"] for t in panels[title]["targets"])
        for quantile in ("0.5", "0.95", "0.99"):
            assert f"histogram_quantile({quantile}," in exprs, (title, quantile)


def test_distribution_panel_reads_the_probability_buckets_as_a_histogram() -> None:
    panels = {panel["title"]: panel for panel in all_panels(dashboard()["panels"])}
    target = panels["Distribution of predicted churn"]["targets"][0]
    assert target["format"] == "heatmap"  # Grafana turns cumulative buckets into per-bucket counts
    assert "sum by (le)" in target["expr"]


def variables() -> dict[str, dict[str, Any]]:
    return {var["name"]: var for var in dashboard()["templating"]["list"]}


def test_every_panel_uses_the_datasource_variable() -> None:
    """Panels follow $datasource, so the dashboard works in any Grafana, not only with our uid."""
    for panel in all_panels(dashboard()["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_dashboard_imports_into_any_grafana() -> None:
    dash = dashboard()
    (ds_input,) = dash["__inputs"]
    assert (ds_input["type"], ds_input["pluginId"]) == ("datasource", "prometheus")
    source = variables()["datasource"]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    # On import Grafana replaces ${DS_PROMETHEUS} with the datasource picked for the input; when
    # provisioned, the variable falls back to the default datasource (ours, below).
    assert source["current"]["value"] == "${" + ds_input["name"] + "}"
    provisioned = load_yaml(DATASOURCES)["datasources"]
    assert len(provisioned) == 1
    assert provisioned[0]["type"] == "prometheus"
    assert provisioned[0]["isDefault"] is True
    assert provisioned[0]["url"] == "http://prometheus:9090"
    text = DASHBOARD.read_text(encoding="utf-8")
    assert provisioned[0]["uid"] not in text, "a hard-coded datasource uid breaks the import elsewhere"


def test_instance_and_topic_variables() -> None:
    known = promql.exported_series() | promql.SCRAPE_SERIES
    for name in ("instance", "topic"):
        var = variables()[name]
        assert var["type"] == "query"
        assert var["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert (var["includeAll"], var["multi"], var["allValue"]) == (
            True,
            True,
            promql.DASHBOARD_VARIABLES[name],
        )
        metric, label = re.fullmatch(
            r"label_values\((\w+)(?:\{[^}]*\})?, *(\w+)\)", var["definition"]
        ).groups()  # type: ignore[union-attr]
        assert var["query"]["query"] == var["definition"]
        assert label == name
        assert metric in known and (name in known[metric] or name in promql.TARGET_LABELS), var["definition"]
    # Every panel of a scraped churn component follows $instance; every topic-labelled one $topic.
    for query in promql.dashboard_queries(dashboard()):
        if re.search(r'job=~?"churn-', query.expr) or "churn_model_info" in query.expr:
            assert 'instance=~"$instance"' in query.expr, query.source
        if "churn_events_consumed_total" in query.expr or "consumer_lag" in query.expr:
            assert 'topic=~"$topic"' in query.expr, query.source


def test_dashboard_provider_points_at_the_mounted_dashboards() -> None:
    provider = load_yaml(DASHBOARD_PROVIDERS)["providers"][0]
    assert provider["type"] == "file"
    compose = load_yaml(ROOT / "docker-compose.yml")
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./monitoring/grafana/dashboards:{provider['options']['path']}:ro" in mounts


# --- the two Prometheus configurations agree ----------------------------------------


def test_compose_and_rendered_configs_scrape_the_same_jobs() -> None:
    compose_config = load_yaml(MONITORING / "prometheus.yml")
    rendered = yaml.safe_load(prometheus_config.render(["127.0.0.1:1"], ["127.0.0.1:2"]))
    compose_jobs = {job["job_name"]: job for job in compose_config["scrape_configs"]}
    for job in rendered["scrape_configs"]:
        assert job["job_name"] in compose_jobs
        assert compose_jobs[job["job_name"]]["metrics_path"] == job["metrics_path"] == "/metrics"
    assert compose_config["rule_files"] == ["alerts.yml"]
    assert rendered["rule_files"] == [str(prometheus_config.ALERTS_FILE)]
    scorer = compose_jobs[prometheus_config.SCORER_JOB]["dns_sd_configs"][0]
    assert (scorer["names"], scorer["port"]) == (["scorer"], 6066)
    assert compose_jobs[prometheus_config.API_JOB]["static_configs"][0]["targets"] == ["api:8000"]
    exporter = compose_jobs[prometheus_config.LAG_EXPORTER_JOB]["static_configs"][0]["targets"]
    assert exporter == ["kafka-exporter:9308"]
    compose = load_yaml(ROOT / "docker-compose.yml")
    assert "9308" in compose["services"]["kafka-exporter"]["expose"]
    with_exporter = yaml.safe_load(prometheus_config.render([], [], lag_exporter_targets=["127.0.0.1:3"]))
    assert [job["job_name"] for job in with_exporter["scrape_configs"]] == [
        prometheus_config.LAG_EXPORTER_JOB
    ]


def test_rendered_config_rejects_a_bad_target() -> None:
    with pytest.raises(ValueError, match="host:port"):
        prometheus_config.render(["localhost"], [])
