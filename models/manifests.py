"""Figures read from a version's manifest (``manifest.json``, written by ``churn train``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def served_roc_auc(manifest: Mapping[str, Any]) -> float | None:
    """Held-out ROC AUC of the model the version serves: the selected candidate's, or, when a
    calibration was kept, the calibrated model's; None when the manifest does not say."""
    calibration = manifest.get("calibration") or {}
    if isinstance(calibration, Mapping) and calibration.get("kept"):
        after = calibration.get("after") or {}
        value = after.get("roc_auc") if isinstance(after, Mapping) else None
    else:
        selected = manifest.get("selected_model")
        metrics = manifest.get("metrics") or {}
        chosen = metrics.get(selected) if isinstance(metrics, Mapping) else None
        value = chosen.get("roc_auc") if isinstance(chosen, Mapping) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
