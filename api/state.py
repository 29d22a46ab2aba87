"""What a running API process holds: settings, the live model (and challenger), metrics, start time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from config.settings import Settings
from models.live import LiveModel, ReloadResult
from monitoring.metrics import ApiMetrics


@dataclass
class ServiceState:
    settings: Settings
    live: LiveModel
    metrics: ApiMetrics
    package_version: str = "unknown"
    started: float = field(default_factory=time.monotonic)
    endpoints: list[str] = field(default_factory=list)
    auth_required: bool = False
    #: The shadow challenger (``CHURN_SHADOW_SCORING``): scored for its metrics, never answered.
    challenger: LiveModel | None = None

    def reload(self, force: bool = False) -> ReloadResult:
        """Check the registry now (blocking: call it from a thread); the live model counts refusals.

        The challenger pointer is followed too; the result is the champion's.
        """
        result = self.live.refresh(force=force)
        challenger = self.challenger
        if challenger is not None:
            before = challenger.version
            challenger.refresh(force=force)
            if challenger.version != before:
                predictor = challenger.predictor
                model = predictor.info.selected_model if predictor is not None else ""
                self.metrics.shadow.challenger_changed(challenger.version, model)
        return result
