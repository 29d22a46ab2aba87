"""What a running API process holds: settings, the live model, metrics, start time."""

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

    def reload(self, force: bool = False) -> ReloadResult:
        """Check the registry now (blocking: call it from a thread); the live model counts refusals."""
        return self.live.refresh(force=force)
