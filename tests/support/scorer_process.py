"""The tests' ``churn`` children: the executable and a scorer's environment (devstack starts them)."""

from __future__ import annotations

from pathlib import Path

from config.settings import Settings
from devstack.ports import free_port
from devstack.processes import ScorerProcess, churn_executable

__all__ = ["CHURN", "ScorerProcess", "scorer_env"]

CHURN = churn_executable()


def scorer_env(bootstrap: str, store: Path, topics: dict[str, str], group: str) -> dict[str, str]:
    """The environment of a ``churn score`` child on ``topics`` in consumer group ``group``."""
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
