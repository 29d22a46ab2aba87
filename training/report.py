"""The Markdown training report, written for the retention team as much as for engineers.

It opens with what the model means in people (of 1,000 scored customers, who is
flagged and who is caught), then the candidates with their serving cost, the
selection rule and why the winner won, the calibration check, reason codes, and
the pictures. Everything comes from the manifest, so the report and the
manifest cannot disagree.
"""

from __future__ import annotations

from typing import Any

from training.selection import TIE_RATIO

PICTURE_TITLES = {
    "precision_recall": "Precision and recall",
    "gains_lift": "Cumulative gains and lift",
    "calibration": "Reliability (calibration) and Brier score",
    "roc_curves": "ROC curves",
    "confusion_matrices": "Confusion matrices",
    "feature_importance": "Feature importance (shipped model)",
    "churn_distribution": "The data",
}


def headline(manifest: dict[str, Any]) -> list[str]:
    """The few sentences ``churn train`` prints and the report opens with."""
    held = manifest["retention"]
    people = held["per_1000"]
    calibration = manifest.get("calibration", {})
    shipped = manifest["selected_model"]
    if calibration.get("kept"):
        shipped += f" with {calibration['kept']} calibration"
    reasons = manifest.get("reasons", {})
    lines = [
        f"Ships {shipped}, threshold {manifest['threshold']:.3f}: {manifest['selection']}.",
        f"Held out ({held['held_out_rows']:,} customers): ROC AUC {held['roc_auc']:.4f}, "
        f"Brier score {held['brier']:.4f}, top-decile lift {held['top_decile_lift']:.2f}x.",
        f"Of 1,000 scored customers it flags {people['flagged']:.0f}; {people['caught']:.0f} of them "
        f"would churn (precision {people['precision']:.0%}), which catches {people['caught']:.0f} of the "
        f"{people['churners']:.0f} who churn (recall {people['recall']:.0%}); "
        f"{people['missed']:.0f} churners go unflagged.",
    ]
    if reasons.get("available"):
        lines.append("Reason codes: available (exact log-odds contributions per feature).")
    elif reasons:
        lines.append(f"Reason codes: none — {reasons.get('unavailable_because')}.")
    return lines


def render(manifest: dict[str, Any], pictures: dict[str, str]) -> str:
    """``report.md`` for one version, from its manifest and picture file names."""
    data = manifest["training_data"]
    split = manifest["split"]
    lines = [
        f"# Churn model {manifest['version']}",
        "",
        f"Created {manifest['created_at']}. Data: {data['rows']} rows ({data['source']}), churn rate "
        f"{data['churn_rate']:.1%}, fingerprint `{data['fingerprint'][:16]}`. Split: stratified "
        f"{1 - split['test_size']:.0%}/{split['test_size']:.0%}, seed {split['seed']} "
        f"({split['train_rows']} train / {split['test_rows']} held-out rows).",
        "",
        "## In short",
        "",
        *[f"- {line}" for line in headline(manifest)],
        "",
        *_people(manifest),
        *_candidates(manifest),
        *_selection(manifest),
        *_calibration(manifest),
        *_reasons(manifest),
    ]
    for key, title in PICTURE_TITLES.items():
        if key in pictures:
            lines += [f"## {title}", "", f"![{title}]({pictures[key]})", ""]
    return "\n".join(lines)


def _people(manifest: dict[str, Any]) -> list[str]:
    people = manifest["retention"]["per_1000"]
    lift = manifest["retention"]["decile_lift"]
    return [
        f"## What the threshold ({manifest['threshold']:.3f}) means, per 1,000 customers",
        "",
        "| | churn | stay | total |",
        "|---|---|---|---|",
        f"| flagged | {people['caught']:.0f} (caught) | {people['false_alarms']:.0f} (false alarms) "
        f"| {people['flagged']:.0f} |",
        f"| not flagged | {people['missed']:.0f} (missed) | "
        f"{1000 - people['flagged'] - people['missed']:.0f} | {1000 - people['flagged']:.0f} |",
        f"| total | {people['churners']:.0f} | {1000 - people['churners']:.0f} | 1000 |",
        "",
        f"Precision {people['precision']:.1%} (flagged customers who churn), recall "
        f"{people['recall']:.1%} (churners flagged). Contacting customers in score order, the top "
        f"tenth churns {lift[0]:.2f}x as often as customers overall, the second tenth {lift[1]:.2f}x, "
        f"the bottom tenth {lift[-1]:.2f}x. Counts are held-out figures scaled to 1,000.",
        "",
    ]


