"""Fitted candidate pipelines for the model tests, fitted once per process.

``test_predictor.py`` and ``test_explain.py`` fit the same candidates on the same synthetic
frame, and under ``make mutation`` every mutant's forked session would fit them again; the
fit is the slow part of those tests. Each caller gets its own deep copy, so a test that
edits a fitted model's coefficients changes only its copy.
"""

from __future__ import annotations

import copy

import pandas as pd
from sklearn.pipeline import Pipeline

from models.calibration import IsotonicCalibrated, SigmoidCalibrated
from models.encoding import FeatureEncoder
from training import candidates

_FITTED: dict[tuple[str, str, int], Pipeline] = {}


def fitted(
    name: str,
    frame: pd.DataFrame,
    calibration: type[SigmoidCalibrated] | type[IsotonicCalibrated] | None = None,
) -> Pipeline:
    """Candidate ``name`` (``seed=0``) fitted on ``frame``, optionally wrapped in ``calibration``."""
    data = int(pd.util.hash_pandas_object(frame, index=True).sum())
    key = (name, calibration.__name__ if calibration else "", data)
    if key not in _FITTED:
        pipeline = candidates.build([name], seed=0)[name]
        if calibration is not None:
            pipeline = Pipeline([("encode", FeatureEncoder()), ("model", calibration(pipeline[1:], cv=3))])
        _FITTED[key] = pipeline.fit(frame, frame["churn"])
    return copy.deepcopy(_FITTED[key])
