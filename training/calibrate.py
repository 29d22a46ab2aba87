"""Does a calibrated variant of the selected model predict better probabilities?

For the selected candidate, both calibrators of :mod:`models.calibration`
(sigmoid and isotonic) are fitted on its out-of-fold scores from the
cross-validation it already went through, wrapped around the model fitted on
the whole training split, and measured on the held-out split. A variant is
kept when it

* lowers the held-out Brier score by at least ``MIN_BRIER_GAIN`` (smaller gains
  do not change a single decision a retention team makes),
* does not lower the held-out ROC AUC by more than ``AUC_SLACK`` (selection is
  ROC-AUC driven; sigmoid calibration is monotone and never changes it), and
* keeps the model's reason codes when it had them (isotonic calibration has none).

Of the variants that qualify, the lowest Brier score wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline

from models.calibration import IsotonicCalibrated, SigmoidCalibrated
from models.explain import compile_explainer
from training.evaluate import CandidateResult, best_f1_threshold

MIN_BRIER_GAIN = 0.0005
AUC_SLACK = 0.0005
METHODS: dict[str, type[SigmoidCalibrated] | type[IsotonicCalibrated]] = {
    "sigmoid": SigmoidCalibrated,
    "isotonic": IsotonicCalibrated,
}


@dataclass(frozen=True)
class Variant:
    method: str
    pipeline: Pipeline
    test_probability: np.ndarray
    threshold: float
    roc_auc: float
    brier: float
    explainable: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "roc_auc": self.roc_auc,
            "brier": self.brier,
            "threshold": self.threshold,
            "explainable": self.explainable,
        }


@dataclass(frozen=True)
class CalibrationCheck:
    roc_auc: float  # the uncalibrated model's, held out
    brier: float
    threshold: float
    explainable: bool
    variants: list[Variant]
    kept: Variant | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        before = {
            "roc_auc": self.roc_auc,
            "brier": self.brier,
            "threshold": self.threshold,
            "explainable": self.explainable,
        }
        return {
            "before": before,
            "variants": {v.method: v.as_dict() for v in self.variants},
            "kept": self.kept.method if self.kept else None,
            "after": self.kept.as_dict() if self.kept else before,
            "rule": f"keep a variant that lowers the held-out Brier score by >= {MIN_BRIER_GAIN}, "
            f"lowers ROC AUC by <= {AUC_SLACK} and keeps reason codes",
            "reason": self.reason,
        }


def check(
    result: CandidateResult, y_train: np.ndarray, x_test: pd.DataFrame, y_test: np.ndarray
) -> CalibrationCheck:
    """Fit, measure and judge each calibrated variant of ``result``'s fitted pipeline."""
    encoder, tail = result.pipeline.steps[0], result.pipeline[1:]
    explainable_before = compile_explainer(tail).explainable
    before_auc = float(roc_auc_score(y_test, result.test_probability))
    before_brier = float(brier_score_loss(y_test, result.test_probability))
    variants: list[Variant] = []
    for method, kind in METHODS.items():
        wrapper = kind.from_out_of_fold(tail, result.oof_score, y_train)
        pipeline = Pipeline([encoder, ("model", wrapper)])
        probability = pipeline.predict_proba(x_test)[:, 1]
        variants.append(
            Variant(
                method=method,
                pipeline=pipeline,
                test_probability=probability,
                threshold=best_f1_threshold(y_train, wrapper.calibrate(result.oof_score)),
                roc_auc=float(roc_auc_score(y_test, probability)),
                brier=float(brier_score_loss(y_test, probability)),
                explainable=compile_explainer(pipeline[1:]).explainable,
            )
        )
    qualified = [
        v
        for v in variants
        if v.brier <= before_brier - MIN_BRIER_GAIN
        and v.roc_auc >= before_auc - AUC_SLACK
        and (v.explainable or not explainable_before)
    ]
    kept = min(qualified, key=lambda v: v.brier) if qualified else None
    if kept is not None:
        reason = (
            f"{kept.method} calibration lowers the held-out Brier score from {before_brier:.4f} to "
            f"{kept.brier:.4f} (ROC AUC {before_auc:.4f} -> {kept.roc_auc:.4f}); kept"
        )
    else:
        tried = ", ".join(f"{v.method} {v.brier:.4f}" for v in variants)
        reason = (
            f"no variant lowers the held-out Brier score ({before_brier:.4f}; {tried}) by at least "
            f"{MIN_BRIER_GAIN} without costing ROC AUC or reason codes; shipped uncalibrated"
        )
    return CalibrationCheck(
        before_auc, before_brier, result.threshold, explainable_before, variants, kept, reason
    )
