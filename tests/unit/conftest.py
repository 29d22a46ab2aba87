"""Fixtures for the unit tests: small synthetic data and a trained model store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.run import TrainConfig, TrainOutcome, train
from training.synthetic import generate


@pytest.fixture(scope="session")
def small_frame() -> pd.DataFrame:
    return generate(1500, seed=11)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainOutcome:
    """One full training run (every candidate, pictures) on small synthetic data."""
    store = tmp_path_factory.mktemp("store")
    return train(TrainConfig(store=store, rows=1500, seed=3, cv_folds=3))


@pytest.fixture
def store_copy(trained: TrainOutcome, tmp_path: Path) -> Path:
    """A private copy of the trained store that a test may tamper with."""
    import shutil

    target = tmp_path / "store"
    shutil.copytree(trained.path.parent, target)
    return target
