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
    ):
        assert key in m, key
    assert m["version"] == trained.version
    datetime.fromisoformat(m["created_at"])
    assert m["features"] == list(FEATURES)
    assert set(m["metrics"]) == set(CANDIDATES)
    for metrics in m["metrics"].values():
        for key in ("roc_auc", "accuracy", "precision", "recall", "f1", "cv_roc_auc_mean"):
            assert 0.0 <= metrics[key] <= 1.0
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


def test_the_best_held_out_roc_auc_is_selected_and_promoted(trained: TrainOutcome) -> None:
    metrics = trained.manifest["metrics"]
    best = max(metrics, key=lambda name: metrics[name]["roc_auc"])
    assert trained.selected_model == best
    assert trained.manifest["threshold"] == metrics[best]["threshold"]
    assert metrics[best]["roc_auc"] > 0.78  # the synthetic signal is learnable
    assert ModelRegistry(trained.path.parent).current() == trained.version


def test_report_has_the_comparison_table_and_pictures(trained: TrainOutcome) -> None:
    report = (trained.path / "report.md").read_text()
    assert f"# Churn model {trained.version}" in report
    for name in CANDIDATES:
        assert f"| {name}" in report
    assert f"| {trained.selected_model} (selected)" in report
    for picture in PICTURES:
        assert f"]({picture})" in report


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
