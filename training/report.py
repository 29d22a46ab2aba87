"""The Markdown training report: comparison table, selection and pictures."""

from __future__ import annotations

from typing import Any


def render(manifest: dict[str, Any], pictures: dict[str, str]) -> str:
    """``report.md`` for one version, from its manifest and picture file names."""
    metrics: dict[str, dict[str, float]] = manifest["metrics"]
    data = manifest["training_data"]
    selected = manifest["selected_model"]
    lines = [
        f"# Churn model {manifest['version']}",
        "",
        f"Created {manifest['created_at']}. Selected: **{selected}** "
        f"(highest ROC AUC on the held-out split), threshold {manifest['threshold']:.3f}.",
        "",
        f"Data: {data['rows']} rows ({data['source']}), churn rate {data['churn_rate']:.1%}, "
        f"fingerprint `{data['fingerprint'][:16]}`. Split: stratified "
        f"{1 - manifest['split']['test_size']:.0%}/{manifest['split']['test_size']:.0%}, "
        f"seed {manifest['split']['seed']} ({manifest['split']['train_rows']} train / "
        f"{manifest['split']['test_rows']} test rows).",
        "",
        "## Candidates (held-out split)",
        "",
        "| model | ROC AUC | 5-fold CV ROC AUC | accuracy | precision | recall | F1 | threshold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ranked = sorted(metrics.items(), key=lambda item: -item[1]["roc_auc"])
    for name, m in ranked:
        mark = " (selected)" if name == selected else ""
        lines.append(
            f"| {name}{mark} | {m['roc_auc']:.4f} | {m['cv_roc_auc_mean']:.4f} ± {m['cv_roc_auc_std']:.4f} "
            f"| {m['accuracy']:.4f} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} "
            f"| {m['threshold']:.3f} |"
        )
    lines += [
        "",
        "Each candidate's threshold maximises F1 on its out-of-fold predictions on the training "
        "split; the held-out split is used only for the figures above.",
        "",
    ]
    titles = {
        "roc_curves": "ROC curves",
        "calibration": "Calibration",
        "confusion_matrices": "Confusion matrices",
        "feature_importance": "Feature importance (selected model)",
        "churn_distribution": "The data",
    }
    for key, title in titles.items():
        if key in pictures:
            lines += [f"## {title}", "", f"![{title}]({pictures[key]})", ""]
    return "\n".join(lines)
