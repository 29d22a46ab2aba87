"""One training run: data -> candidates -> evaluation -> selection -> versioned artifacts."""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from schemas.features import FEATURES, SCHEMA_VERSION, TARGET
from training import tracking
from training.selection import Rule
from training.serving_cost import CostPlan
from training.tracking import Run, TrackingConfig

log = logging.getLogger(__name__)

Step = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    data: Path | None = None  # None: synthetic data
    rows: int = 7043  # synthetic rows
    seed: int = 42  # synthetic data seed
    split_seed: int = 42
    test_size: float = 0.2
    cv_folds: int = 5
    candidates: list[str] | None = None
    store: Path = Path("model-store")
    promote: bool = True
    plots: bool = True
    select: Rule = "cheapest"
    auc_tolerance: float | None = None  # None: one standard error of the best candidate's CV ROC AUC
    calibrate: bool = True
    cost_plan: CostPlan = field(default_factory=CostPlan)
    # Signs the manifest (CHURN_MODEL_SIGNING_KEY); None writes an unsigned version.
    signing_key: bytes | None = field(default=None, repr=False)
    # An MLflow run per training (training/tracking.py); None: nothing is tracked.
    tracking: TrackingConfig | None = None


@dataclass
class TrainOutcome:
    version: str
    path: Path
    selected_model: str
    manifest: dict[str, Any]
    promoted: bool
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def _noop(_: str) -> None:
    return None


