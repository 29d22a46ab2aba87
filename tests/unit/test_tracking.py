"""MLflow tracking of `churn train` and `churn retrain` against a local file store (training/tracking.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from cli.main import app
from models.registry import ModelRegistry
from schemas.features import FEATURES, TARGET
from training.retrain import RetrainConfig, retrain
from training.run import TrainConfig, train
from training.synthetic import generate
from training.tracking import TrackingConfig, redact

runner = CliRunner()
CANDIDATES = ["logistic_regression", "spline_logistic"]  # no OpenMP: steady on a busy machine
PICTURES = {
    "precision_recall.png",
    "gains_lift.png",
    "calibration.png",
    "roc_curves.png",
    "confusion_matrices.png",
    "feature_importance.png",
    "churn_distribution.png",
}


@pytest.fixture(autouse=True)
def _no_tracking_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHURN_MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("CHURN_MLFLOW_EXPERIMENT", raising=False)


def _uri(tmp_path: Path) -> str:
    return (tmp_path / "mlruns").as_uri()


def test_train_logs_one_run_that_the_manifest_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, uri = tmp_path / "store", _uri(tmp_path)
    args = ["train", "--rows", "600", "--store", str(store), "--mlflow-uri", uri, "--mlflow-experiment", "t1"]
    for name in CANDIDATES:
        args += ["--candidate", name]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output

    registry = ModelRegistry(store)
    version = registry.current()
    assert version is not None
    manifest = registry.manifest(version)
    run_id = manifest["mlflow_run_id"]
    assert manifest["mlflow_tracking_uri"] == uri
    assert f"MLflow run {run_id}" in result.output
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "t1"
    assert manifest["mlflow_experiment_id"] == run.info.experiment_id
    assert len(client.search_runs([run.info.experiment_id])) == 1  # one run per command

    params = run.data.params
    assert params["synthetic_rows"] == "600" and params["data_source"] == "synthetic"
    assert params["candidates"] == ",".join(CANDIDATES) and params["cv_folds"] == "5"
    assert params["select"] == "cheapest" and params["promote"] == "True"

    metrics = run.data.metrics
    held = manifest["retention"]
    assert metrics["roc_auc"] == held["roc_auc"] and metrics["brier"] == held["brier"]
    assert metrics["threshold"] == manifest["threshold"]
    report = (store / version / "report.md").read_text(encoding="utf-8")
    assert f"ROC AUC {metrics['roc_auc']:.4f}" in report  # the report's headline figure
    for name in CANDIDATES:
        assert metrics[f"{name}/roc_auc"] == manifest["metrics"][name]["roc_auc"]
        assert metrics[f"{name}/cv_roc_auc_mean"] == manifest["metrics"][name]["cv_roc_auc_mean"]
        assert metrics[f"{name}/single_p50_us"] == manifest["serving_cost"][name]["single_p50_us"]

    tags = run.data.tags
    assert tags["churn.version"] == version and tags["churn.command"] == "train"
    assert tags["churn.selected_model"] == manifest["selected_model"] and tags["churn.promoted"] == "True"

    logged = {Path(f.path).name for f in client.list_artifacts(run_id, "version")}
    assert {"report.md", "manifest.json", manifest["model_file"]} | PICTURES <= logged
    logged_manifest = json.loads(Path(client.download_artifacts(run_id, "version/manifest.json")).read_text())
    assert logged_manifest == manifest

    # The logged MLflow model is the store's model: same probabilities on customers it never saw.
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    logged_model = mlflow.sklearn.load_model(f"runs:/{run_id}/model")
    customers = generate(300, seed=99)[["customer_id", *FEATURES]]
    expected = registry.load(version).pipeline.predict_proba(customers)[:, 1]
    np.testing.assert_array_equal(logged_model.predict_proba(customers)[:, 1], expected)
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    np.testing.assert_allclose(np.asarray(pyfunc.predict(customers))[:, 1], expected, rtol=0, atol=1e-12)


def test_without_a_uri_mlflow_is_never_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # any `import mlflow` now raises ImportError
    store = tmp_path / "store"
    args = [
        "train",
        "--rows",
        "400",
        "--store",
        str(store),
        "--candidate",
        "logistic_regression",
        "--no-plots",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    registry = ModelRegistry(store)
    manifest = registry.manifest(registry.versions()[0])
    assert not [key for key in manifest if key.startswith("mlflow")]


@pytest.mark.parametrize("command", ["train", "retrain"])
def test_a_uri_without_the_extra_fails_before_training(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setenv("CHURN_MLFLOW_TRACKING_URI", _uri(tmp_path))  # the environment, not the flag
    store = tmp_path / "store"
    result = runner.invoke(app, [command, "--store", str(store)])
    assert result.exit_code == 1
    assert "pip install 'churn-stream[mlflow]'" in result.output
    assert not store.exists() or not list(store.iterdir())  # nothing trained, nothing read


def test_an_unusable_tracking_store_fails_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    store = tmp_path / "store"
    result = runner.invoke(
        app, ["train", "--rows", "400", "--store", str(store), "--mlflow-uri", (blocker / "mlruns").as_uri()]
    )
    assert result.exit_code == 1
    assert "MLflow tracking at" in result.output
    assert not store.exists() or not ModelRegistry(store).versions()


def test_credentials_never_reach_the_manifest() -> None:
    assert (
        redact("https://user:s3cret@mlflow.example:5000/base?token=abc#x")
        == "https://mlflow.example:5000/base"
    )
    assert redact("postgresql://u:p@db/mlflow") == "postgresql://db/mlflow"
    assert redact("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
    assert redact("file:///tmp/mlruns") == "file:///tmp/mlruns"


# --------------------------------------------------------------------------- retrain


def _live(n: int, seed: int, shuffle: bool = False) -> pd.DataFrame:
    frame = generate(n, seed=seed)
    if shuffle:
        frame[TARGET] = np.random.default_rng(seed).permutation(frame[TARGET].to_numpy())
    frame["observed_at"] = np.arange(n, dtype=float) + 1e9
    return frame


FAST: dict[str, Any] = {"candidates": ["logistic_regression"], "cv_folds": 2}


def test_retrain_logs_training_comparison_and_decision_in_one_run(tmp_path: Path) -> None:
    store, uri = tmp_path / "store", _uri(tmp_path)
    csv = tmp_path / "weak.csv"
    _live(1000, seed=3, shuffle=True).drop(columns=["observed_at"]).to_csv(csv, index=False)
    train(TrainConfig(data=csv, store=store, plots=False, calibrate=False, **FAST))
    registry = ModelRegistry(store)
    champion = registry.current()

    config = RetrainConfig(min_gain=0.02, n_boot=200, tracking=TrackingConfig(uri, "retrain-test"), **FAST)
    result = retrain(
        _live(1500, seed=4), registry, config, source={"events_topic": "e", "outcomes_topic": "o"}
    )
    assert result.decision == "promoted", result.reason
    assert result.version is not None

    run_id = result.evidence["mlflow_run_id"]
    assert registry.manifest(result.version)["mlflow_run_id"] == run_id
    promote = next(
        d for d in registry.decisions() if d["action"] == "promote" and d["version"] == result.version
    )
    assert promote["evidence"]["mlflow_run_id"] == run_id
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert len(client.search_runs([run.info.experiment_id])) == 1  # the training is inside it
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags["churn.command"] == "retrain" and tags["churn.retrain.decision"] == "promoted"
    assert tags["churn.retrain.reason"] == result.reason and tags["churn.version"] == result.version
    assert params["retrain.champion"] == champion and params["retrain.gate_min_gain"] == "0.02"
    assert params["retrain.events_topic"] == "e" and params["candidates"] == "logistic_regression"
    comparison = result.evidence["comparison"]
    assert metrics["retrain/champion_roc_auc"] == comparison["roc_auc_a"]
    assert metrics["retrain/new_roc_auc"] == comparison["roc_auc_b"]
    assert metrics["retrain/roc_auc_gain"] == comparison["difference"] > 0
    assert metrics["retrain/rows_train"] == 1200 and metrics["retrain/rows_window"] == 300
    [output] = run.outputs.model_outputs  # MLflow 3: the model is a logged model linked to the run
    logged_model = client.get_logged_model(output.model_id)
    assert (logged_model.name, logged_model.source_run_id) == ("model", run_id)


def test_a_skipped_retrain_is_a_run_with_its_reason(tmp_path: Path) -> None:
    uri = _uri(tmp_path)
    registry = ModelRegistry(tmp_path / "empty-store")
    config = RetrainConfig(tracking=TrackingConfig(uri))
    result = retrain(_live(100, seed=6), registry, config, source={})
    assert result.decision == "skipped"
    run = MlflowClient(tracking_uri=uri).get_run(result.evidence["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["churn.retrain.decision"] == "skipped"
    assert run.data.tags["churn.retrain.reason"] == result.reason
    assert run.data.metrics["retrain/rows_labelled"] == 100
    assert "churn.version" not in run.data.tags
    assert registry.decisions()[-1]["evidence"]["mlflow_run_id"] == run.info.run_id


def test_a_failed_training_ends_its_run_as_failed(tmp_path: Path) -> None:
    uri = _uri(tmp_path)
    csv = tmp_path / "one-class.csv"
    frame = generate(300, seed=1)
    frame[TARGET] = 0
    frame.to_csv(csv, index=False)
    with pytest.raises(ValueError, match="single class"):
        train(TrainConfig(data=csv, store=tmp_path / "store", tracking=TrackingConfig(uri, "failing")))
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("failing")
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
