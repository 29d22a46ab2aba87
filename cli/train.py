"""``churn train``: train the candidates, select by held-out ROC AUC, write a version."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli.console import console, fail


def command(
    ctx: typer.Context,
    data: Path | None = typer.Option(None, "--data", help="Telco-format CSV; synthetic data when omitted."),
    rows: int = typer.Option(7043, "--rows", min=100, help="Rows of synthetic data."),
    seed: int = typer.Option(42, "--seed", help="Seed of the synthetic data."),
    split_seed: int = typer.Option(42, "--split-seed", help="Seed of the stratified 80/20 split and CV."),
    store: Path | None = typer.Option(None, "--store", help="Model store (env CHURN_MODEL_STORE)."),
    promote: bool = typer.Option(True, "--promote/--no-promote", help="Make the new version current."),
    candidates: list[str] | None = typer.Option(None, "--candidate", help="Train only these (repeatable)."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the report pictures."),
) -> None:
    """Train Logistic Regression, Random Forest and better candidates; keep the best."""
    # sklearn, pandas and matplotlib load when the command runs, not for `churn --help`.
    from training.data import DataError
    from training.run import TrainConfig, train

    settings = ctx.obj.with_overrides(model_store=store)
    config = TrainConfig(
        data=data,
        rows=rows,
        seed=seed,
        split_seed=split_seed,
        store=settings.model_store,
        promote=promote,
        candidates=candidates or None,
        plots=plots,
    )
    if data is not None and not data.is_file():
        fail(f"no such file: {data}")
    try:
        with console.status("training...") as status:
            outcome = train(config, on_step=lambda step: status.update(f"[bold]{step}"))
    except (DataError, ValueError) as exc:
        fail(str(exc))
        return
    manifest = outcome.manifest
    table = Table(title=f"Candidates (held-out split, {manifest['split']['test_rows']} rows)")
    for column in ("model", "ROC AUC", "CV ROC AUC", "accuracy", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, m in sorted(manifest["metrics"].items(), key=lambda item: -item[1]["roc_auc"]):
        label = f"[bold green]{name} *[/]" if name == outcome.selected_model else name
        table.add_row(
            label,
            f"{m['roc_auc']:.4f}",
            f"{m['cv_roc_auc_mean']:.4f}±{m['cv_roc_auc_std']:.3f}",
            f"{m['accuracy']:.4f}",
            f"{m['precision']:.4f}",
            f"{m['recall']:.4f}",
            f"{m['f1']:.4f}",
        )
    console.print(table)
    state = "promoted" if outcome.promoted else "not promoted"
    console.print(
        f"version [bold]{outcome.version}[/] ({outcome.selected_model}, threshold "
        f"{manifest['threshold']:.3f}) {state}; {outcome.seconds:.1f} s\n"
        f"report: {outcome.path / 'report.md'}"
    )
