"""Compile the fitted part of a pipeline into plain numpy.

sklearn spends most of a one-row ``predict_proba`` (hundreds of microseconds)
on input validation, metadata routing and dispatch, not on arithmetic. For the
pipelines whose fitted steps we can express exactly — :class:`NumericBasis`,
``StandardScaler``, a binary ``LogisticRegression(CV)``, a binary
``HistGradientBoostingClassifier`` with numeric splits, a soft
``VotingClassifier`` or a :class:`~models.blend.LogOddsBlend` of those, and
:class:`~models.calibration.SigmoidCalibrated` around any of them — this module
builds a function that does only the arithmetic, in the same order sklearn
does it. :func:`compile_tail` returns ``None`` for anything else, and the
caller falls back to sklearn; :class:`models.predictor.Predictor` also checks
the compiled function against sklearn on probe rows before trusting it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import sklearn
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.basis import NumericBasis
from models.blend import LogOddsBlend
from models.calibration import SigmoidCalibrated

Scorer = Callable[[np.ndarray], np.ndarray]

#: Above this many rows, sklearn's compiled tree code beats walking all trees in numpy.
TREE_MAX_ROWS = 256


def compile_tail(tail: Pipeline) -> Scorer | None:
    """A numpy scorer equivalent to ``tail.predict_proba(X)[:, 1]``, or ``None``."""
    return _compile_steps(flatten(tail), _compile_model)


def compile_log_odds(tail: Pipeline) -> Scorer | None:
    """A numpy scorer equivalent to ``tail.decision_function(X)`` (the log-odds), or ``None``."""
    return _compile_steps(flatten(tail), _compile_log_odds)


def _compile_steps(steps: list[Any], compile_final: Callable[[Any], Scorer | None]) -> Scorer | None:
    if not steps:
        return None
    *transforms, model = steps
    final = compile_final(model)
    if final is None:
        return None
    stages: list[Callable[[np.ndarray], np.ndarray]] = []
    for step in transforms:
        compiled = stage(step)
        if compiled is None:
            return None
        stages.append(compiled)
    if not stages:
        return final

    def score(matrix: np.ndarray) -> np.ndarray:
        for transform in stages:
            matrix = transform(matrix)
        return final(matrix)

    return score


def _compile_model(model: Any) -> Scorer | None:
    """P(churn) of one fitted step."""
    if isinstance(model, Pipeline):
        return compile_tail(model)
    if isinstance(model, VotingClassifier):
        return _soft_vote(model)
    if isinstance(model, SigmoidCalibrated) and not model.on_log_odds_:
        return _sigmoid_of_probability(model)
    log_odds = _compile_log_odds(model)
    if log_odds is None:
        return None

    def score(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(expit(log_odds(matrix)), dtype=np.float64)

    return score


def _compile_log_odds(model: Any) -> Scorer | None:
    """The log-odds (``decision_function``) of one fitted step."""
    if isinstance(model, Pipeline):
        return compile_log_odds(model)
    if isinstance(model, LogisticRegression | LogisticRegressionCV):
        return _logistic(model)
    if isinstance(model, HistGradientBoostingClassifier):
        return _gradient_boosting(model)
    if isinstance(model, LogOddsBlend):
        return _log_odds_blend(model)
    if isinstance(model, SigmoidCalibrated) and model.on_log_odds_:
        return _sigmoid_of_log_odds(model)
    return None


def _logistic(model: LogisticRegression) -> Scorer | None:
    if len(model.classes_) != 2:  # a binary model has one row of coefficients
        return None
    coef = np.ascontiguousarray(model.coef_.T)
    intercept = model.intercept_.copy()

    def log_odds(matrix: np.ndarray) -> np.ndarray:
        decision = matrix @ coef + intercept
        return np.asarray(decision[:, 0], dtype=np.float64)

    return log_odds


def _gradient_boosting(model: HistGradientBoostingClassifier) -> Scorer | None:
    """Every tree walked at once, level by level, instead of one Python call per tree.

    sklearn calls each of the (hundreds of) trees in turn, which costs ~1 ms for
    one row; here all trees advance together, so a row costs ~depth numpy steps.
    Numeric splits only (the encoder produces no categorical features). Large
    batches go to sklearn's own compiled (OpenMP) code, which is faster there.
    """
    forest = TreeArrays.of(model)
    if forest is None:
        return None

    def log_odds(matrix: np.ndarray) -> np.ndarray:
        if matrix.shape[0] > TREE_MAX_ROWS:
            with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
                return np.asarray(model.decision_function(matrix), dtype=np.float64)
        return np.asarray(forest.baseline + forest.value[forest.leaves(matrix)].sum(axis=1))

    return log_odds


@dataclass(frozen=True)
class TreeArrays:
    """The trees of a binary ``HistGradientBoostingClassifier`` as flat arrays, all trees at once.

    ``value`` holds, for every node, the prediction the tree would make if it
    stopped there: leaves as fitted; inner nodes scaled by the learning rate like
    leaves are (sklearn shrinks only the leaves), which is what path
    contributions (:mod:`models.explain`) compare.
    """

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    depth: int
    baseline: float

    @classmethod
    def of(cls, model: HistGradientBoostingClassifier) -> TreeArrays | None:
        """The arrays, or ``None`` for models the walk does not cover (multi-class, categorical)."""
        if model.n_trees_per_iteration_ != 1:  # one tree per iteration: a binary model
            return None
        trees = [predictors[0].nodes for predictors in model._predictors]
        if not trees or any(t["is_categorical"].any() for t in trees):
            return None
        offsets = np.cumsum([0] + [len(t) for t in trees[:-1]])
        nodes = np.concatenate(trees)
        shift = np.repeat(offsets, [len(t) for t in trees])
        leaf = nodes["is_leaf"].astype(bool)
        own = np.arange(len(nodes))
        value = nodes["value"].astype(np.float64)
        return cls(
            feature=nodes["feature_idx"].astype(np.intp),
            threshold=nodes["num_threshold"].astype(np.float64),
            missing_left=nodes["missing_go_to_left"].astype(bool),
            left=np.where(leaf, own, nodes["left"].astype(np.intp) + shift),
            right=np.where(leaf, own, nodes["right"].astype(np.intp) + shift),
            value=np.where(leaf, value, value * model.learning_rate),
            roots=offsets.astype(np.intp),
            depth=int(nodes["depth"].max()),
            baseline=float(np.asarray(model._baseline_prediction).ravel()[0]),
        )

    @cached_property
    def _children(self) -> np.ndarray:
        """``children[2 * node + go_left]``: the node's right child, then its left one."""
        return np.stack([self.right, self.left], axis=1).ravel()

    def leaves(self, matrix: np.ndarray) -> np.ndarray:
        """``(rows, trees)``: the leaf each row reaches in each tree.

        Every gather is a ``take`` on a flat array (several times faster than 2-D fancy
        indexing); the NaN test runs only when the batch has a missing value.
        """
        rows, columns = matrix.shape
        flat = np.ascontiguousarray(matrix, dtype=np.float64).ravel()
        starts = (np.arange(rows, dtype=np.intp) * columns)[:, None]
        node = np.broadcast_to(self.roots, (rows, len(self.roots))).copy()
        missing = bool(np.isnan(flat).any())
        children = self._children
        for _ in range(self.depth):
            x = flat.take(starts + self.feature.take(node))
            go_left = x <= self.threshold.take(node)
            if missing:
                go_left = np.where(np.isnan(x), self.missing_left.take(node), go_left)
            node = children.take(2 * node + go_left)
        return node


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


