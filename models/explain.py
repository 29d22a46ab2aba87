"""Exact reason codes: each wire feature's signed share of a prediction's log-odds.

For a fitted pipeline tail (everything after the encoder), :func:`compile_explainer`
builds a vectorised function from the design matrix to a base value per row and
one contribution per wire feature (``tenure``, ``contract``, ... in the order of
:data:`schemas.features.FEATURES`), such that

    base + contributions.sum(axis=1) == the model's log-odds (``decision_function``)

up to floating-point rounding. Where the model admits no such split it says why
and serves no reasons — never approximate ones:

* logistic regression, plain or on the spline basis: the linear terms
  ``coef_j * z_j`` of the scaled columns, summed per feature (a feature's one-hot
  levels, its log and hinge columns are grouped back to it); base = intercept.
  With the scaler, a contribution is measured from the training mean.
* histogram gradient boosting: path contributions — along each tree's decision
  path, ``value(child) - value(parent)`` goes to the feature of the split, so a
  tree's contributions telescope from its root value to the leaf it reaches;
  base = the baseline plus every tree's root value.
* :class:`~models.blend.LogOddsBlend`: the weighted sum of its members'.
* :class:`~models.calibration.SigmoidCalibrated` on log-odds: an affine map of
  the log-odds, so contributions scale by the slope and the intercept joins the base.
* random forests, the probability-averaging soft vote and isotonic calibration
  average or step probabilities: no exact decomposition, no reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
from scipy import sparse
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import Pipeline

from models.basis import NumericBasis
from models.blend import LogOddsBlend
from models.calibration import IsotonicCalibrated, SigmoidCalibrated
from models.encoding import column_features
from models.fastpath import TreeArrays, flatten, stage
from schemas.features import FEATURES

#: ``matrix -> (base (rows,), contributions (rows, len(FEATURES)))``.
Decompose = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

_FEATURE_INDEX = {name: i for i, name in enumerate(FEATURES)}
#: For each column of the encoder's design matrix, the index of its wire feature in FEATURES.
DESIGN_SOURCES = np.array([_FEATURE_INDEX[name] for name in column_features()], dtype=np.intp)


#: Up to this many rows, summing the leaves' path rows directly beats building a sparse matrix.
_DENSE_MAX_ROWS = 8


class Reason(TypedDict):
    """One reason for one prediction: a wire feature, the customer's value, its log-odds share."""

    feature: str
    value: Any
    contribution: float


class NotExplainableError(Exception):
    """The model's log-odds has no exact per-feature decomposition; ``str(exc)`` says why."""


