"""Gated retraining: a fresh model from live data, promoted only if it beats the champion.

1. **Data set** (:func:`last_seen`): for every customer with an observed outcome, the
   features of the last event seen for that customer at or before the outcome's
   ``observed_at`` (what the customer looked like when churn was observed; later events
   would leak the outcome), labelled with the outcome. The caller reads both from the
   events and outcomes topics (:mod:`scorer.live_pairs`), so the events topic's retention
   bounds how far back a customer's last event can be found.
2. **Window split** (:func:`split_window`): labelled customers sorted by ``observed_at``;
   the latest ``holdout`` share is the evaluation window, held out of training.
3. **Training**: the rest is written as a telco CSV and trained exactly as ``churn train``
   does (same candidates, same selection rule), without promotion.
4. **Evaluation and gate**: the new version and the champion score the evaluation window;
   :func:`training.comparison.compare_paired` and :func:`training.comparison.gate` decide.
5. **Registry**: the new version becomes the challenger; it is promoted if the gate passes,
   otherwise it stays challenger (shadow-scored, so the live comparison goes on and an
   operator can still promote it by hand). Either way the decision and its evidence (the
   comparison, the gate, the data window, row counts) go to ``decisions.jsonl``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.registry import ModelRegistry
from schemas.features import FEATURES, ID_COLUMN, TARGET
from training import tracking
from training.comparison import NotComparableError, compare_paired, gate
from training.data import to_telco_csv
from training.run import TrainConfig, train
from training.tracking import Run, TrackingConfig

log = logging.getLogger(__name__)

OBSERVED_AT = "observed_at"


@dataclass(frozen=True)
class SeenEvent:
    customer_id: str
    event_time: float
    features: Mapping[str, Any]


@dataclass(frozen=True)
class SeenOutcome:
    customer_id: str
    churned: bool
    observed_at: float


@dataclass
class RetrainConfig:
    holdout: float = 0.2
    min_gain: float = 0.0
    min_pairs: int = 200
    min_train_rows: int = 500
    n_boot: int = 2000
    seed: int = 0
    candidates: list[str] | None = None
    cv_folds: int = 5
    plots: bool = False
    signing_key: bytes | None = field(default=None, repr=False)
    # One MLflow run per retrain, skipped ones included (training/tracking.py); None: not tracked.
    tracking: TrackingConfig | None = None


@dataclass
class RetrainResult:
    #: ``promoted``, ``kept_challenger`` or ``skipped`` (not enough data: nothing trained)
    decision: str
    reason: str
    version: str | None
    evidence: dict[str, Any]


def last_seen(events: Iterable[SeenEvent], outcomes: Iterable[SeenOutcome]) -> pd.DataFrame:
    """One row per customer with an outcome and an event at or before it (see the module docstring).

    A customer's latest outcome counts. Columns: ``customer_id``, the features, ``churn``, ``observed_at``.
    """
    latest: dict[str, SeenOutcome] = {}
    for outcome in outcomes:
        kept = latest.get(outcome.customer_id)
        if kept is None or outcome.observed_at >= kept.observed_at:
            latest[outcome.customer_id] = outcome
    seen: dict[str, SeenEvent] = {}
    for event in events:
        labelled_by = latest.get(event.customer_id)
        if labelled_by is None or event.event_time > labelled_by.observed_at:
            continue
        kept_event = seen.get(event.customer_id)
        if kept_event is None or event.event_time >= kept_event.event_time:
            seen[event.customer_id] = event
    rows = []
    for customer, event in seen.items():
        outcome = latest[customer]
        row = {name: event.features.get(name) for name in FEATURES}
        row[ID_COLUMN] = customer
        row[TARGET] = int(outcome.churned)
        row[OBSERVED_AT] = outcome.observed_at
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[ID_COLUMN, *FEATURES, TARGET, OBSERVED_AT])
    return frame.sort_values(OBSERVED_AT, kind="stable").reset_index(drop=True)


def split_window(frame: pd.DataFrame, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, evaluation window): the latest ``holdout`` share of rows by ``observed_at``."""
    if not 0 < holdout < 1:
        raise ValueError("holdout must lie in (0, 1)")
    ordered = frame.sort_values(OBSERVED_AT, kind="stable").reset_index(drop=True)
    cut = len(ordered) - max(1, round(len(ordered) * holdout))
    return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)


def retrain(
    frame: pd.DataFrame,
    registry: ModelRegistry,
    config: RetrainConfig,
    *,
    source: Mapping[str, Any],
    trigger: Sequence[Mapping[str, Any]] = (),
) -> RetrainResult:
    """Train on ``frame`` (from :func:`last_seen`), evaluate, gate, record; see the module docstring.

    With ``config.tracking``, one MLflow run holds the training, the comparison and the decision.
    ``trigger``: what asked for this run (the alerts of ``churn retrain --listen``), kept in the evidence.
    """
    if config.tracking is None:
        return _retrain(frame, registry, config, source, None, trigger)
    with tracking.start(config.tracking, "retrain", {"churn.command": "retrain"}) as run:
        result = _retrain(frame, registry, config, source, run, trigger)
        run.metrics(tracking.retrain_metrics(result.evidence))
        run.tags({"churn.retrain.decision": result.decision, "churn.retrain.reason": result.reason})
        return result


