"""An end-to-end training run on small synthetic data: artifacts, manifest, selection, report."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from models.registry import MANIFEST_FILE, MODEL_FILE, ModelRegistry
from schemas.features import FEATURES
from training.candidates import CANDIDATES
from training.evaluate import best_f1_threshold, probability_histogram
from training.run import TrainConfig, TrainOutcome, train

PICTURES = (
    "precision_recall.png",
    "gains_lift.png",
    "roc_curves.png",
    "confusion_matrices.png",
    "churn_distribution.png",
    "calibration.png",
    "feature_importance.png",
)


def test_every_artifact_is_written_and_hashed(trained: TrainOutcome) -> None:
    folder = trained.path
    for name in (MODEL_FILE, MANIFEST_FILE, "report.md", *PICTURES):
        assert (folder / name).is_file(), name
        assert (folder / name).stat().st_size > 0
    for picture in PICTURES:
        assert (folder / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(trained.manifest["sha256"]) == {MODEL_FILE, "report.md", *PICTURES}


def test_manifest_holds_the_contract_fields(trained: TrainOutcome) -> None:
    m = json.loads((trained.path / MANIFEST_FILE).read_text())
    for key in (
        "version",
        "created_at",
        "selected_model",
        "threshold",
        "metrics",
        "features",
        "sha256",
        "training_data",
        "reference_distribution",
        "serving_cost",
        "selection",
        "selection_details",
        "calibration",
        "reasons",
        "retention",
    ):
        assert key in m, key
    assert isinstance(m["selection"], str)  # the API's /model shows it as text
    assert m["version"] == trained.version
    datetime.fromisoformat(m["created_at"])
    assert m["features"] == list(FEATURES)
    assert set(m["metrics"]) == set(CANDIDATES)
    for metrics in m["metrics"].values():
        for key in ("roc_auc", "accuracy", "precision", "recall", "f1", "cv_roc_auc_mean", "brier"):
            assert 0.0 <= metrics[key] <= 1.0
        assert all(isinstance(v, float) for v in metrics.values())  # the API types them as floats
    assert set(m["serving_cost"]) == set(CANDIDATES)
    for cost in m["serving_cost"].values():
        assert 0 < cost["single_p50_us"] <= cost["single_p99_us"]
        assert cost["batch_us_per_row"] > 0 and cost["batch_size"] == 500
    assert m["training_data"]["rows"] == 1500
    assert 0.2 < m["training_data"]["churn_rate"] < 0.33
    assert len(m["training_data"]["fingerprint"]) == 64
    assert m["split"] == {
        "test_size": 0.2,
        "seed": 42,
        "stratified": True,
        "train_rows": 1200,
        "test_rows": 300,
        "cv_folds": 3,
    }
    reference = m["reference_distribution"]
    assert len(reference["fractions"]) == 10
    assert sum(reference["fractions"]) == pytest.approx(1.0)


def test_the_cheapest_within_the_tolerance_is_selected_and_promoted(trained: TrainOutcome) -> None:
    m = trained.manifest
    metrics, costs, details = m["metrics"], m["serving_cost"], m["selection_details"]
    best = max(metrics, key=lambda name: metrics[name]["roc_auc"])
    assert details["best"] == best and details["rule"] == "cheapest"
    assert details["tolerance"] == pytest.approx(metrics[best]["cv_roc_auc_se"])
    eligible = {
        n for n in metrics if metrics[n]["roc_auc"] >= metrics[best]["roc_auc"] - details["tolerance"]
    }
    assert set(details["eligible"]) == eligible
    assert trained.selected_model in eligible
    fastest = min(costs[n]["single_p50_us"] for n in eligible)
    assert costs[trained.selected_model]["single_p50_us"] <= fastest * 1.1
    assert details["margin"] == pytest.approx(
        metrics[best]["roc_auc"] - metrics[trained.selected_model]["roc_auc"]
    )
    assert metrics[trained.selected_model]["roc_auc"] > 0.78  # the synthetic signal is learnable
    assert ModelRegistry(trained.path.parent).current() == trained.version


def test_the_calibration_check_and_reasons_are_recorded(trained: TrainOutcome) -> None:
    m = trained.manifest
    calibration = m["calibration"]
    assert calibration["checked"] and set(calibration["variants"]) == {"sigmoid", "isotonic"}
    kept = calibration["kept"]
    if kept is None:
        assert m["threshold"] == m["metrics"][trained.selected_model]["threshold"]
        assert calibration["after"] == calibration["before"]
    else:
        assert calibration["after"]["brier"] < calibration["before"]["brier"]
        assert m["threshold"] == calibration["variants"][kept]["threshold"]
    assert m["reasons"]["available"] is (trained.selected_model != "random_forest")
    people = m["retention"]["per_1000"]
    assert people["caught"] + people["missed"] == pytest.approx(people["churners"])
    assert people["caught"] + people["false_alarms"] == pytest.approx(people["flagged"])
    assert m["retention"]["top_decile_lift"] > 1.5


def test_report_has_the_comparison_table_and_pictures(trained: TrainOutcome) -> None:
    report = (trained.path / "report.md").read_text()
    assert f"# Churn model {trained.version}" in report
    for name in CANDIDATES:
        assert f"| {name}" in report
    assert f"| {trained.selected_model} (selected)" in report
    for picture in PICTURES:
        assert f"]({picture})" in report
    m = trained.manifest
    people = m["retention"]["per_1000"]
    assert "per 1,000 customers" in report
    assert (
        f"| flagged | {people['caught']:.0f} (caught) | {people['false_alarms']:.0f} (false alarms)" in report
    )
    assert f"top-decile lift {m['retention']['top_decile_lift']:.2f}x" in report
    assert f"Brier score {m['retention']['brier']:.4f}" in report
    assert "## Selection" in report and m["selection"] in report
    assert f"tolerance: {m['selection_details']['tolerance']:.4f}" in report
    assert "## Calibration" in report and "| isotonic" in report
    cost = m["serving_cost"][trained.selected_model]
    assert (
        f"{cost['single_p50_us']:.1f} | {cost['single_p99_us']:.1f} | {cost['batch_us_per_row']:.2f}"
        in report
    )


def test_no_promote_and_version_order(tmp_path: object, trained: TrainOutcome) -> None:
    store = trained.path.parent
    outcome = train(
        TrainConfig(
            store=store, rows=600, seed=4, candidates=["logistic_regression"], plots=False, promote=False
        )
    )
    registry = ModelRegistry(store)
    assert registry.current() == trained.version
    assert registry.versions()[-1] == outcome.version
    assert not outcome.promoted


def test_threshold_maximises_f1() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.6, 0.55, 0.7, 0.9])
    assert best_f1_threshold(y, p) == pytest.approx(0.55)


def test_probability_histogram_bins() -> None:
    hist = probability_histogram(np.array([0.0, 0.05, 0.15, 0.95, 1.0]))
    assert hist["fractions"][0] == pytest.approx(0.4)
    assert hist["fractions"][9] == pytest.approx(0.4)
    assert hist["bins"][0] == 0.0 and hist["bins"][-1] == 1.0