def _candidates(manifest: dict[str, Any]) -> list[str]:
    metrics: dict[str, dict[str, float]] = manifest["metrics"]
    costs: dict[str, dict[str, Any]] = manifest.get("serving_cost", {})
    folds = manifest["split"]["cv_folds"]
    selected = manifest["selected_model"]
    lines = [
        "## Candidates (held-out split)",
        "",
        f"| model | ROC AUC | {folds}-fold CV ROC AUC (± std, SE) | Brier | precision | recall | F1 "
        "| threshold | single p50 µs | single p99 µs | batch µs/row |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in sorted(metrics.items(), key=lambda item: -item[1]["roc_auc"]):
        mark = " (selected)" if name == selected else ""
        cost = costs.get(name)
        cost_cells = (
            f"{cost['single_p50_us']:.1f} | {cost['single_p99_us']:.1f} | {cost['batch_us_per_row']:.2f}"
            if cost
            else "– | – | –"
        )
        lines.append(
            f"| {name}{mark} | {m['roc_auc']:.4f} | {m['cv_roc_auc_mean']:.4f} ± {m['cv_roc_auc_std']:.4f}, "
            f"{m.get('cv_roc_auc_se', 0.0):.4f} | {m.get('brier', float('nan')):.4f} | {m['precision']:.4f} "
            f"| {m['recall']:.4f} | {m['f1']:.4f} | {m['threshold']:.3f} | {cost_cells} |"
        )
    sample = next(iter(costs.values()), None)
    lines += [
        "",
        "Each candidate's threshold maximises F1 on its out-of-fold predictions on the training "
        "split; the held-out split is used only for the figures above.",
    ]
    if sample:
        lines.append(
            "Serving cost is measured through the scoring core (`Predictor`) on held-out customers, "
            "candidates interleaved: single = one `predict_one` call (median and 99th percentile, "
            f"up to {sample['single_calls']} calls), batch = `predict_columns` on "
            f"{sample['batch_size']} customers, per row. Absolute figures depend on the machine and "
            "how busy it was; compare the candidates with each other."
        )
    return [*lines, ""]


def _selection(manifest: dict[str, Any]) -> list[str]:
    details = manifest.get("selection_details")
    if not details:
        return []
    if details["rule"] == "best-auc":
        rule = "the highest held-out ROC AUC, whatever it costs to serve (`--select best-auc`)."
    else:
        rule = (
            "among the candidates whose held-out ROC AUC is within the tolerance of the best, the "
            "cheapest to serve: the lowest single-record median latency; latencies within "
            f"{TIE_RATIO:.0%} of the lowest tie, and a tie goes to the lowest batch cost per row, "
            "then to the higher ROC AUC."
        )
    return [
        "## Selection",
        "",
        f"Rule: {rule}",
        "",
        f"- best held-out ROC AUC: {details['best']} ({details['best_roc_auc']:.4f})",
        f"- tolerance: {details['tolerance']:.4f} ({details['tolerance_source']})",
        f"- within the tolerance: {', '.join(details['eligible'])}",
        f"- selected: **{details['winner']}**, {details['margin']:.4f} ROC AUC below the best",
        "",
        f"Why: {details['reason']}.",
        "",
    ]


def _calibration(manifest: dict[str, Any]) -> list[str]:
    calibration = manifest.get("calibration", {})
    if not calibration.get("checked"):
        return []
    before = calibration["before"]
    lines = [
        "## Calibration",
        "",
        f"Calibrated variants of {manifest['selected_model']}, each fitted on its out-of-fold "
        "scores (cross-validated) and measured on the held-out split:",
        "",
        "| variant | ROC AUC | Brier | threshold | reason codes |",
        "|---|---|---|---|---|",
        f"| uncalibrated | {before['roc_auc']:.4f} | {before['brier']:.4f} | {before['threshold']:.3f} "
        f"| {'yes' if before['explainable'] else 'no'} |",
    ]
    for method, v in calibration["variants"].items():
        kept = " (kept)" if calibration["kept"] == method else ""
        lines.append(
            f"| {method}{kept} | {v['roc_auc']:.4f} | {v['brier']:.4f} | {v['threshold']:.3f} "
            f"| {'yes' if v['explainable'] else 'no'} |"
        )
    lines += ["", f"Rule: {calibration['rule']}. Outcome: {calibration['reason']}.", ""]
    return lines


def _reasons(manifest: dict[str, Any]) -> list[str]:
    reasons = manifest.get("reasons")
    if not reasons:
        return []
    if reasons["available"]:
        text = (
            "Each prediction can carry its reasons: the features that push this customer's churn "
            "probability up (or down) the most, each with the customer's value and its signed "
            "contribution to the log-odds. The contributions of all features plus a base value add up "
            "exactly to the model's log-odds (`churn predict --explain`)."
        )
    else:
        text = f"This model serves no reason codes: {reasons['unavailable_because']}."
    return ["## Reason codes", "", text, ""]
