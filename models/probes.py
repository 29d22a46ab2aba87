"""Probe records: varied customers on which a compiled fast path is checked against sklearn.

Drawn from the feature contract alone (every vocabulary level, tenures and
charges over their usual ranges, a blank ``total_charges`` now and then), with
numpy and a fixed seed, so the same probes are used on every load.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schemas.features import CATEGORIES


def probe_records(n: int = 64, seed: int = 20240917) -> list[dict[str, Any]]:
    """``n`` customers as snake_case dicts; every seventh has no ``total_charges``."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 73, n)
    monthly = np.round(rng.uniform(18.25, 118.75, n), 2)
    total = np.round(monthly * np.maximum(tenure, 1) * rng.uniform(0.9, 1.1, n), 2)
    senior = rng.integers(0, 2, n)
    levels = {name: rng.integers(0, len(values), n) for name, values in CATEGORIES.items()}
    records: list[dict[str, Any]] = []
    for i in range(n):
        record: dict[str, Any] = {name: CATEGORIES[name][int(levels[name][i])] for name in CATEGORIES}
        record.update(
            customer_id=f"probe-{i}",
            senior_citizen=int(senior[i]),
            tenure=int(tenure[i]),
            monthly_charges=float(monthly[i]),
            total_charges=None if i % 7 == 0 else float(total[i]),
        )
        records.append(record)
    return records
