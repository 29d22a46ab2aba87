"""MLflow experiment tracking of ``churn train`` and ``churn retrain`` (the optional ``mlflow`` extra).

One MLflow run per command. :func:`start` opens it before any data is read (so a missing
extra or an unreachable tracking store stops the command before it trains) and ends it as
``FINISHED``, or ``FAILED`` when the command raised. What goes in (docs/mlops.md):

* params: the training configuration (:func:`train_params`); ``retrain.*`` for retrain's own;
* metrics: the shipped model's held-out figures unprefixed (``roc_auc``, ``brier``, ...), every
  candidate's as ``<candidate>/<metric>`` (held-out figures, CV ROC AUC, serving cost), and for
  retrain ``retrain/*`` (row counts, the comparison with the champion on the window);
* tags: ``churn.version``, ``churn.selected_model``, ``churn.promoted``; retrain adds
  ``churn.retrain.decision`` and ``churn.retrain.reason``;
* artifacts: the version folder under ``version/`` (report, manifest, pictures, model file) and
  the shipped pipeline as an MLflow sklearn model under ``model`` (skops, the project's trusted
  types; ``predict_proba`` as its pyfunc).

The version's manifest records the run (:meth:`Run.manifest_fields`). ``mlflow`` is imported
only here and only inside :func:`start` and :func:`check_available`: without a tracking URI
nothing imports it.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from models.artifact import TRUSTED_TYPES

log = logging.getLogger(__name__)

#: What to run when the extra is missing.
INSTALL_HINT = "pip install 'churn-stream[mlflow]'"
#: Where the logged MLflow model lives in the run's artifacts.
MODEL_PATH = "model"
#: Where the version folder's files go in the run's artifacts.
VERSION_PATH = "version"
#: MLflow's limit on a tag value is larger; a reason longer than this is cut.
_MAX_TAG = 5000


class TrackingError(RuntimeError):
    """Tracking was asked for and cannot be done: MLflow is missing or the tracking store refused."""


@dataclass(frozen=True)
class TrackingConfig:
    """Where the runs go (``CHURN_MLFLOW_TRACKING_URI``, ``CHURN_MLFLOW_EXPERIMENT``)."""

    uri: str
    experiment: str = "churn-stream"


def redact(uri: str) -> str:
    """``uri`` without credentials: no ``user:password@``, no query string or fragment."""
    netloc = urlsplit(uri).netloc
    if "@" in netloc:
        uri = uri.replace(netloc, netloc.rpartition("@")[2], 1)
    return uri.split("?", 1)[0].split("#", 1)[0]


def check_available() -> None:
    """Raise :class:`TrackingError` naming the extra when MLflow is not installed."""
    _mlflow()


def _mlflow() -> Any:
    try:
        import mlflow  # the optional extra; only when a tracking URI is configured
    except ImportError as exc:
        raise TrackingError(f"MLflow tracking needs the mlflow extra: {INSTALL_HINT}") from exc
    return mlflow


class Run:
    """An open MLflow run (from :func:`start`); every method logs to it."""

    def __init__(self, mlflow: Any, run_id: str, experiment_id: str, uri: str) -> None:
        self._mlflow = mlflow
        self._client = mlflow.MlflowClient(tracking_uri=uri)
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.uri = redact(uri)

    def manifest_fields(self) -> dict[str, str]:
        """What the version's manifest records about the run (the URI without credentials)."""
        return {
            "mlflow_run_id": self.run_id,
            "mlflow_experiment_id": self.experiment_id,
            "mlflow_tracking_uri": self.uri,
        }

    def params(self, values: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(key, "" if value is None else str(value)) for key, value in values.items()]
        self._client.log_batch(self.run_id, params=params)

    def metrics(self, values: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        stamp = _now_ms()
        metrics = [Metric(key, float(value), stamp, 0) for key, value in values.items()]
        self._client.log_batch(self.run_id, metrics=metrics)

    def tags(self, values: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        tags = [RunTag(key, str(value)[:_MAX_TAG]) for key, value in values.items()]
        self._client.log_batch(self.run_id, tags=tags)

    def training(self, manifest: Mapping[str, Any], folder: Path, pipeline: Any, example: Any) -> None:
        """A trained version: its figures, its folder and its pipeline as an MLflow model."""
        self.metrics(training_metrics(manifest))
        self.tags({"churn.version": manifest["version"], "churn.selected_model": manifest["selected_model"]})
        self._client.log_artifacts(self.run_id, str(folder), VERSION_PATH)
        self._log_model(pipeline, example)

    def _log_model(self, pipeline: Any, example: Any) -> None:
        from mlflow.models import infer_signature

        # Given rather than inferred: MLflow would otherwise load the model in a subprocess to
        # see what it imports. The project's own types (models.*) come with churn-stream.
        requirements = [
            f"{name}=={metadata.version(name)}" for name in ("churn-stream", "scikit-learn", "skops")
        ]
        # A signature but no input example: with one, MLflow reloads the model it just wrote to
        # check the example, which it refuses without MLFLOW_ALLOW_PICKLE_DESERIALIZATION.
        with warnings.catch_warnings():
            # MLflow's hint that integer columns cannot hold missing values: tenure and
            # senior_citizen are never missing on the wire (schemas/features.py).
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            signature = infer_signature(example, pipeline.predict_proba(example))
        self._mlflow.sklearn.log_model(
            pipeline,
            name=MODEL_PATH,
            serialization_format="skops",
            skops_trusted_types=list(TRUSTED_TYPES),
            signature=signature,
            pip_requirements=requirements,
            pyfunc_predict_fn="predict_proba",
        )


@contextmanager
def start(config: TrackingConfig, run_name: str, tags: Mapping[str, str]) -> Iterator[Run]:
    """Open a run in ``config.experiment`` (created when missing); end it when the block ends."""
    mlflow = _mlflow()
    if urlsplit(config.uri).scheme == "file":
        # MLflow 3 keeps its file store in maintenance mode and refuses it unless this is set; a
        # file: URI asks for it explicitly. A value set by the user wins.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        mlflow.set_tracking_uri(config.uri)
        experiment = mlflow.set_experiment(config.experiment)
        active = mlflow.start_run(experiment_id=experiment.experiment_id, run_name=run_name, tags=dict(tags))
    except Exception as exc:  # MlflowException, a refused connection: anything the store says
        raise TrackingError(f"MLflow tracking at {redact(config.uri)}: {exc}") from exc
    run = Run(mlflow, active.info.run_id, experiment.experiment_id, config.uri)
    log.info("MLflow run %s in experiment %r at %s", run.run_id, config.experiment, run.uri)
    status = "FAILED"
    try:
        yield run
        status = "FINISHED"
    finally:
        mlflow.end_run(status)


def train_params(config: Any) -> dict[str, Any]:
    """The parameters of a training run (a :class:`training.run.TrainConfig`)."""
    return {
        "data_source": str(config.data) if config.data is not None else "synthetic",
        "synthetic_rows": config.rows if config.data is None else None,
        "synthetic_seed": config.seed if config.data is None else None,
        "split_seed": config.split_seed,
        "test_size": config.test_size,
        "cv_folds": config.cv_folds,
        "candidates": ",".join(config.candidates) if config.candidates else "all",
        "select": config.select,
        "auc_tolerance": "one standard error" if config.auc_tolerance is None else config.auc_tolerance,
        "calibrate": config.calibrate,
        "plots": config.plots,
        "promote": config.promote,
    }


def retrain_params(config: Any, source: Mapping[str, Any], champion: str | None) -> dict[str, Any]:
    """Retrain's own parameters (a :class:`training.retrain.RetrainConfig`), as ``retrain.*``."""
    return {
        "retrain.holdout": config.holdout,
        "retrain.gate_min_gain": config.min_gain,
        "retrain.min_pairs": config.min_pairs,
        "retrain.min_train_rows": config.min_train_rows,
        "retrain.bootstrap": config.n_boot,
        "retrain.candidates": ",".join(config.candidates) if config.candidates else "all",
        "retrain.cv_folds": config.cv_folds,
        "retrain.events_topic": source.get("events_topic"),
        "retrain.outcomes_topic": source.get("outcomes_topic"),
        "retrain.champion": champion,
    }


def training_metrics(manifest: Mapping[str, Any]) -> dict[str, float]:
    """The shipped model's held-out figures unprefixed; every candidate's as ``<candidate>/<metric>``."""
    held = manifest["retention"]
    per_1000 = held["per_1000"]
    out: dict[str, float] = {
        "roc_auc": held["roc_auc"],
        "brier": held["brier"],
        "top_decile_lift": held["top_decile_lift"],
        "precision": per_1000["precision"],
        "recall": per_1000["recall"],
        "flagged_per_1000": per_1000["flagged"],
        "threshold": manifest["threshold"],
        "selection_tolerance": manifest["selection_details"]["tolerance"],
        "training_rows": manifest["training_data"]["rows"],
        "churn_rate": manifest["training_data"]["churn_rate"],
    }
    for name, figures in manifest["metrics"].items():
        out.update({f"{name}/{key}": value for key, value in figures.items() if _number(value)})
    for name, cost in manifest["serving_cost"].items():
        out.update({f"{name}/{key}": value for key, value in cost.items() if _number(value)})
    return out


#: Retrain's comparison on the evaluation window (champion ``a``, new version ``b``) as metric names.
_COMPARISON = {
    "n": "window_pairs",
    "positives": "window_positives",
    "roc_auc_a": "champion_roc_auc",
    "roc_auc_b": "new_roc_auc",
    "difference": "roc_auc_gain",
    "ci_low": "gain_ci_low",
    "ci_high": "gain_ci_high",
    "brier_a": "champion_brier",
    "brier_b": "new_brier",
}


def retrain_metrics(evidence: Mapping[str, Any]) -> dict[str, float]:
    """Row counts and the comparison with the champion on the evaluation window, as ``retrain/*``."""
    out = {f"retrain/rows_{key}": value for key, value in evidence["rows"].items()}
    comparison = evidence.get("comparison") or {}
    out.update({f"retrain/{name}": comparison[key] for key, name in _COMPARISON.items() if key in comparison})
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _now_ms() -> int:
    return int(time.time() * 1000)
