"""Pictures for the training report (matplotlib, headless Agg backend).

Each function writes one PNG into ``folder`` and returns its file name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from training.evaluate import CandidateResult


def _figure(width: float = 6.0, height: float = 4.5) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Figure, folder: Path, name: str) -> str:
    fig.savefig(folder / name)
    return name


def roc_curves(results: list[CandidateResult], y_test: np.ndarray, folder: Path) -> str:
    from sklearn.metrics import roc_curve

    fig = _figure()
    ax = fig.subplots()
    for result in results:
        fpr, tpr, _ = roc_curve(y_test, result.test_probability)
        ax.plot(fpr, tpr, label=f"{result.name} (AUC {result.metrics['roc_auc']:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curves, held-out split")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, folder, "roc_curves.png")


def confusion_matrices(results: list[CandidateResult], y_test: np.ndarray, folder: Path) -> str:
    from sklearn.metrics import confusion_matrix

    fig = _figure(3.2 * len(results), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(results)))
    for ax, result in zip(axes, results, strict=True):
        predicted = (result.test_probability >= result.threshold).astype(int)
        matrix = confusion_matrix(y_test, predicted, labels=[0, 1])
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            colour = "white" if value > matrix.max() / 2 else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=colour)
        ax.set(
            xticks=[0, 1],
            yticks=[0, 1],
            xticklabels=["stay", "churn"],
            yticklabels=["stay", "churn"],
            xlabel="predicted",
            ylabel="actual",
            title=f"{result.name}\n(threshold {result.threshold:.2f})",
        )
        ax.title.set_fontsize(9)
    return _save(fig, folder, "confusion_matrices.png")


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


def calibration(results: list[CandidateResult], y_test: np.ndarray, folder: Path) -> str:
    from sklearn.calibration import calibration_curve

    fig = _figure()
    ax = fig.subplots()
    for result in results:
        observed, predicted = calibration_curve(
            y_test, result.test_probability, n_bins=10, strategy="quantile"
        )
        ax.plot(predicted, observed, marker="o", markersize=3, label=result.name)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(
        xlabel="Mean predicted probability", ylabel="Observed churn rate", title="Calibration, held-out split"
    )
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, folder, "calibration.png")


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
