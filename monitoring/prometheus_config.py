"""Render a Prometheus configuration for the churn-stream scrape jobs.

``monitoring/prometheus.yml`` is the hand-written configuration for
``docker compose up``. Tests (and anyone running the stack by hand) need the same
jobs pointed at arbitrary ``host:port`` targets with a short scrape interval; this
module builds that configuration. The output is JSON, which is valid YAML, so the
runtime package needs no YAML library.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Job names are part of the contract with the dashboard and the alert rules.
SCORER_JOB = "churn-scorer"
API_JOB = "churn-api"
#: The online-quality job (`churn quality`).
QUALITY_JOB = "churn-quality"
#: The Kafka lag exporter (consumer-group lag read from the broker).
LAG_EXPORTER_JOB = "kafka-exporter"
METRICS_PATH = "/metrics"

MONITORING_DIR = Path(__file__).resolve().parent
ALERTS_FILE = MONITORING_DIR / "alerts.yml"
COMPOSE_CONFIG_FILE = MONITORING_DIR / "prometheus.yml"


def build_config(
    scorer_targets: Sequence[str],
    api_targets: Sequence[str],
    *,
    lag_exporter_targets: Sequence[str] = (),
    quality_targets: Sequence[str] = (),
    scrape_interval: str = "1s",
    evaluation_interval: str | None = None,
    rule_files: Sequence[Path] | None = (ALERTS_FILE,),
) -> dict[str, Any]:
    """The configuration as a dict: one static job per component, ``host:port`` targets.

    ``rule_files`` defaults to the project's alert rules (absolute path, so the
    rendered file can live anywhere); pass ``None`` or ``()`` for none.
    """
    for target in (*scorer_targets, *api_targets, *lag_exporter_targets, *quality_targets):
        host, sep, port = target.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"scrape target must look like host:port, got {target!r}")
    interval = evaluation_interval or scrape_interval
    scrape_configs: list[dict[str, Any]] = []
    jobs = (
        (SCORER_JOB, scorer_targets),
        (API_JOB, api_targets),
        (LAG_EXPORTER_JOB, lag_exporter_targets),
        (QUALITY_JOB, quality_targets),
    )
    for job, targets in jobs:
        if targets:
            scrape_configs.append(
                {
                    "job_name": job,
                    "metrics_path": METRICS_PATH,
                    "scrape_interval": scrape_interval,
                    "scrape_timeout": scrape_interval,
                    "static_configs": [{"targets": list(targets)}],
                }
            )
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": interval},
        "rule_files": [str(Path(p).resolve()) for p in rule_files or ()],
        "scrape_configs": scrape_configs,
    }


def render(
    scorer_targets: Sequence[str],
    api_targets: Sequence[str],
    *,
    lag_exporter_targets: Sequence[str] = (),
    quality_targets: Sequence[str] = (),
    scrape_interval: str = "1s",
    evaluation_interval: str | None = None,
    rule_files: Sequence[Path] | None = (ALERTS_FILE,),
) -> str:
    """The configuration as text for ``prometheus --config.file``."""
    config = build_config(
        scorer_targets,
        api_targets,
        lag_exporter_targets=lag_exporter_targets,
        quality_targets=quality_targets,
        scrape_interval=scrape_interval,
        evaluation_interval=evaluation_interval,
        rule_files=rule_files,
    )
    return json.dumps(config, indent=2) + "\n"


def write(path: Path, scorer_targets: Sequence[str], api_targets: Sequence[str], **options: Any) -> Path:
    """Render into ``path`` and return it."""
    path.write_text(render(scorer_targets, api_targets, **options), encoding="utf-8")
    return path
