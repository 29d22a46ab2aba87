"""Compile the fitted part of a linear pipeline into plain numpy.

sklearn spends most of a one-row ``predict_proba`` (hundreds of microseconds)
on input validation, metadata routing and dispatch, not on arithmetic. For the
pipelines whose fitted steps we can express exactly — :class:`NumericBasis`,
``StandardScaler``, and a binary ``LogisticRegression(CV)`` — this module
builds a function that does only the arithmetic, in the same order sklearn
does it. :func:`compile_tail` returns ``None`` for anything else, and the
caller falls back to sklearn; :class:`models.predictor.Predictor` also checks
the compiled function against sklearn on probe rows before trusting it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.basis import NumericBasis

Scorer = Callable[[np.ndarray], np.ndarray]


def compile_tail(tail: Pipeline) -> Scorer | None:
    """A numpy scorer equivalent to ``tail.predict_proba(X)[:, 1]``, or ``None``."""
    steps = _flatten(tail)
    if not steps:
        return None
    *transforms, model = steps
    if not isinstance(model, LogisticRegression | LogisticRegressionCV):
        return None
    if len(model.classes_) != 2 or model.coef_.shape[0] != 1:
        return None
    stages: list[Callable[[np.ndarray], np.ndarray]] = []
    for step in transforms:
        stage = _stage(step)
        if stage is None:
            return None
        stages.append(stage)
    coef = np.ascontiguousarray(model.coef_.T)
    intercept = model.intercept_.copy()

    def score(matrix: np.ndarray) -> np.ndarray:
        for stage in stages:
            matrix = stage(matrix)
        decision = matrix @ coef + intercept
        return np.asarray(expit(decision[:, 0]), dtype=np.float64)

    return score


def _flatten(pipeline: Pipeline) -> list[Any]:
    """The steps of a pipeline, nested pipelines inlined, pass-through steps dropped."""
    steps: list[Any] = []
    for _, step in pipeline.steps:
        if isinstance(step, Pipeline):
            steps += _flatten(step)
        elif step is not None and not (isinstance(step, str) and step == "passthrough"):
            steps.append(step)
    return steps


def _stage(step: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    if isinstance(step, NumericBasis):
        return step.fast_transform
    if isinstance(step, StandardScaler):
        mean = step.mean_ if step.with_mean else None
        scale = step.scale_ if step.with_std else None

        def standardise(matrix: np.ndarray) -> np.ndarray:
            out = matrix.copy()
            if mean is not None:
                out -= mean
            if scale is not None:
                out /= scale
            return out

        return standardise
    return None
