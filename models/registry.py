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

* :meth:`ModelRegistry.set_challenger` vets a version and points ``CHALLENGER`` at
  it: serving processes score it in shadow beside the champion (never for
  decisions); :meth:`ModelRegistry.clear_challenger` removes the pointer. Promoting
  the challenger to champion clears it.

``history.json`` is a stack of promotions, oldest first: ``promote`` pushes a
version (unless it is already on top), ``rollback`` pops the top one. Serving
processes fall back to its entries, newest first, when ``CURRENT`` cannot be
loaded (:mod:`models.live`).

``decisions.jsonl`` is the audit trail: every promotion, roll back, challenger
change and retrain decision appends one JSON object (``action``, ``version``,
``previous``, ``who``, ``at``, ``reason`` and, for a retrain, its ``evidence``).
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models.predictor import Predictor
from models.probes import probe_records
from models.store import (
    CHALLENGER_FILE,
    CURRENT_FILE,
    DECISIONS_FILE,
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
    "CHALLENGER_FILE",
    "CURRENT_FILE",
    "DECISIONS_FILE",
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

    def promote(self, version: str, *, reason: str = "", evidence: Mapping[str, Any] | None = None) -> None:
        """Make ``version`` the current one, once it has passed :meth:`vet`; recorded with ``reason``.

        When ``version`` is the challenger, the challenger pointer is cleared: it now serves as champion.
        """
        self.vet(version)
        with self._locked():
            history = self.history()
            previous = self.current()
            if not (history and history[-1] == version):
                history.append(version)
            self._write_pointer(version, history)
            self._record(_entry("promote", version, previous, reason, evidence))
            if self.challenger() == version:
                self._write_challenger(None)
                self._record(_entry("challenger_clear", None, version, "promoted to champion"))
        log.info("promoted model version %s", version)

    def set_challenger(
        self, version: str, *, reason: str = "", evidence: Mapping[str, Any] | None = None
    ) -> None:
        """Point ``CHALLENGER`` at ``version`` once it has passed :meth:`vet`; recorded with ``reason``."""
        self.vet(version)
        with self._locked():
            if self.current() == version:
                raise RegistryError(
                    f"version {version} is the champion (CURRENT); it cannot also be challenger"
                )
            previous = self.challenger()
            self._write_challenger(version)
            self._record(_entry("challenger_set", version, previous, reason, evidence))
        log.info("challenger model version %s (was %s)", version, previous or "none")

    def clear_challenger(self, *, reason: str = "") -> str | None:
        """Remove the ``CHALLENGER`` pointer; the version it named (None when none was set)."""
        with self._locked():
            previous = self.challenger()
            if previous is not None:
                self._write_challenger(None)
                self._record(_entry("challenger_clear", None, previous, reason))
        if previous is not None:
            log.info("challenger model version %s cleared", previous)
        return previous

    def record_decision(
        self, action: str, version: str | None, *, reason: str = "", evidence: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Append a decision that moves no pointer (e.g. a retrain that kept the champion); the entry."""
        entry = _entry(action, version, self.current(), reason, evidence)
        with self._locked():
            self._record(entry)
        return entry

    def rollback(self, *, reason: str = "") -> str:
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
            self._record(_entry("rollback", previous, current, reason))
        log.info("rolled back to model version %s", previous)
        return previous


def _who() -> str:
    """The operating-system user running this process (``unknown`` when it has no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _entry(
    action: str,
    version: str | None,
    previous: str | None,
    reason: str,
    evidence: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "action": action,
        "version": version,
        "previous": previous,
        "who": _who(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": reason,
    }
    if evidence is not None:
        entry["evidence"] = dict(evidence)
    return entry
