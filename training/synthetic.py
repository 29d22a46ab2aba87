"""A deterministic generator of telco-like customers, for demos, tests and first runs.

The marginals follow the public telco customer-churn data: about 26 % churn,
month-to-month contracts churn most, fibre and electronic-check customers churn
more, churn falls with tenure. The signal is strong enough for a good model to
reach a ROC AUC of roughly 0.80-0.90, with irreducible noise so that it never
reaches 1.0. The output is the same typed frame :func:`training.data.clean` returns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from schemas.features import CATEGORIES, FEATURES, TARGET

TARGET_CHURN_RATE = 0.265
_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
_ADDONS = ("online_security", "online_backup", "device_protection", "tech_support")
_STREAMING = ("streaming_tv", "streaming_movies")


def generate(n: int, seed: int = 42) -> pd.DataFrame:
    """``n`` synthetic customers with a ``churn`` label; the same seed gives the same frame."""
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(index=pd.RangeIndex(n))
    df["customer_id"] = _customer_ids(rng, n)
    df["gender"] = rng.choice(CATEGORIES["gender"], n)
    senior = rng.random(n) < 0.16
    df["senior_citizen"] = senior.astype(np.int64)
    partner = rng.random(n) < 0.48
    df["partner"] = _yes_no(partner)
    df["dependents"] = _yes_no(rng.random(n) < np.where(partner, 0.52, 0.11))

    contract_p = np.where(senior[:, None], [0.70, 0.17, 0.13], [0.52, 0.22, 0.26])
    contract = _choice_rows(rng, CATEGORIES["contract"], contract_p)
    df["contract"] = contract
    mean_tenure = np.select([contract == "Month-to-month", contract == "One year"], [14.0, 40.0], 55.0)
    tenure = np.where(
        contract == "Month-to-month",
        rng.exponential(mean_tenure),
        rng.normal(mean_tenure, 16.0),
    )
    tenure = np.clip(np.round(tenure), 1, 72).astype(np.int64)
    tenure[rng.random(n) < 0.0015] = 0  # brand-new customers: blank TotalCharges
    df["tenure"] = tenure

    phone = rng.random(n) < 0.90
    df["phone_service"] = _yes_no(phone)
    df["multiple_lines"] = np.where(phone, _yes_no(rng.random(n) < 0.47), "No phone service")
    internet = rng.choice(CATEGORIES["internet_service"], n, p=[0.34, 0.44, 0.22])
    df["internet_service"] = internet
    has_net = internet != "No"
    long_contract = contract != "Month-to-month"
    addon_count = np.zeros(n)
    for name in _ADDONS:
        p = np.where(long_contract, 0.55, 0.28) + np.where(internet == "DSL", 0.08, 0.0)
        yes = rng.random(n) < p
        addon_count += yes & has_net
        df[name] = np.where(has_net, _yes_no(yes), "No internet service")
    stream_count = np.zeros(n)
    for name in _STREAMING:
        yes = rng.random(n) < np.where(internet == "Fiber optic", 0.55, 0.33)
        stream_count += yes & has_net
        df[name] = np.where(has_net, _yes_no(yes), "No internet service")

    df["paperless_billing"] = _yes_no(rng.random(n) < np.where(has_net, 0.66, 0.30))
    pay_p = np.where(
        (contract == "Month-to-month")[:, None],
        [0.48, 0.22, 0.15, 0.15],
        [0.14, 0.24, 0.31, 0.31],
    )
    payment = _choice_rows(rng, CATEGORIES["payment_method"], pay_p)
    df["payment_method"] = payment

    monthly = (
        np.where(phone, 20.0, 0.0)
        + np.where(df["multiple_lines"] == "Yes", 5.0, 0.0)
        + np.select([internet == "DSL", internet == "Fiber optic"], [25.0, 50.0], 0.0)
        + 5.0 * addon_count
        + 10.0 * stream_count
        + rng.normal(0.0, 2.0, n)
    )
    monthly = np.round(np.clip(monthly, 18.25, 118.75), 2)
    df["monthly_charges"] = monthly
    total = np.round(monthly * tenure * rng.uniform(0.93, 1.07, n), 2)
    df["total_charges"] = np.where(tenure == 0, np.nan, np.maximum(total, monthly))

    logit = (
        np.select([contract == "Month-to-month", contract == "One year"], [1.1, -0.5], -1.6)
        - 0.75 * np.log1p(tenure)
        + 0.025 * np.maximum(tenure - 48, 0)
        + np.where(internet == "Fiber optic", 0.75, 0.0)
        + np.where(internet == "No", -0.6, 0.0)
        + np.where(payment == "Electronic check", 0.55, 0.0)
        + 0.30 * senior
        + 0.35 * ((df["online_security"] == "No") & has_net)
        + 0.30 * ((df["tech_support"] == "No") & has_net)
        + 0.25 * (df["paperless_billing"] == "Yes")
        - 0.20 * (df["dependents"] == "Yes")
        + 0.012 * (monthly - 65.0)
        + 0.15 * stream_count
        + rng.normal(0.0, 0.55, n)  # customers the data cannot explain
    ).to_numpy(dtype=np.float64)
    logit += _intercept_for_rate(logit, TARGET_CHURN_RATE)
    df[TARGET] = (rng.random(n) < _sigmoid(logit)).astype(np.int64)
    return df[["customer_id", *FEATURES, TARGET]]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _intercept_for_rate(logit: np.ndarray, rate: float) -> float:
    """Shift so that the expected churn rate is ``rate`` (bisection on a monotone function)."""
    low, high = -20.0, 20.0
    for _ in range(60):
        mid = (low + high) / 2
        if _sigmoid(logit + mid).mean() < rate:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def _yes_no(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, "Yes", "No")


def _choice_rows(rng: np.random.Generator, levels: tuple[str, ...], p: np.ndarray) -> np.ndarray:
    """Draw one level per row with row-specific probabilities."""
    cumulative = np.cumsum(p, axis=1)
    draws = rng.random(len(p))[:, None]
    index = np.minimum((draws > cumulative).sum(axis=1), len(levels) - 1)
    chosen: np.ndarray = np.asarray(levels, dtype=object)[index]
    return chosen


def _customer_ids(rng: np.random.Generator, n: int) -> list[str]:
    digits = rng.integers(0, 10_000, n)
    letters = _ALPHABET[rng.integers(0, 26, (n, 5))]
    return [f"{d:04d}-{''.join(row)}-{i}" for i, (d, row) in enumerate(zip(digits, letters, strict=True))]
