"""Champion against challenger on the same labelled customers: ROC AUC difference with a paired
bootstrap confidence interval, Brier scores, and the gate a retrained model must pass.

**Paired bootstrap.** The customers are resampled with replacement ``n_boot`` times; both
models' ROC AUC is computed on each resample (the same customers for both, so what the two
models share cancels out) and the interval is the percentile interval of the differences.
It makes no assumption about the scores' distribution; DeLong's test would be exact-er for
AUC alone but gives no interval for the other figures. Each resample's AUC is computed from
bootstrap weights over the distinct scores (``O(n)`` per resample after one sort, ties
counted half), in chunks so that memory stays ``O(chunk · n)``.

**Gate.** A challenger is promoted only if ``roc_auc(challenger) - roc_auc(champion) >=
min_gain`` *and* the interval's lower bound is above 0 *and* at least ``min_pairs``
labelled customers with both classes were compared. Anything else keeps the champion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

#: Resamples per chunk: a chunk holds a few (chunk × n) float arrays.
_CHUNK = 64


class NotComparableError(ValueError):
    """Too few labelled pairs, or only one class among them: no ROC AUC to compare."""


@dataclass(frozen=True)
class Comparison:
    """Model ``a`` (champion) against model ``b`` (challenger) on the same ``n`` labelled customers."""

    n: int
    positives: int
    roc_auc_a: float
    roc_auc_b: float
    #: ``roc_auc_b - roc_auc_a``: positive when the challenger ranks better.
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    n_boot: int
    brier_a: float
    brier_b: float
    method: str = "paired bootstrap, percentile interval"

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    min_gain: float
    min_pairs: int


def compare_paired(
    labels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Compare the probabilities ``a`` and ``b`` of the same customers against ``labels`` (0/1)."""
    y = np.asarray(labels, dtype=np.int64)
    pa, pb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not (y.shape == pa.shape == pb.shape) or y.ndim != 1:
        raise ValueError("labels and both probability arrays must be 1-D and of the same length")
    n, positives = int(y.size), int(y.sum())
    if n < 2 or positives in (0, n):
        raise NotComparableError(f"{n} labelled pairs with {positives} churned: ROC AUC needs both classes")
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie in (0, 1)")
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    prep_a, prep_b = _ranks(pa), _ranks(pb)
    for start in range(0, n_boot, _CHUNK):
        size = min(_CHUNK, n_boot - start)
        rows = rng.integers(0, n, (size, n))
        weights = np.bincount((rows + n * np.arange(size)[:, None]).ravel(), minlength=size * n)
        weights = weights.reshape(size, n).astype(np.float64)
        diffs[start : start + size] = _weighted_auc(prep_b, y, weights) - _weighted_auc(prep_a, y, weights)
    diffs = diffs[np.isfinite(diffs)]  # a resample with one class has no AUC (rare unless n is tiny)
    tail = (1 - confidence) / 2
    low, high = np.quantile(diffs, [tail, 1 - tail]) if diffs.size else (np.nan, np.nan)
    auc_a, auc_b = float(roc_auc_score(y, pa)), float(roc_auc_score(y, pb))
    return Comparison(
        n=n,
        positives=positives,
        roc_auc_a=auc_a,
        roc_auc_b=auc_b,
        difference=auc_b - auc_a,
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        n_boot=int(diffs.size),
        brier_a=float(np.mean((pa - y) ** 2)),
        brier_b=float(np.mean((pb - y) ** 2)),
    )


def gate(comparison: Comparison, *, min_gain: float, min_pairs: int) -> GateDecision:
    """Whether the challenger (``b``) may replace the champion (see the module docstring)."""
    c = comparison
    if c.n < min_pairs:
        reason = f"only {c.n} labelled pairs, fewer than {min_pairs}"
        return GateDecision(False, reason, min_gain, min_pairs)
    if c.difference < min_gain:
        reason = f"ROC AUC gain {c.difference:+.4f} is below the gate {min_gain:+.4f}"
        return GateDecision(False, reason, min_gain, min_pairs)
    if not c.ci_low > 0:
        reason = f"the {c.confidence:.0%} interval of the gain [{c.ci_low:+.4f}, {c.ci_high:+.4f}] includes 0"
        return GateDecision(False, reason, min_gain, min_pairs)
    reason = (
        f"ROC AUC gain {c.difference:+.4f} >= {min_gain:+.4f} and its {c.confidence:.0%} interval "
        f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}] is above 0 on {c.n} pairs"
    )
    return GateDecision(True, reason, min_gain, min_pairs)


def _ranks(scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Each score's index among the distinct scores (ascending), and how many distinct scores."""
    distinct, inverse = np.unique(scores, return_inverse=True)
    return inverse.ravel(), int(distinct.size)


def _weighted_auc(prepared: tuple[np.ndarray, int], y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of bootstrap ``weights`` (rows × n): P(score_pos > score_neg) + ½ P(tie)."""
    inverse, distinct = prepared
    rows = weights.shape[0]
    index = (inverse[None, :] + distinct * np.arange(rows)[:, None]).ravel()
    pos = np.bincount(index, weights=(weights * y).ravel(), minlength=rows * distinct).reshape(rows, distinct)
    neg = np.bincount(index, weights=(weights * (1 - y)).ravel(), minlength=rows * distinct)
    neg = neg.reshape(rows, distinct)
    below = np.cumsum(neg, axis=1) - neg  # negatives with a strictly lower score
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: np.ndarray = (pos * (below + 0.5 * neg)).sum(axis=1) / (total_pos * total_neg)
    return result