def _log_odds_blend(model: LogOddsBlend) -> Scorer | None:
    members = [_compile_log_odds(estimator) for estimator in model.estimators_]
    if any(member is None for member in members):
        return None
    pairs = [(float(w), m) for w, m in zip(model.weights_, members, strict=True) if m is not None]

    def log_odds(matrix: np.ndarray) -> np.ndarray:
        total = np.zeros(matrix.shape[0])
        for weight, member in pairs:
            total = total + weight * member(matrix)
        return total

    return log_odds


def _sigmoid_of_log_odds(model: SigmoidCalibrated) -> Scorer | None:
    inner = _compile_log_odds(model.estimator_)
    if inner is None:
        return None
    slope, intercept = model.slope_, model.intercept_

    def log_odds(matrix: np.ndarray) -> np.ndarray:
        return slope * inner(matrix) + intercept

    return log_odds


def _sigmoid_of_probability(model: SigmoidCalibrated) -> Scorer | None:
    inner = _compile_model(model.estimator_)
    if inner is None:
        return None
    slope, intercept = model.slope_, model.intercept_

    def score(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(expit(slope * inner(matrix) + intercept), dtype=np.float64)

    return score


def flatten(pipeline: Pipeline) -> list[Any]:
    """The fitted steps of a pipeline, nested pipelines inlined, pass-through steps dropped."""
    steps: list[Any] = []
    for _, step in pipeline.steps:
        if isinstance(step, Pipeline):
            steps += flatten(step)
        elif step is not None and not (isinstance(step, str) and step == "passthrough"):
            steps.append(step)
    return steps


def stage(step: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """The numpy equivalent of a fitted transformer's ``transform``, or ``None``."""
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
