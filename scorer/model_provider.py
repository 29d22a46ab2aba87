"""The predictor the stream scorer uses, and hot reload when another version is promoted.

The scorer uses the API's mechanism, :class:`models.live.LiveModel`: the
registry verifies the artifact's sha256, the compiled fast path is checked
against sklearn on probe records, and only then is the reference swapped.
The worker calls :meth:`ModelProvider.refresh` on a timer
(``settings.model_poll_interval_s``) and each batch takes
:attr:`ModelProvider.current` once, so a swap lands between batches and every
prediction carries the version that scored it. A refused version (tampered,
truncated, unloadable) is logged once, counted in
``churn_model_reload_failures_total`` and the old model keeps scoring.
``churn models rollback`` moves the ``CURRENT`` pointer, which the next poll
follows like any promotion.
"""

from __future__ import annotations

import logging

from models.live import LiveModel, ReloadResult
from models.predictor import Predictor
from models.registry import ModelRegistry, RegistryError
from monitoring.metrics import ScorerMetrics, set_model_info

log = logging.getLogger(__name__)


class ModelProvider:
    """Holds the current :class:`Predictor`; :meth:`refresh` follows the store's promoted version."""

    def __init__(self, live: LiveModel, metrics: ScorerMetrics) -> None:
        if live.predictor is None:
            raise RegistryError(f"no usable model in {live.registry.root}")
        self.live = live
        self.metrics = metrics
        self._publish(live.predictor)

    @classmethod
    def from_store(cls, registry: ModelRegistry, metrics: ScorerMetrics) -> ModelProvider:
        """Load the promoted version (verified); raises :class:`RegistryError` if none is usable."""
        live = LiveModel(registry)
        result = live.refresh()
        if live.predictor is None:
            raise RegistryError(result.error or f"no promoted model in {registry.root}")
        return cls(live, metrics)

    @property
    def current(self) -> Predictor:
        predictor = self.live.predictor
        assert predictor is not None  # checked in __init__; LiveModel never drops a loaded model
        return predictor

    def refresh(self) -> bool:
        """Follow the ``CURRENT`` pointer; True when a new version now scores.

        ``LiveModel`` remembers a refused version, so a broken promotion is
        logged and counted once, not on every poll.
        """
        result: ReloadResult = self.live.refresh()
        if result.status == "refused":
            self.metrics.model_reload_failures.inc()
            return False
        if result.status == "loaded":
            self._publish(self.current)
            log.info("scorer now uses model %s (was %s)", result.serving, result.previous)
            return True
        return False

    def _publish(self, predictor: Predictor) -> None:
        set_model_info(self.metrics.model_info, predictor.version, predictor.info.selected_model)
