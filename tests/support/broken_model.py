"""Deliberately broken model versions: a real fitted pipeline that fails on chosen tenures.

:func:`save_broken_version` writes a version into a store whose final step wraps the
promoted version's fitted model and fails on every record whose tenure is in
``tenures`` (raising ``error``). The load-time probes (tenures 0-72) pass, so the
serving process loads it like any promotion; events with a marked tenure then make it
fail exactly where a test wants. A scorer that loads such a version must be able to
import this module: run it with the repository root on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline

from models.encoding import FeatureEncoder, feature_names
from models.registry import MANIFEST_FILE, ModelRegistry
from models.store import LEGACY_MODEL_FILE

TENURE_COLUMN = feature_names().index("tenure")


class FailsOnTenure(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """``inner`` (fitted) for every row, except that a batch with a marked tenure raises."""

    def __init__(self, inner: Any = None, tenures: Sequence[int] = (), error: str = "value") -> None:
        self.inner = inner
        self.tenures = tenures
        self.error = error

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.inner.classes_)

    def fit(self, X: Any, y: Any = None) -> FailsOnTenure:
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True  # ``inner`` is

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if np.isin(X[:, TENURE_COLUMN], list(self.tenures)).any():
            if self.error == "memory":
                raise MemoryError("the model ran out of memory on this batch")
            raise ValueError(f"the model cannot score tenure in {list(self.tenures)}")
        return np.asarray(self.inner.predict_proba(X))


def save_broken_version(
    store: Path, tenures: Sequence[int], *, error: str = "value", name: str = "broken"
) -> str:
    """A new version in ``store`` (not promoted) failing on ``tenures``; returns its name."""
    registry = ModelRegistry(store)
    base = registry.current()
    assert base is not None, "the store has no promoted version to break"
    loaded = registry.load(base)
    pipeline = Pipeline(
        [("encode", FeatureEncoder()), ("model", FailsOnTenure(loaded.pipeline[1:], tenures, error))]
    )
    version = f"{base}-{name}"
    manifest = {k: v for k, v in loaded.manifest.items() if k != "sha256"}
    with registry.stage(version) as folder:
        # A pickle: the failing wrapper is a test class, which skops would not trust.
        joblib.dump(pipeline, folder / LEGACY_MODEL_FILE)
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return version
