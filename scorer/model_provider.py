"""The predictor in use, and hot reload when another version is promoted."""

from __future__ import annotations

import logging

from models.predictor import Predictor
from models.registry import ModelRegistry, RegistryError
from monitoring.metrics import ScorerMetrics, set_model_info

log = logging.getLogger(__name__)


class ModelProvider:
    """Holds the current :class:`Predictor`; :meth:`refresh` follows the store's promoted version.

    A version that fails to load (bad sha256, unreadable artifact) is refused:
    the previous predictor stays in use and ``churn_model_reload_failures`` counts it.
    """

    def __init__(self, predictor: Predictor, metrics: ScorerMetrics, registry: ModelRegistry | None = None):
        self.registry = registry
        self.metrics = metrics
        self._predictor = predictor
        self._refused: str | None = None
        set_model_info(metrics.model_info, predictor.version, predictor.info.selected_model)

    @classmethod
    def from_store(cls, registry: ModelRegistry, metrics: ScorerMetrics) -> ModelProvider:
        return cls(Predictor.from_registry(registry), metrics, registry)

    @property
    def current(self) -> Predictor:
        return self._predictor

    def refresh(self) -> bool:
        """Load the promoted version if it changed; True when the predictor was replaced."""
        if self.registry is None:
            return False
        promoted = self.registry.current()
        if promoted is None or promoted == self._predictor.version or promoted == self._refused:
            return False
        try:
            predictor = Predictor.from_registry(self.registry, promoted)
        except RegistryError as exc:
            self._refused = promoted
            self.metrics.model_reload_failures.inc()
            log.error("refused model version %s: %s", promoted, exc)
            return False
        previous, self._predictor = self._predictor, predictor
        self._refused = None
        set_model_info(self.metrics.model_info, predictor.version, predictor.info.selected_model)
        log.info("model reloaded from=%s to=%s", previous.version, predictor.version)
        return True
