"""Compile the fitted part of a pipeline into plain numpy.

sklearn spends most of a one-row ``predict_proba`` (hundreds of microseconds)
on input validation, metadata routing and dispatch, not on arithmetic. For the
pipelines whose fitted steps we can express exactly — :class:`NumericBasis`,
``StandardScaler``, a binary ``LogisticRegression(CV)``, a binary
``HistGradientBoostingClassifier`` with numeric splits, and a soft
``VotingClassifier`` of those — this module
builds a function that does only the arithmetic, in the same order sklearn
does it. :func:`compile_tail` returns ``None`` for anything else, and the
caller falls back to sklearn; :class:`models.predictor.Predictor` also checks
the compiled function against sklearn on probe rows before trusting it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sklearn
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.basis import NumericBasis

Scorer = Callable[[np.ndarray], np.ndarray]

#: Above this many rows, sklearn's compiled tree code beats walking all trees in numpy.
TREE_MAX_ROWS = 256


def compile_tail(tail: Pipeline) -> Scorer | None:
    """A numpy scorer equivalent to ``tail.predict_proba(X)[:, 1]``, or ``None``."""
    return _compile_steps(_flatten(tail))


def _compile_steps(steps: list[Any]) -> Scorer | None:
    if not steps:
        return None
    *transforms, model = steps
    final = _compile_model(model)
    if final is None:
        return None
    stages: list[Callable[[np.ndarray], np.ndarray]] = []
    for step in transforms:
        stage = _stage(step)
        if stage is None:
            return None
        stages.append(stage)
    if not stages:
        return final

    def score(matrix: np.ndarray) -> np.ndarray:
        for stage in stages:
            matrix = stage(matrix)
        return final(matrix)

    return score


def _compile_model(model: Any) -> Scorer | None:
    if isinstance(model, Pipeline):
        return compile_tail(model)
    if isinstance(model, LogisticRegression | LogisticRegressionCV):
        return _logistic(model)
    if isinstance(model, HistGradientBoostingClassifier):
        return _gradient_boosting(model)
    if isinstance(model, VotingClassifier):
        return _soft_vote(model)
    return None


def _logistic(model: LogisticRegression) -> Scorer | None:
    if len(model.classes_) != 2 or model.coef_.shape[0] != 1:
        return None
    coef = np.ascontiguousarray(model.coef_.T)
    intercept = model.intercept_.copy()

    def score(matrix: np.ndarray) -> np.ndarray:
        decision = matrix @ coef + intercept
        return np.asarray(expit(decision[:, 0]), dtype=np.float64)

    return score


def _gradient_boosting(model: HistGradientBoostingClassifier) -> Scorer | None:
    """Every tree walked at once, level by level, instead of one Python call per tree.

    sklearn calls each of the (hundreds of) trees in turn, which costs ~1 ms for
    one row; here all trees advance together, so a row costs ~depth numpy steps.
    Numeric splits only (the encoder produces no categorical features). Large
    batches go to sklearn's own compiled (OpenMP) code, which is faster there.
    """
    if len(model.classes_) != 2 or model.n_trees_per_iteration_ != 1:
        return None
    trees = [predictors[0].nodes for predictors in model._predictors]
    if not trees or any(t["is_categorical"].any() for t in trees):
        return None
    offsets = np.cumsum([0] + [len(t) for t in trees[:-1]])
    nodes = np.concatenate(trees)
    shift = np.repeat(offsets, [len(t) for t in trees])
    feature = nodes["feature_idx"].astype(np.intp)
    threshold = nodes["num_threshold"].astype(np.float64)
    missing_left = nodes["missing_go_to_left"].astype(bool)
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, np.arange(len(nodes)), nodes["left"].astype(np.intp) + shift)
    right = np.where(leaf, np.arange(len(nodes)), nodes["right"].astype(np.intp) + shift)
    value = nodes["value"].astype(np.float64)
    roots = offsets.astype(np.intp)
    depth = int(nodes["depth"].max())
    baseline = float(np.asarray(model._baseline_prediction).ravel()[0])

    def score(matrix: np.ndarray) -> np.ndarray:
        if matrix.shape[0] > TREE_MAX_ROWS:
            with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
                return np.asarray(model.predict_proba(matrix)[:, 1], dtype=np.float64)
        node = np.broadcast_to(roots, (matrix.shape[0], len(roots))).copy()
        rows = np.arange(matrix.shape[0])[:, None]
        for _ in range(depth):
            x = matrix[rows, feature[node]]
            go_left = np.where(np.isnan(x), missing_left[node], x <= threshold[node])
            node = np.where(go_left, left[node], right[node])
        raw = baseline + value[node].sum(axis=1)
        return np.asarray(expit(raw), dtype=np.float64)

    return score


def _soft_vote(model: VotingClassifier) -> Scorer | None:
    if model.voting != "soft" or len(model.classes_) != 2:
        return None
    members = [_compile_model(estimator) for estimator in model.estimators_]
    if any(member is None for member in members):
        return None
    scorers = [m for m in members if m is not None]
    weights = np.ones(len(scorers)) if model.weights is None else np.asarray(model.weights, dtype=np.float64)

    def score(matrix: np.ndarray) -> np.ndarray:
        stacked = np.stack([member(matrix) for member in scorers])
        return np.asarray(np.average(stacked, axis=0, weights=weights), dtype=np.float64)

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
