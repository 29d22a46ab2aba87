"""Read PromQL out of the dashboard and the alert rules, and name what it refers to.

Used by the tests that keep the dashboard and alerts honest: every metric a query
names must be defined in :mod:`monitoring.metrics`, and every query must be accepted
(and answered) by a real Prometheus server.

This is not a PromQL parser. It removes string literals, label matchers, grouping
label lists and range brackets, then reads the identifiers that remain; that is
exact for the expressions this project writes (selectors, functions, aggregations,
binary operators).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from monitoring.batch_histogram import BatchHistogram
from monitoring.metrics import ApiMetrics, QualityMetrics, ScorerMetrics

#: Grafana's built-in interval variables, replaced before a query goes to Prometheus.
GRAFANA_VARIABLES = ("$__rate_interval", "${__rate_interval}", "$__interval", "${__interval}")
GRAFANA_RANGE_VARIABLES = ("$__range", "${__range}")

#: The dashboard's own template variables and the value of their "All" option (a regex).
DASHBOARD_VARIABLES: dict[str, str] = {"instance": ".*", "topic": ".*"}

#: Series Prometheus itself writes for every target.
SCRAPE_SERIES: dict[str, frozenset[str]] = {
    name: frozenset()
    for name in ("up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added")
}
#: Series of the Kafka lag exporter the compose stack and the alerts use
#: (danielqsj/kafka-exporter v1.9.0; names and labels from its source, kafka_exporter.go).
LAG_EXPORTER_SERIES: dict[str, frozenset[str]] = {
    "kafka_brokers": frozenset(),
    "kafka_topic_partitions": frozenset({"topic"}),
    "kafka_topic_partition_current_offset": frozenset({"topic", "partition"}),
    "kafka_consumergroup_current_offset": frozenset({"consumergroup", "topic", "partition"}),
    "kafka_consumergroup_lag": frozenset({"consumergroup", "topic", "partition"}),
    "kafka_consumergroup_lag_sum": frozenset({"consumergroup", "topic"}),
    "kafka_consumergroup_members": frozenset({"consumergroup"}),
}
#: Series that exist only once something happened: their labels (a Kafka error name) are not
#: known before. A healthy stack has none, so the live-stack test only checks that the queries
#: reading them are accepted; tests/unit/test_monitoring_prometheus.py feeds them and checks
#: those queries return data.
EVENT_SERIES: dict[str, str] = {
    "churn_delivery_retries_total": "the first output record produced again after a retriable delivery error",
}
#: Series a scorer or the API exports only while a challenger is set (``churn models promote
#: VERSION --challenger``, docs/mlops.md); failures only once it failed. The live-stack test runs
#: no challenger, so it checks that the queries reading only these are accepted;
#: tests/unit/test_monitoring_prometheus.py feeds them and checks those queries return data.
CHALLENGER_SERIES: dict[str, str] = {
    "churn_challenger_info": "the challenger loaded",
    "churn_shadow_predictions_total": "the challenger's first shadow prediction",
    "churn_shadow_failures_total": "the challenger's first failure",
    "churn_shadow_probability_bucket": "the challenger's first shadow prediction",
    "churn_shadow_probability_sum": "the challenger's first shadow prediction",
    "churn_shadow_probability_count": "the challenger's first shadow prediction",
}
#: Labels every scraped series carries.
TARGET_LABELS = frozenset({"job", "instance"})

_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
    | {"inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_RANGE = re.compile(r"\[[^\]]*\]")
_TEMPLATE_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_IDENT = re.compile(r"(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(\s*\()?")


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it came from (panel title or alert name)."""

    source: str
    expr: str


def for_prometheus(expr: str, interval: str = "1m", range_: str = "5m") -> str:
    """Replace Grafana's interval variables, and the dashboard's own variables by their "All"
    value, so Prometheus can evaluate the expression."""
    for var in GRAFANA_VARIABLES:
        expr = expr.replace(var, interval)
    for var in GRAFANA_RANGE_VARIABLES:
        expr = expr.replace(var, range_)
    expr = _TEMPLATE_VARIABLE.sub(
        lambda m: DASHBOARD_VARIABLES.get(m.group(1) or m.group(2), m.group(0)), expr
    )
    if "$" in expr:
        raise ValueError(f"unreplaced Grafana variable in {expr!r}")
    return expr


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[Query]:
    """Every target ``expr`` of every panel, rows and nested panels included."""
    found: list[Query] = []

    def walk(panels: Iterable[Mapping[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append(Query(f"panel {panel.get('title', '?')!r}", str(target["expr"])))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    return found


def rule_queries(rules: Mapping[str, Any]) -> list[Query]:
    """The ``expr`` of every alerting and recording rule of a parsed rules file."""
    found: list[Query] = []
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record") or "?"
            found.append(Query(f"rule {name!r}", str(rule["expr"])))
    return found


def metric_names(expr: str) -> set[str]:
    """Names of the series an expression selects (functions, keywords and labels excluded)."""
    text = _STRING.sub('""', expr)
    text = _GROUPING.sub(" ", text)
    text = _SELECTOR.sub(lambda m: f" {m.group(1) or ''} ", text)
    text = _RANGE.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def label_names(expr: str) -> set[str]:
    """Labels the expression matches on or groups by."""
    text = _STRING.sub('""', expr)
    labels: set[str] = set()
    for match in _GROUPING.finditer(text):
        labels.update(part.strip() for part in match.group(2).split(",") if part.strip())
    for match in _SELECTOR.finditer(text):
        labels.update(_MATCHER_LABEL.findall(match.group(2)))
    return labels


def exported_series() -> dict[str, frozenset[str]]:
    """Series names the scorer, the API and the quality job expose, each with its label names.

    Counters are exposed as ``<name>_total``; histograms as ``_bucket`` (with ``le``),
    ``_sum`` and ``_count``; gauges under their own name. The registries' other collectors
    (``process_*``, ``python_gc_*``) are read from what they expose.
    """
    series: dict[str, frozenset[str]] = {}
    for metrics in (ScorerMetrics.create(), ApiMetrics.create(), QualityMetrics.create()):
        for name, kind, labels in _families(metrics):
            if kind == "counter":
                series[f"{name}_total"] = labels
            elif kind == "histogram":
                series[f"{name}_bucket"] = labels | {"le"}
                series[f"{name}_sum"] = labels
                series[f"{name}_count"] = labels
            else:
                series[name] = labels
        for family in metrics.registry.collect():
            for sample in family.samples:
                series.setdefault(sample.name, frozenset(sample.labels))
    return series


def _families(metrics: object) -> list[tuple[str, str, frozenset[str]]]:
    """(name, type, label names) of every metric field of a ScorerMetrics/ApiMetrics/QualityMetrics,
    and of the metric groups they hold (the scorer's and the API's ShadowMetrics)."""
    out: list[tuple[str, str, frozenset[str]]] = []
    assert dataclasses.is_dataclass(metrics)
    for field in dataclasses.fields(metrics):
        metric = getattr(metrics, field.name)
        if dataclasses.is_dataclass(metric):
            out.extend(_families(metric))
            continue
        if isinstance(metric, BatchHistogram):  # label-less, described like any collector
            out.extend((family.name, family.type, frozenset()) for family in metric.describe())
            continue
        if not isinstance(metric, MetricWrapperBase):
            continue
        # A labelled metric with no children exposes no samples, so the label names
        # come from the wrapper (prometheus-client keeps them in ``_labelnames``).
        labels = frozenset(getattr(metric, "_labelnames", ()))
        for family in metric.describe():
            out.append((family.name, family.type, labels))
    return out
