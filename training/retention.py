"""The figures a retention team plans a campaign with, from held-out outcomes and scores.

* what the threshold means in people: of 1,000 scored customers, how many are
  flagged, how many of them really churn, how many churners are missed;
* cumulative gains: contacting the top x % of customers by score catches what
  share of all churners;
* lift by decile: each tenth of customers (highest scores first) churns how many
  times as often as customers overall. Top-decile lift is the first of them.

sklearn has no function or display for gains or lift, so they are computed here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score


@dataclass(frozen=True)
class PerThousand:
    """Outcomes at the threshold, scaled to 1,000 scored customers."""

    threshold: float
    flagged: float
    caught: float  # flagged and churned
    false_alarms: float  # flagged, stayed
    missed: float  # not flagged, churned
    churners: float
    precision: float  # caught / flagged
    recall: float  # caught / churners

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def per_thousand(y: np.ndarray, probability: np.ndarray, threshold: float) -> PerThousand:
    flagged = probability >= threshold
    churned = y == 1
    scale = 1000.0 / max(len(y), 1)
    caught = float(np.sum(flagged & churned))
    n_flagged = float(np.sum(flagged))
    n_churners = float(np.sum(churned))
    return PerThousand(
        threshold=threshold,
        flagged=n_flagged * scale,
        caught=caught * scale,
        false_alarms=(n_flagged - caught) * scale,
        missed=(n_churners - caught) * scale,
        churners=n_churners * scale,
        precision=caught / n_flagged if n_flagged else 0.0,
        recall=caught / n_churners if n_churners else 0.0,
    )


def _ranked_outcomes(y: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Outcomes sorted by score, highest first (ties keep input order)."""
    order = np.argsort(-probability, kind="stable")
    return np.asarray(y, dtype=np.float64)[order]


def cumulative_gains(y: np.ndarray, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(share of customers contacted, share of churners caught)``, from (0, 0) to (1, 1)."""
    ranked = _ranked_outcomes(y, probability)
    contacted = np.arange(len(ranked) + 1) / max(len(ranked), 1)
    caught = np.concatenate([[0.0], np.cumsum(ranked)]) / max(ranked.sum(), 1.0)
    return contacted, caught


def decile_lift(y: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Churn rate of each tenth of customers (highest scores first) over the overall churn rate."""
    ranked = _ranked_outcomes(y, probability)
    overall = ranked.mean() if len(ranked) else 0.0
    if overall == 0.0:
        return np.zeros(10)
    return np.array([part.mean() / overall if len(part) else 0.0 for part in np.array_split(ranked, 10)])


def top_decile_lift(y: np.ndarray, probability: np.ndarray) -> float:
    return float(decile_lift(y, probability)[0])


def headline(y: np.ndarray, probability: np.ndarray, threshold: float) -> dict[str, Any]:
    """The served model's held-out figures for the manifest, the report and ``churn train``."""
    lift = decile_lift(y, probability)
    return {
        "held_out_rows": len(y),
        "roc_auc": float(roc_auc_score(y, probability)),
        "brier": float(brier_score_loss(y, probability)),
        "top_decile_lift": float(lift[0]),
        "decile_lift": [float(v) for v in lift],
        "per_1000": per_thousand(y, probability, threshold).as_dict(),
    }
