"""Shared helpers for the API and LiveModel tests: a trained store, records, an app.

Training happens once per test session (two versions: the promoted ``v1`` and a
``v2`` trained on other data, not promoted); every caller gets its own copy of
the store, so a test may promote, roll back or tamper freely.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from models.registry import ModelRegistry
from training.run import TrainConfig, train
from training.synthetic import generate


@dataclass(frozen=True)
class Store:
    path: Path
    v1: str  # promoted
    v2: str  # trained on other data, not promoted

    @property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.path)


_PRISTINE: dict[str, Store] = {}


def _pristine(factory: pytest.TempPathFactory) -> Store:
    if "store" not in _PRISTINE:
        # Not under pytest's numbered temporary folders: later sessions in this process (mutation
        # testing forks one per mutant) delete the older ones, and this store must outlive them.
        root = Path(tempfile.mkdtemp(prefix="churn-api-store-"))
        atexit.register(shutil.rmtree, root, True)
        first = train(TrainConfig(store=root, candidates=["spline_logistic"], plots=False, rows=2000))
        second = train(
            TrainConfig(
                store=root, candidates=["spline_logistic"], plots=False, rows=2000, seed=99, promote=False
            )
        )
        _PRISTINE["store"] = Store(root, first.version, second.version)
    return _PRISTINE["store"]


def store_copy(factory: pytest.TempPathFactory) -> Store:
    """A private copy of the session's trained store (``v1`` promoted)."""
    pristine = _pristine(factory)
    target = factory.mktemp("store-copy") / "store"
    shutil.copytree(pristine.path, target)
    return Store(target, pristine.v1, pristine.v2)


def records(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` synthetic customers as JSON-ready dicts (plain Python values, no label)."""
    frame = generate(n, seed=seed).drop(columns=["churn"], errors="ignore")
    out = []
    for row in frame.to_dict("records"):
        clean = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        if isinstance(clean.get("total_charges"), float) and clean["total_charges"] != clean["total_charges"]:
            clean["total_charges"] = None
        out.append(clean)
    return out


def customer(**changes: Any) -> dict[str, Any]:
    """One valid customer, with ``changes`` applied."""
    record = records(1, seed=5)[0]
    record.update(changes)
    return record


def tamper(path: Path) -> bytes:
    """Flip the last byte of ``path``; return the original bytes (to restore later)."""
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    return original
