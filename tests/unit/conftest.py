"""Fixtures for the unit tests: small synthetic data and a trained model store."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from training.run import TrainConfig, TrainOutcome, train
from training.synthetic import generate


@pytest.fixture(scope="session")
def small_frame() -> pd.DataFrame:
    return generate(1500, seed=11)


#: ``trained`` of this process: mutation testing (tests/mutation/run.py) runs one pytest session per
#: mutant in a fork of the process that ran the clean session, which reuses it instead of training again.
_TRAINED: list[TrainOutcome] = []


@pytest.fixture(scope="session")
def trained() -> TrainOutcome:
    """One full training run (every candidate, pictures) on small synthetic data; tests only read it."""
    if not _TRAINED:
        # Not under pytest's numbered temporary folders: later sessions in this process delete them.
        store = Path(tempfile.mkdtemp(prefix="churn-trained-"))
        atexit.register(shutil.rmtree, store, True)
        _TRAINED[:] = [train(TrainConfig(store=store, rows=1500, seed=3, cv_folds=3))]
    return _TRAINED[0]


@pytest.fixture
def store_copy(trained: TrainOutcome, tmp_path: Path) -> Path:
    """A private copy of the trained store that a test may tamper with."""
    target = tmp_path / "store"
    shutil.copytree(trained.path.parent, target)
    return target