@dataclass(frozen=True)
class Contributions:
    """Per-row log-odds contributions of every wire feature, plus the base value."""

    base: np.ndarray
    values: np.ndarray

    def log_odds(self) -> np.ndarray:
        return np.asarray(self.base + self.values.sum(axis=1), dtype=np.float64)

    def top(self, k: int, *, up: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` features pushing each row's churn probability up (or down) the most.

        Returns ``(features, contributions)``, both ``(rows, k)``: indices into
        FEATURES, largest push first, and their signed contributions. Only features
        that push that way count; a row with fewer has ``-1`` and NaN after them.
        Ties keep the order of FEATURES.
        """
        k = min(k, self.values.shape[1])
        signed = self.values if up else -self.values
        order = np.argsort(-signed, axis=1, kind="stable")[:, :k]
        pushing = np.take_along_axis(signed, order, axis=1) > 0.0
        features = np.where(pushing, order, -1)
        contributions = np.where(pushing, np.take_along_axis(self.values, order, axis=1), np.nan)
        return features, contributions


def reasons(
    contributions: Contributions,
    column: Callable[[str], Sequence[Any]],
    *,
    top: int = 3,
    down: int = 0,
) -> list[list[Reason]]:
    """Per row: the ``top`` reasons pushing churn up, then the ``down`` strongest pushing it down.

    ``column(feature)`` gives the customers' values of a wire feature, as sent, one
    per row; it is asked only for the features that appear among the reasons.
    """
    rows: list[list[Reason]] = [[] for _ in range(contributions.values.shape[0])]
    values: dict[str, Sequence[Any]] = {}
    for count, up in ((top, True), (down, False)):
        if count <= 0:
            continue
        features, shares = contributions.top(count, up=up)
        # Slot by slot (a row's strongest reason first); a row's unused slots are at its end.
        for slot_features, slot_shares in zip(features.T.tolist(), shares.T.tolist(), strict=True):
            for row, index, amount in zip(range(len(rows)), slot_features, slot_shares, strict=True):
                if index < 0:
                    continue
                name = FEATURES[index]
                known = values.get(name)
                if known is None:
                    known = values[name] = column(name)
                rows[row].append({"feature": name, "value": known[row], "contribution": amount})
    return rows


@dataclass(frozen=True)
class Explainer:
    """The compiled decomposition of one pipeline tail, or why there is none."""

    decompose: Decompose | None
    unavailable: str | None = None

    @property
    def explainable(self) -> bool:
        return self.decompose is not None

    def __call__(self, matrix: np.ndarray) -> Contributions:
        if self.decompose is None:
            raise NotExplainableError(self.unavailable or "this model serves no reasons")
        base, values = self.decompose(matrix)
        return Contributions(base, values)


def compile_explainer(tail: Pipeline) -> Explainer:
    """The exact decomposition of ``tail.decision_function`` over the encoder's design matrix."""
    try:
        return Explainer(_steps(flatten(tail), DESIGN_SOURCES))
    except NotExplainableError as exc:
        return Explainer(None, str(exc))


def _steps(steps: Sequence[Any], sources: np.ndarray) -> Decompose:
    """``sources[j]``: the wire feature that column ``j`` of the steps' input derives from."""
    if not steps:
        raise NotExplainableError("the pipeline has no model after the encoder")
    *transforms, model = steps
    stages: list[Callable[[np.ndarray], np.ndarray]] = []
    for step in transforms:
        compiled = stage(step)
        if compiled is None:
            raise NotExplainableError(f"no exact decomposition through {type(step).__name__}")
        stages.append(compiled)
        sources = _sources_after(step, sources)
    final = _model(model, sources)
    if not stages:
        return final

    def decompose(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        for transform in stages:
            matrix = transform(matrix)
        return final(matrix)

    return decompose


def _sources_after(step: Any, sources: np.ndarray) -> np.ndarray:
    if isinstance(step, NumericBasis):  # columns, then logs, then hinges of some columns
        return np.concatenate([sources, sources[list(step.log_columns)], sources[step._index]])
    return sources  # per-column scaling keeps every column where it was


def _model(model: Any, sources: np.ndarray) -> Decompose:
    if isinstance(model, Pipeline):
        return _steps(flatten(model), sources)
    if isinstance(model, LogisticRegression | LogisticRegressionCV):
        return _linear(model, sources)
    if isinstance(model, HistGradientBoostingClassifier):
        return _trees(model, sources)
    if isinstance(model, LogOddsBlend):
        return _blend(model, sources)
    if isinstance(model, SigmoidCalibrated):
        return _sigmoid(model, sources)
    if isinstance(model, RandomForestClassifier):
        raise NotExplainableError(
            "a random forest averages its trees' probabilities; its log-odds has no exact split by feature"
        )
    if isinstance(model, VotingClassifier):
        raise NotExplainableError(
            "a soft vote averages its members' probabilities; its log-odds has no exact split by feature"
        )
    if isinstance(model, IsotonicCalibrated):
        raise NotExplainableError("isotonic calibration is a step function of the score, not a sum")
    raise NotExplainableError(f"no exact decomposition for {type(model).__name__}")


def _linear(model: LogisticRegression, sources: np.ndarray) -> Decompose:
    if len(model.classes_) != 2 or model.coef_.shape[0] != 1:
        raise NotExplainableError("only binary logistic regression is decomposed")
    coef = model.coef_[0].astype(np.float64)
    intercept = float(model.intercept_[0])
    # Columns regrouped feature by feature; reduceat sums each group row by row, in the same
    # order whatever the number of rows, so one record gets the same reasons alone or in a batch.
    order = np.argsort(sources, kind="stable")
    grouped = sources[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    present = grouped[starts]
    coef_in_order = coef[order]

    def decompose(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = np.zeros((matrix.shape[0], len(FEATURES)))
        values[:, present] = np.add.reduceat(matrix[:, order] * coef_in_order, starts, axis=1)
        return np.full(matrix.shape[0], intercept), values

    return decompose


def _trees(model: HistGradientBoostingClassifier, sources: np.ndarray) -> Decompose:
    forest = TreeArrays.of(model)
    if forest is None:
        raise NotExplainableError("only binary gradient boosting on numeric splits is decomposed")
    # path[node]: per feature, the sum of value changes from its tree's root down to node.
    n_nodes = len(forest.value)
    path = np.zeros((n_nodes, len(FEATURES)), dtype=np.float64)
    inner = forest.left != np.arange(n_nodes)
    for node in np.flatnonzero(inner):  # parents precede children in sklearn's node order
        feature = sources[forest.feature[node]]
        for child in (forest.left[node], forest.right[node]):
            path[child] = path[node]
            path[child, feature] += forest.value[child] - forest.value[node]
    base = forest.baseline + float(forest.value[forest.roots].sum())
    n_trees = len(forest.roots)

    def decompose(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = matrix.shape[0]
        leaves = forest.leaves(matrix)
        if rows <= _DENSE_MAX_ROWS:
            return np.full(rows, base), path[leaves].sum(axis=1)
        reached = sparse.csr_matrix(
            (np.ones(rows * n_trees), leaves.ravel(), np.arange(0, rows * n_trees + 1, n_trees)),
            shape=(rows, n_nodes),
        )
        return np.full(rows, base), np.asarray(reached @ path)

    return decompose


def _blend(model: LogOddsBlend, sources: np.ndarray) -> Decompose:
    members = [(float(w), _model(m, sources)) for w, m in zip(model.weights_, model.estimators_, strict=True)]

    def decompose(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base = np.zeros(matrix.shape[0])
        values = np.zeros((matrix.shape[0], len(FEATURES)))
        for weight, member in members:
            member_base, member_values = member(matrix)
            base += weight * member_base
            values += weight * member_values
        return base, values

    return decompose


def _sigmoid(model: SigmoidCalibrated, sources: np.ndarray) -> Decompose:
    inner = _model(model.estimator_, sources)  # an unexplainable model says why first
    if not model.on_log_odds_:
        raise NotExplainableError("sigmoid calibration of probabilities is not affine in the log-odds")
    slope, intercept = model.slope_, model.intercept_

    def decompose(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base, values = inner(matrix)
        return slope * base + intercept, slope * values

    return decompose
