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
