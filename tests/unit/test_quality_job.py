"""What `churn quality` exports from its state, without a broker (the state on plain dicts)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from config.settings import Settings
from monitoring.metrics import QualityMetrics
from scorer.quality_job import QualityJob
from scorer.quality_records import CHALLENGER, CHAMPION, OutcomeSeen, PredictionSeen
from scorer.quality_state import QualityState

T0 = 1_780_000_000.0


class Manifests:
    """A registry that knows one version's manifest."""

    def manifest(self, version: str) -> dict[str, Any]:
        if version != "v1":
            raise OSError(f"no version {version}")
        return {"selected_model": "m", "metrics": {"m": {"roc_auc": 0.84}}, "calibration": {"kept": None}}


def _job() -> tuple[QualityJob, QualityMetrics]:
    metrics = QualityMetrics.create()
    job = QualityJob(
        Settings(quality_alert_margin=0.07, quality_alert_min_labelled=321), metrics, Manifests()
    )  # type: ignore[arg-type]
    job.state = QualityState({}, {}, {}, window=1000, horizon_s=1e9, grace_s=60, clock=lambda: T0)
    return job, metrics


def _value(metrics: QualityMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_every_version_gets_its_figures_and_the_alert_settings_are_exported() -> None:
    job, metrics = _job()
    rng = np.random.default_rng(2)
    probabilities = rng.random(400)
    labels = rng.random(400) < probabilities
    for i, (p, y) in enumerate(zip(probabilities, labels, strict=True)):
        job.state.on_prediction(PredictionSeen(f"c{i}", "v1", float(p), 0.5, T0 - 60, T0 - 59, CHAMPION))
        job.state.on_prediction(PredictionSeen(f"c{i}", "v2", 0.5, 0.5, T0 - 60, T0 - 59, CHALLENGER))
        job.state.on_outcome(OutcomeSeen(f"c{i}", bool(y), T0))
    job.refresh_metrics()
    champion = {"model_version": "v1", "role": CHAMPION}
    assert _value(metrics, "churn_live_roc_auc", **champion) == pytest.approx(
        roc_auc_score(labels, probabilities)
    )
    assert _value(metrics, "churn_live_labelled", **champion) == 400
    assert _value(metrics, "churn_model_training_roc_auc", model_version="v1") == 0.84
    assert _value(metrics, "churn_model_training_roc_auc", model_version="v2") is None  # not in the store
    assert _value(metrics, "churn_quality_alert_margin") == 0.07
    assert _value(metrics, "churn_quality_alert_min_labelled") == 321
    assert _value(metrics, "churn_quality_predictions_tracked") == 800
    # A constant challenger ranks nobody: ROC AUC 0.5; every probability sits in one bucket.
    challenger = {"model_version": "v2", "role": CHALLENGER}
    assert _value(metrics, "churn_live_roc_auc", **challenger) == 0.5
    assert _value(metrics, "churn_live_calibration_predicted", **challenger, bucket="0.5") == 0.5
    assert _value(metrics, "churn_live_calibration_observed", **challenger, bucket="0.6") is None


def test_series_of_a_version_that_left_the_windows_are_removed() -> None:
    job, metrics = _job()
    job.state.on_prediction(PredictionSeen("a", "v1", 0.9, 0.5, T0 - 60, T0 - 59, CHAMPION))
    job.state.on_prediction(PredictionSeen("b", "v1", 0.1, 0.5, T0 - 60, T0 - 59, CHAMPION))
    job.state.on_outcome(OutcomeSeen("a", True, T0))
    job.state.on_outcome(OutcomeSeen("b", False, T0))
    job.refresh_metrics()
    assert _value(metrics, "churn_live_roc_auc", model_version="v1", role=CHAMPION) == 1.0
    job.state.labelled.clear()  # the window emptied (e.g. every pair trimmed away)
    job.refresh_metrics()
    for name in ("churn_live_roc_auc", "churn_live_labelled", "churn_live_brier"):
        assert _value(metrics, name, model_version="v1", role=CHAMPION) is None, name
    assert (
        _value(metrics, "churn_live_calibration_observed", model_version="v1", role=CHAMPION, bucket="1.0")
        is None
    )


def test_a_window_of_one_class_has_no_roc_auc_series() -> None:
    job, metrics = _job()
    job.state.on_prediction(PredictionSeen("a", "v1", 0.9, 0.5, T0 - 60, T0 - 59, CHAMPION))
    job.state.on_outcome(OutcomeSeen("a", True, T0))
    job.refresh_metrics()
    assert _value(metrics, "churn_live_roc_auc", model_version="v1", role=CHAMPION) is None
    assert _value(metrics, "churn_live_recall", model_version="v1", role=CHAMPION) == 1.0
    assert _value(metrics, "churn_live_labelled", model_version="v1", role=CHAMPION) == 1