def _retrain(
    frame: pd.DataFrame,
    registry: ModelRegistry,
    config: RetrainConfig,
    source: Mapping[str, Any],
    run: Run | None,
    trigger: Sequence[Mapping[str, Any]] = (),
) -> RetrainResult:
    champion = registry.current()
    train_rows, window = split_window(frame, config.holdout) if len(frame) >= 2 else (frame, frame.iloc[:0])
    evidence: dict[str, Any] = {
        "source": dict(source),
        "rows": {"labelled": len(frame), "train": len(train_rows), "window": len(window)},
        "window": _span(window),
        "train_window": _span(train_rows),
        "holdout": config.holdout,
        "champion": champion,
    }
    if trigger:
        evidence["trigger"] = [dict(t) for t in trigger]
    if run is not None:
        evidence["mlflow_run_id"] = run.run_id
        run.params(tracking.retrain_params(config, source, champion))
    if champion is None:
        return _skip(registry, "no champion to compare with: train and promote one first", evidence)
    if len(train_rows) < config.min_train_rows or len(window) < config.min_pairs:
        reason = (
            f"{len(train_rows)} training rows and {len(window)} in the evaluation window; "
            f"need {config.min_train_rows} and {config.min_pairs}"
        )
        return _skip(registry, reason, evidence)
    if train_rows[TARGET].nunique() < 2 or window[TARGET].nunique() < 2:
        return _skip(registry, "the training rows or the evaluation window hold one class only", evidence)

    with tempfile.TemporaryDirectory(prefix="churn-retrain-") as tmp:
        csv = Path(tmp) / "last-seen.csv"
        to_telco_csv(train_rows, csv)
        outcome = train(
            TrainConfig(
                data=csv,
                store=registry.root,
                promote=False,
                candidates=config.candidates,
                cv_folds=config.cv_folds,
                plots=config.plots,
                signing_key=config.signing_key,
            ),
            run=run,
        )
    version = outcome.version
    evidence["selected_model"] = outcome.selected_model
    records = _records(window)
    labels = window[TARGET].to_numpy(dtype=np.int64)
    champion_p = registry.vet(champion).predict_batch(records)
    new_p = registry.vet(version).predict_batch(records)
    try:
        comparison = compare_paired(labels, champion_p, new_p, n_boot=config.n_boot, seed=config.seed)
    except NotComparableError as exc:  # guarded above; kept for a window the cleaning emptied
        registry.set_challenger(version, reason=f"retrain: {exc}", evidence=evidence)
        return RetrainResult("kept_challenger", str(exc), version, evidence)
    decision = gate(comparison, min_gain=config.min_gain, min_pairs=config.min_pairs)
    evidence["comparison"] = comparison.as_dict()
    evidence["gate"] = {
        "min_gain": config.min_gain,
        "min_pairs": config.min_pairs,
        "passed": decision.promote,
    }
    registry.set_challenger(version, reason="retrain: candidate under evaluation", evidence=evidence)
    if decision.promote:
        registry.promote(version, reason=f"retrain: {decision.reason}", evidence=evidence)
        log.info("retrain promoted %s: %s", version, decision.reason)
        return RetrainResult("promoted", decision.reason, version, evidence)
    registry.record_decision(
        "retrain_kept_challenger", version, reason=f"retrain: {decision.reason}", evidence=evidence
    )
    log.info("retrain kept %s as challenger: %s", version, decision.reason)
    return RetrainResult("kept_challenger", decision.reason, version, evidence)


def _records(window: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in window[[ID_COLUMN, *FEATURES]].to_dict("records"):
        clean_row = {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        value = clean_row.get("total_charges")
        if isinstance(value, float) and np.isnan(value):
            clean_row["total_charges"] = None
        out.append(clean_row)
    return out


def _span(rows: pd.DataFrame) -> dict[str, str | None]:
    if rows.empty:
        return {"from": None, "to": None}
    first, last = float(rows[OBSERVED_AT].min()), float(rows[OBSERVED_AT].max())
    return {
        "from": datetime.fromtimestamp(first, UTC).isoformat(timespec="seconds"),
        "to": datetime.fromtimestamp(last, UTC).isoformat(timespec="seconds"),
    }


def _skip(registry: ModelRegistry, reason: str, evidence: dict[str, Any]) -> RetrainResult:
    registry.record_decision("retrain_skipped", None, reason=f"retrain: {reason}", evidence=evidence)
    log.warning("retrain skipped: %s", reason)
    return RetrainResult("skipped", reason, None, evidence)