def new_version(fingerprint: str) -> str:
    """Version names sort by creation time: ``YYYYmmddTHHMMSSffffffZ-<data fingerprint>``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + fingerprint[:8]


def load_data(config: TrainConfig) -> tuple[pd.DataFrame, str]:
    from training import data as data_module
    from training import synthetic

    if config.data is not None:
        return data_module.load_csv(config.data), str(config.data)
    return synthetic.generate(config.rows, config.seed), f"synthetic(rows={config.rows}, seed={config.seed})"


def train(config: TrainConfig, on_step: Step = _noop, *, run: Run | None = None) -> TrainOutcome:
    """Train every candidate, select by ROC AUC and serving cost, write a version, maybe promote it.

    With ``config.tracking`` the training is one MLflow run of its own; ``run`` logs it into a
    run the caller opened instead (``churn retrain``'s).
    """
    if run is None and config.tracking is not None:
        with tracking.start(config.tracking, "train", {"churn.command": "train"}) as opened:
            return _train(config, on_step, opened)
    return _train(config, on_step, run)


def _train(config: TrainConfig, on_step: Step, run: Run | None) -> TrainOutcome:
    from sklearn.model_selection import train_test_split

    from models import artifact
    from models.explain import compile_explainer
    from models.registry import MANIFEST_FILE, ModelRegistry
    from training import calibrate, evaluate, report, retention, selection, serving_cost, synthetic
    from training import candidates as candidate_module
    from training import data as data_module

    started = time.perf_counter()
    timings: dict[str, float] = {}
    if run is not None:
        run.params(tracking.train_params(config))

    on_step("loading data")
    frame, source = load_data(config)
    if frame[TARGET].nunique() < 2:
        raise data_module.DataError("the target has a single class; cannot train")
    x = frame[["customer_id", *FEATURES]]
    y = frame[TARGET].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=config.test_size, stratify=y, random_state=config.split_seed
    )
    fingerprint = data_module.fingerprint(frame)

    results: list[evaluate.CandidateResult] = []
    for name, pipeline in candidate_module.build(config.candidates, config.split_seed).items():
        t0 = time.perf_counter()
        on_step(f"{name}: {config.cv_folds}-fold cross-validation")
        oof = evaluate.cross_validate(
            pipeline, x_train, y_train, folds=config.cv_folds, seed=config.split_seed
        )
        threshold = evaluate.best_f1_threshold(y_train, oof.probability)
        on_step(f"{name}: fitting on the training split")
        pipeline.fit(x_train, y_train)
        _single_threaded(pipeline)
        probability = pipeline.predict_proba(x_test)[:, 1]
        result = evaluate.CandidateResult(
            name, pipeline, threshold, oof.roc_auc, probability, oof_score=oof.score
        )
        result.metrics = evaluate.classification_metrics(y_test, probability, threshold)
        results.append(result)
        timings[name] = time.perf_counter() - t0
        log.info(
            "candidate %s: held-out ROC AUC %.4f, CV %.4f",
            name,
            result.metrics["roc_auc"],
            np.mean(oof.roc_auc),
        )

    t0 = time.perf_counter()
    on_step("measuring serving cost")
    records = _records(x_test)
    costs = serving_cost.measure({r.name: r.pipeline for r in results}, records, config.cost_plan)
    timings["serving_cost"] = time.perf_counter() - t0
    chosen = selection.select(
        [selection.Figures(r.name, r.metrics["roc_auc"], r.cv_roc_auc, costs[r.name]) for r in results],
        rule=config.select,
        tolerance=config.auc_tolerance,
    )
    best = next(r for r in results if r.name == chosen.winner)
    log.info("selected %s: %s", best.name, chosen.reason)

    served, served_probability, served_threshold = best.pipeline, best.test_probability, best.threshold
    calibration: dict[str, Any] = {"checked": False}
    if config.calibrate:
        t0 = time.perf_counter()
        on_step(f"{best.name}: calibration check")
        checked = calibrate.check(best, y_train, x_test, y_test)
        calibration = {"checked": True, **checked.as_dict()}
        if checked.kept is not None:
            served = checked.kept.pipeline
            served_probability = checked.kept.test_probability
            served_threshold = checked.kept.threshold
            cost = serving_cost.measure({"served": served}, records, config.cost_plan)["served"]
            calibration["serving_cost"] = cost.as_dict()
        timings["calibration"] = time.perf_counter() - t0
    explainer = compile_explainer(served[1:])

    registry = ModelRegistry(config.store, signing_key=config.signing_key)
    version = new_version(fingerprint)
    manifest: dict[str, Any] = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "schema_version": SCHEMA_VERSION,
        "selected_model": best.name,
        "selection": chosen.reason,
        "selection_details": chosen.as_dict(),
        "threshold": served_threshold,
        "metrics": {r.name: r.summary() for r in results},
        "serving_cost": {name: cost.as_dict() for name, cost in costs.items()},
        "calibration": calibration,
        "reasons": {"available": explainer.explainable, "unavailable_because": explainer.unavailable},
        "retention": retention.headline(y_test, served_probability, served_threshold),
        "features": list(FEATURES),
        "training_data": {
            "source": source,
            "rows": len(frame),
            "churn_rate": float(y.mean()),
            "fingerprint": fingerprint,
        },
        "split": {
            "test_size": config.test_size,
            "seed": config.split_seed,
            "stratified": True,
            "train_rows": len(y_train),
            "test_rows": len(y_test),
            "cv_folds": config.cv_folds,
        },
        "reference_distribution": evaluate.probability_histogram(served_probability),
        "environment": _environment(),
        **(run.manifest_fields() if run is not None else {}),
    }

    with registry.stage(version) as folder:
        on_step("writing artifacts")
        artifact.dump(served, folder)
        pictures: dict[str, str] = {}
        if config.plots:
            t0 = time.perf_counter()
            on_step("drawing pictures")
            shown = _Served(
                label=_served_label(best.name, calibration),
                pipeline=served,
                probability=served_probability,
                threshold=served_threshold,
                uncalibrated=None if served is best.pipeline else (best.name, best.test_probability),
            )
            pictures = _draw(results, shown, frame, x_test, y_test, folder, config.split_seed)
            timings["plots"] = time.perf_counter() - t0
        (folder / "report.md").write_text(report.render(manifest, pictures), encoding="utf-8")
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    if run is not None:
        on_step("logging to MLflow")
        # The model signature comes from made-up customers: no real record goes to the tracking store.
        example = synthetic.generate(5, seed=0)[["customer_id", *FEATURES]]
        run.training(manifest, config.store / version, served, example)
    promoted = False
    if config.promote:
        registry.promote(version)
        promoted = True
    if run is not None:
        run.tags({"churn.promoted": promoted})
    seconds = time.perf_counter() - started
    log.info("training took %.1f s: %s", seconds, ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    return TrainOutcome(
        version=version,
        path=config.store / version,
        selected_model=best.name,
        manifest=registry.manifest(version),
        promoted=promoted,
        seconds=seconds,
        timings=timings,
    )


def _records(x_test: pd.DataFrame) -> list[dict[str, Any]]:
    """Held-out customers as the validated snake_case dicts the scoring core takes (blank = None)."""
    features = x_test[list(FEATURES)]
    rows: list[dict[str, Any]] = features.astype(object).where(features.notna(), None).to_dict("records")  # type: ignore[assignment]
    return rows


def _served_label(name: str, calibration: dict[str, Any]) -> str:
    kept = calibration.get("kept")
    return f"{name} + {kept} calibration" if kept else name


def _single_threaded(pipeline: Any) -> None:
    """Score with one thread: per-request thread pools cost more than they save here."""
    for step in pipeline.named_steps.values():
        if hasattr(step, "n_jobs"):
            step.n_jobs = None


@dataclass(frozen=True)
class _Served:
    """The model that ships, for the pictures: label, pipeline, held-out scores, threshold."""

    label: str
    pipeline: Any
    probability: np.ndarray
    threshold: float
    uncalibrated: tuple[str, np.ndarray] | None  # the selected model before calibration, if calibrated


def _draw(
    results: list[Any],
    served: _Served,
    frame: pd.DataFrame,
    x_test: pd.DataFrame,
    y_test: np.ndarray,
    folder: Path,
    seed: int,
) -> dict[str, str]:
    from sklearn.inspection import permutation_importance

    from training import plots

    importance = permutation_importance(
        served.pipeline,
        x_test[list(FEATURES)],
        y_test,
        scoring="roc_auc",
        n_repeats=5,
        random_state=seed,
    )
    scores = (served.label, served.probability)
    reliability = [scores] if served.uncalibrated is None else [scores, served.uncalibrated]
    return {
        "precision_recall": plots.precision_recall(y_test, scores, served.threshold, folder),
        "gains_lift": plots.gains_and_lift(y_test, scores, folder),
        "calibration": plots.reliability(y_test, reliability, folder),
        "roc_curves": plots.roc_curves(results, y_test, folder),
        "confusion_matrices": plots.confusion_matrices(results, y_test, folder),
        "feature_importance": plots.feature_importance(
            list(FEATURES), importance.importances_mean, importance.importances_std, served.label, folder
        ),
        "churn_distribution": plots.churn_distribution(frame, folder),
    }


def _environment() -> dict[str, str]:
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
