"""The numpy walk of gradient-boosted trees reaches sklearn's leaves, missing values included."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from models.fastpath import TreeArrays


def test_the_leaves_reached_give_sklearns_log_odds_with_and_without_missing_values() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3000, 6))
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(scale=0.5, size=3000) > 0).astype(int)
    x[rng.random(x.shape) < 0.1] = np.nan  # learnt missing-value directions
    model = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(x, y)
    forest = TreeArrays.of(model)
    assert forest is not None

    fresh = rng.normal(size=(700, 6))
    with_missing = fresh.copy()
    with_missing[rng.random(fresh.shape) < 0.2] = np.nan
    for matrix in (fresh, with_missing, with_missing[:1], np.asfortranarray(with_missing)):
        walked = forest.baseline + forest.value[forest.leaves(matrix)].sum(axis=1)
        np.testing.assert_allclose(walked, model.decision_function(matrix), rtol=0, atol=1e-9)


def test_a_value_exactly_at_a_split_threshold_goes_where_sklearn_sends_it() -> None:
    """sklearn sends ``x <= threshold`` left: rows sitting exactly on every split agree too."""
    rng = np.random.default_rng(6)
    x = rng.integers(0, 8, size=(2000, 3)).astype(np.float64)  # few distinct values: many ties
    y = (x[:, 0] + x[:, 1] - x[:, 2] + rng.normal(scale=1.0, size=2000) > 4).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)
    forest = TreeArrays.of(model)
    assert forest is not None
    inner = forest.left != np.arange(len(forest.left))
    matrix = np.zeros((int(inner.sum()), 3))
    matrix[np.arange(len(matrix)), forest.feature[inner]] = forest.threshold[inner]
    walked = forest.baseline + forest.value[forest.leaves(matrix)].sum(axis=1)
    np.testing.assert_allclose(walked, model.decision_function(matrix), rtol=0, atol=1e-9)


def test_batches_past_the_walk_limit_go_to_sklearns_tree_code_without_its_input_checks() -> None:
    """Up to TREE_MAX_ROWS rows are walked in numpy; more go to sklearn, inputs already validated."""
    import sklearn
    from sklearn.pipeline import Pipeline

    from models.fastpath import TREE_MAX_ROWS, compile_log_odds

    rng = np.random.default_rng(7)
    x = rng.normal(size=(600, 4))
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(x, x[:, 0] > 0)
    calls: list[tuple[int, bool, bool]] = []
    decision = model.decision_function

    def spy(matrix: np.ndarray) -> np.ndarray:
        config = sklearn.get_config()
        calls.append((len(matrix), config["assume_finite"], config["skip_parameter_validation"]))
        return decision(matrix)

    model.decision_function = spy  # type: ignore[method-assign]
    log_odds = compile_log_odds(Pipeline([("model", model)]))
    assert log_odds is not None
    for rows in (TREE_MAX_ROWS, TREE_MAX_ROWS + 1):
        np.testing.assert_allclose(log_odds(x[:rows]), decision(x[:rows]), rtol=0, atol=1e-9)
    assert calls == [(TREE_MAX_ROWS + 1, True, True)]
