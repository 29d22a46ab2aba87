"""Which candidate to ship: ROC AUC first, then the cost of serving it.

Two rules:

* ``cheapest`` (the default): find the best held-out ROC AUC; every candidate
  within ``tolerance`` of it is eligible; ship the cheapest eligible one. The
  tolerance defaults to one standard error of the best candidate's
  cross-validated ROC AUC (sample standard deviation of the fold scores / sqrt of
  the number of folds): a smaller difference is noise the data cannot resolve.
* ``best-auc``: ship the highest held-out ROC AUC, whatever it costs.

"Cheapest" is the lowest single-record median latency (``predict_one`` p50, the
API's per-request cost). Latencies within ``tie_ratio`` (10 %) of the lowest
count as a tie — closer than a shared machine measures reliably — and the tie
goes to the lowest batch cost per row (the stream's cost), then to the higher
ROC AUC, then to the name. Ties in ROC AUC itself (``best-auc``, or finding the
best) go to the cheaper candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from training.evaluate import standard_error
from training.serving_cost import ServingCost

Rule = Literal["cheapest", "best-auc"]
RULES: tuple[Rule, ...] = ("cheapest", "best-auc")
TIE_RATIO = 0.10


@dataclass(frozen=True)
class Figures:
    """What selection looks at for one candidate."""

    name: str
    roc_auc: float
    cv_roc_auc: Sequence[float]
    cost: ServingCost


@dataclass(frozen=True)
class Selection:
    winner: str
    rule: Rule
    best: str
    best_roc_auc: float
    tolerance: float
    tolerance_source: str
    margin: float  # best_roc_auc - the winner's ROC AUC
    eligible: list[str]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def select(
    candidates: Sequence[Figures],
    *,
    rule: Rule = "cheapest",
    tolerance: float | None = None,
    tie_ratio: float = TIE_RATIO,
) -> Selection:
    """Apply ``rule``; ``tolerance`` overrides the one-standard-error default."""
    if not candidates:
        raise ValueError("no candidates to select from")
    if rule not in RULES:
        raise ValueError(f"unknown selection rule {rule!r}; known: {list(RULES)}")
    if tolerance is not None and tolerance < 0:
        raise ValueError("the ROC AUC tolerance cannot be negative")
    best = max(candidates, key=lambda c: (c.roc_auc, -c.cost.single_p50_us, -c.cost.batch_us_per_row))
    if tolerance is None:
        tolerance = standard_error(best.cv_roc_auc)
        source = f"one standard error of {best.name}'s {len(best.cv_roc_auc)}-fold CV ROC AUC"
    else:
        source = "set with --auc-tolerance"
    if rule == "best-auc":
        return Selection(
            winner=best.name,
            rule=rule,
            best=best.name,
            best_roc_auc=best.roc_auc,
            tolerance=tolerance,
            tolerance_source=source,
            margin=0.0,
            eligible=[best.name],
            reason=f"{best.name} has the highest held-out ROC AUC ({best.roc_auc:.4f}); "
            "serving cost not considered (--select best-auc)",
        )
    eligible = [c for c in candidates if c.roc_auc >= best.roc_auc - tolerance - 1e-12]
    winner = cheapest(eligible, tie_ratio=tie_ratio)
    reason = (
        _why(winner, best, eligible, tolerance, source)
        if len(candidates) > 1
        else f"{winner.name} is the only candidate (held-out ROC AUC {winner.roc_auc:.4f})"
    )
    return Selection(
        winner=winner.name,
        rule=rule,
        best=best.name,
        best_roc_auc=best.roc_auc,
        tolerance=tolerance,
        tolerance_source=source,
        margin=best.roc_auc - winner.roc_auc,
        eligible=[c.name for c in sorted(eligible, key=lambda c: -c.roc_auc)],
        reason=reason,
    )


def cheapest(candidates: Sequence[Figures], *, tie_ratio: float = TIE_RATIO) -> Figures:
    """Lowest single-record p50; within ``tie_ratio`` of it, lowest batch cost, then higher ROC AUC."""
    fastest = min(c.cost.single_p50_us for c in candidates)
    tied = [c for c in candidates if c.cost.single_p50_us <= fastest * (1.0 + tie_ratio)]
    return min(tied, key=lambda c: (c.cost.batch_us_per_row, -c.roc_auc, c.name))


def _why(winner: Figures, best: Figures, eligible: Sequence[Figures], tolerance: float, source: str) -> str:
    cost = winner.cost
    within = f"within {tolerance:.4f} ROC AUC ({source}) of the best, {best.name} ({best.roc_auc:.4f})"
    if len(eligible) == 1:
        return (
            f"{winner.name} has the highest held-out ROC AUC ({winner.roc_auc:.4f}); "
            f"no other candidate is {within}"
        )
    head = (
        f"{winner.name} is the cheapest to serve (single-record p50 {cost.single_p50_us:.1f} µs, "
        f"{cost.batch_us_per_row:.2f} µs per row in batches of {cost.batch_size}) of the "
        f"{len(eligible)} candidates {within}"
    )
    if winner.name == best.name:
        return head
    ratio = best.cost.single_p50_us / max(cost.single_p50_us, 1e-9)
    return (
        f"{head}; it gives up {best.roc_auc - winner.roc_auc:.4f} of ROC AUC against "
        f"{best.name}, which costs {ratio:.{1 if ratio < 10 else 0}f}x as much per single record "
        f"({best.cost.single_p50_us:.1f} µs)"
    )
