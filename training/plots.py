"""Pictures for the training report (matplotlib, headless Agg backend).

Curves come from scikit-learn's display classes (``RocCurveDisplay``,
``PrecisionRecallDisplay``, ``CalibrationDisplay``, ``ConfusionMatrixDisplay``);
cumulative gains and lift have no sklearn display and are drawn from
:mod:`training.retention`. Each function writes one PNG into ``folder`` and
returns its file name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
    brier_score_loss,
)

from training import retention

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from training.evaluate import CandidateResult

#: (label, held-out probabilities) of one model to draw.
Scores = tuple[str, np.ndarray]


def _figure(width: float = 6.0, height: float = 4.5) -> Figure:
    # matplotlib is heavy and only needed when pictures are drawn.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Figure, folder: Path, name: str) -> str:
    fig.savefig(folder / name)
    return name


def roc_curves(results: Sequence[CandidateResult], y_test: np.ndarray, folder: Path) -> str:
    fig = _figure()
    ax = fig.subplots()
    for i, result in enumerate(results):
        RocCurveDisplay.from_predictions(
            y_test, result.test_probability, name=result.name, ax=ax, plot_chance_level=i == len(results) - 1
        )
    ax.set(title="ROC curves, held-out split")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, folder, "roc_curves.png")


def confusion_matrices(results: Sequence[CandidateResult], y_test: np.ndarray, folder: Path) -> str:
    fig = _figure(3.2 * len(results), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(results)))
    for ax, result in zip(axes, results, strict=True):
        predicted = (result.test_probability >= result.threshold).astype(int)
        ConfusionMatrixDisplay.from_predictions(
            y_test,
            predicted,
            labels=[0, 1],
            display_labels=["stay", "churn"],
            cmap="Blues",
            colorbar=False,
            ax=ax,
        )
        title = f"{result.name}\n(threshold {result.threshold:.2f})"
        ax.set(xlabel="predicted", ylabel="actual", title=title)
        ax.title.set_fontsize(9)
    return _save(fig, folder, "confusion_matrices.png")


def precision_recall(y_test: np.ndarray, scores: Scores, threshold: float, folder: Path) -> str:
    """The served model's precision-recall curve, with the operating point of its threshold."""
    label, probability = scores
    fig = _figure()
    ax = fig.subplots()
    PrecisionRecallDisplay.from_predictions(y_test, probability, name=label, ax=ax, plot_chance_level=True)
    point = retention.per_thousand(y_test, probability, threshold)
    ax.plot(
        [point.recall],
        [point.precision],
        marker="o",
        color="#dd8452",
        label=f"threshold {threshold:.2f}: precision {point.precision:.0%}, recall {point.recall:.0%}",
    )
    ax.set(title="Precision and recall, held-out split")
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, folder, "precision_recall.png")


def gains_and_lift(y_test: np.ndarray, scores: Scores, folder: Path) -> str:
    """Cumulative gains curve and lift by decile of the served model."""
    label, probability = scores
    fig = _figure(10, 4.2)
    left, right = fig.subplots(1, 2)
    contacted, caught = retention.cumulative_gains(y_test, probability)
    left.plot(contacted, caught, label=label)
    left.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="random order")
    rate = float(np.mean(y_test))
    left.plot([0, rate, 1], [0, 1, 1], linestyle=":", color="black", linewidth=1, label="perfect order")
    left.set(
        xlabel="Share of customers contacted (highest scores first)",
        ylabel="Share of churners reached",
        title="Cumulative gains, held-out split",
    )
    left.legend(loc="lower right", fontsize=8)
    lift = retention.decile_lift(y_test, probability)
    deciles = np.arange(1, 11)
    right.bar(deciles, lift, color="#4c72b0")
    right.axhline(1.0, linestyle="--", color="grey", linewidth=1)
    for decile, value in zip(deciles, lift, strict=True):
        right.text(decile, value, f"{value:.1f}", ha="center", va="bottom", fontsize=8)
    right.set(
        xticks=deciles,
        xlabel="Decile of customers by score (1 = highest)",
        ylabel="Churn rate / overall churn rate",
        title=f"Lift by decile (top decile {lift[0]:.2f}x)",
    )
    return _save(fig, folder, "gains_lift.png")


def reliability(y_test: np.ndarray, models: Sequence[Scores], folder: Path) -> str:
    """Reliability diagram (observed churn rate against predicted probability) with Brier scores."""
    fig = _figure()
    ax = fig.subplots()
    for i, (label, probability) in enumerate(models):
        brier = brier_score_loss(y_test, probability)
        CalibrationDisplay.from_predictions(
            y_test,
            probability,
            n_bins=10,
            strategy="quantile",
            name=f"{label} (Brier {brier:.4f})",
            ax=ax,
            ref_line=i == 0,
            marker="o",
            markersize=3,
        )
    ax.set(
        xlabel="Mean predicted probability",
        ylabel="Observed churn rate",
        title="Reliability, held-out split (10 equal-count bins)",
    )
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, folder, "calibration.png")


def churn_distribution(frame: pd.DataFrame, folder: Path) -> str:
    fig = _figure(10, 3.6)
    left, middle, right = fig.subplots(1, 3)
    counts = frame["churn"].value_counts().reindex([0, 1], fill_value=0)
    left.bar(["stay", "churn"], counts.to_numpy(), color=["#4c72b0", "#dd8452"])
    left.set(title=f"Churn in the data ({frame['churn'].mean():.1%})", ylabel="customers")
    by_contract = frame.groupby("contract")["churn"].mean()
    middle.bar(by_contract.index.astype(str), by_contract.to_numpy(), color="#dd8452")
    middle.set(title="Churn rate by contract", ylabel="churn rate")
    middle.tick_params(axis="x", labelsize=8)
    bins = np.arange(0, 78, 6)
    right.hist(
        [frame.loc[frame["churn"] == 0, "tenure"], frame.loc[frame["churn"] == 1, "tenure"]],
        bins=bins,
        label=["stay", "churn"],
        stacked=True,
    )
    right.set(title="Tenure (months)", xlabel="tenure", ylabel="customers")
    right.legend(fontsize=8)
    return _save(fig, folder, "churn_distribution.png")


def feature_importance(
    names: list[str], means: np.ndarray, stds: np.ndarray, model_name: str, folder: Path
) -> str:
    order = np.argsort(means)
    fig = _figure(7, 5.5)
    ax = fig.subplots()
    ax.barh(np.asarray(names)[order], means[order], xerr=stds[order], color="#4c72b0")
    ax.set(
        xlabel="Drop in ROC AUC when the feature is shuffled",
        title=f"Permutation importance: {model_name}",
    )
    ax.tick_params(axis="y", labelsize=8)
    return _save(fig, folder, "feature_importance.png")
