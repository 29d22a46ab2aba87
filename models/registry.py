"""The model registry: the store (:mod:`models.store`) plus the operations that move ``CURRENT``.

* :meth:`ModelRegistry.vet` test-loads a version the way a serving process does:
  integrity (and signature), deserialisation, the compiled fast path against
  sklearn, the reason codes, and a probe prediction that must be finite and in
  [0, 1] — a :class:`~models.predictor.Predictor` ready to serve, or an error.
* :meth:`ModelRegistry.promote` vets a version before it switches ``CURRENT``, so
  a version nobody can load is never promoted.
* :meth:`ModelRegistry.rollback` returns to the version promoted before the
  current one; it refuses when ``CURRENT`` is not the last promotion recorded in
  ``history.json`` (someone moved the pointer by hand), and vets the target too.

``history.json`` is a stack of promotions, oldest first: ``promote`` pushes a
version (unless it is already on top), ``rollback`` pops the top one. Serving
processes fall back to its entries, newest first, when ``CURRENT`` cannot be
loaded (:mod:`models.live`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.predictor import Predictor
from models.probes import probe_records
from models.store import (
    CURRENT_FILE,
    HISTORY_FILE,
    LEGACY_MODEL_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    IntegrityError,
    LoadedModel,
    ModelStore,
    RegistryError,
    sha256_file,
)

__all__ = [
    "CURRENT_FILE",
    "HISTORY_FILE",
    "LEGACY_MODEL_FILE",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "IntegrityError",
    "LoadedModel",
    "ModelCheckError",
    "ModelRegistry",
    "RegistryError",
    "sha256_file",
]

log = logging.getLogger(__name__)


class ModelCheckError(RegistryError):
    """A version passed its integrity checks but fails to serve (wrong object, bad predictions)."""


class ModelRegistry(ModelStore):
    """Versioned model artifacts in one store directory, and the pointer to the one in use."""

    def vet(self, version: str, probes: Sequence[Mapping[str, Any]] | None = None) -> Predictor:
        """Load ``version`` and check it serves (see the module docstring); the ready predictor."""
        loaded = self.load(version)
        records = list(probes) if probes is not None else probe_records()
        try:
            predictor = Predictor.from_loaded(loaded)
            predictor.check_fast_path(records)
            predictor.check_reasons(records)
            batch = predictor.predict_batch(records)
            single = predictor.predict_one(records[0])
        except Exception as exc:
            log.error("model_check_failed version=%s error=%r", version, exc)
            raise ModelCheckError(
                f"version {version}: the model cannot score the probe customers ({type(exc).__name__})"
            ) from exc
        scores = np.append(np.asarray(batch, dtype=np.float64), single)
        if scores.shape != (len(records) + 1,) or not np.all(np.isfinite(scores)):
            raise ModelCheckError(f"version {version}: the probe predictions are not all finite numbers")
        if np.any(scores < 0.0) or np.any(scores > 1.0):
            raise ModelCheckError(f"version {version}: a probe prediction is outside [0, 1]")
        return predictor

    def promote(self, version: str) -> None:
        """Make ``version`` the current one, once it has passed :meth:`vet`."""
        self.vet(version)
        with self._locked():
            history = self.history()
            if not (history and history[-1] == version):
                history.append(version)
            self._write_pointer(version, history)
        log.info("promoted model version %s", version)

    def rollback(self) -> str:
        """Return to the version promoted before the current one; return that version."""
        with self._locked():
            history = self.history()
            current = self.current()
            if len(history) < 2:
                raise RegistryError("nothing to roll back to: fewer than two promotions recorded")
            if current != history[-1]:
                raise RegistryError(
                    f"CURRENT names {current or 'nothing'} but the last promotion recorded in "
                    f"{HISTORY_FILE} is {history[-1]}: the pointer was moved outside `churn models`. "
                    "Promote the version you want instead: churn models promote VERSION"
                )
            previous = history[-2]
            self.vet(previous)
            self._write_pointer(previous, history[:-1])
        log.info("rolled back to model version %s", previous)
        return previous
