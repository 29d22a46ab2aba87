"""``churn train``: train the candidates, select by ROC AUC and serving cost, write a version."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from cli.console import console, fail, overridden
from cli.tracking_options import MLFLOW_EXPERIMENT, MLFLOW_URI, tracking_config


class SelectRule(StrEnum):
    cheapest = "cheapest"
    best_auc = "best-auc"


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
    select: SelectRule = typer.Option(
        SelectRule.cheapest,
        "--select",
        help="cheapest: the cheapest to serve among those within the ROC AUC tolerance of the best; "
        "best-auc: the highest held-out ROC AUC, whatever it costs.",
    ),
    auc_tolerance: float | None = typer.Option(
        None,
        "--auc-tolerance",
        min=0.0,
        help="ROC AUC tolerance of --select cheapest [default: one standard error of the best "
        "candidate's CV ROC AUC].",
    ),
    calibrate: bool = typer.Option(
        True, "--calibrate/--no-calibrate", help="Check sigmoid/isotonic calibration of the selected model."
    ),
    mlflow_uri: str | None = MLFLOW_URI,
    mlflow_experiment: str | None = MLFLOW_EXPERIMENT,
) -> None:
    """Train Logistic Regression, Random Forest and better candidates; ship the best value."""
    # sklearn, pandas and matplotlib load when the command runs, not for `churn --help`.
    from training.data import DataError
    from training.report import headline
    from training.run import TrainConfig, train
    from training.tracking import TrackingError

    settings = overridden(
        ctx.obj, model_store=store, mlflow_tracking_uri=mlflow_uri, mlflow_experiment=mlflow_experiment
    )
    config = TrainConfig(
        data=data,
        rows=rows,
        seed=seed,
        split_seed=split_seed,
        store=settings.model_store,
        promote=promote,
        candidates=candidates or None,
        plots=plots,
        select="best-auc" if select is SelectRule.best_auc else "cheapest",
        auc_tolerance=auc_tolerance,
        calibrate=calibrate,
        signing_key=settings.model_signing_key.get_secret_value().encode()
        if settings.model_signing_key is not None
        else None,
        tracking=tracking_config(settings),
    )
    if data is not None and not data.is_file():
        fail(f"no such file: {data}")
    try:
        with console.status("training...") as status:
            outcome = train(config, on_step=lambda step: status.update(f"[bold]{step}"))
    except (DataError, ValueError, TrackingError) as exc:
        fail(str(exc))
        return
    manifest = outcome.manifest
    table = Table(title=f"Candidates (held-out split, {manifest['split']['test_rows']} rows)")
    table.add_column("model", no_wrap=True)
    for column in ("AUC", "CV AUC", "p50 µs", "p99 µs", "µs/row"):
        table.add_column(column, justify="right")
    costs = manifest["serving_cost"]
    eligible = set(manifest["selection_details"]["eligible"])
    for name, m in sorted(manifest["metrics"].items(), key=lambda item: -item[1]["roc_auc"]):
        label = f"{name} *" if name == outcome.selected_model else name
        style = "bold green" if name == outcome.selected_model else ("" if name in eligible else "dim")
        cost = costs[name]
        table.add_row(
            label,
            f"{m['roc_auc']:.4f}",
            f"{m['cv_roc_auc_mean']:.3f}±{m['cv_roc_auc_std']:.3f}",
            f"{cost['single_p50_us']:.1f}",
            f"{cost['single_p99_us']:.1f}",
            f"{cost['batch_us_per_row']:.2f}",
            style=style,
        )
    console.print(table)
    console.print(
        "AUC: held-out ROC AUC; p50/p99: one record; µs/row: batches of "
        f"{next(iter(costs.values()))['batch_size']}; * selected; dimmed: outside the AUC tolerance",
        style="dim",
    )
    for line in headline(manifest):
        console.print(line, highlight=False, soft_wrap=True)
    state = "promoted" if outcome.promoted else "not promoted"
    console.print(
        f"version [bold]{outcome.version}[/] ({outcome.selected_model}, threshold "
        f"{manifest['threshold']:.3f}) {state}; {outcome.seconds:.1f} s\n"
        f"report: {outcome.path / 'report.md'}",
        highlight=False,
        soft_wrap=True,
    )
    if "mlflow_run_id" in manifest:
        console.print(
            f"MLflow run {manifest['mlflow_run_id']} at {manifest['mlflow_tracking_uri']}",
            highlight=False,
            soft_wrap=True,
        )
