"""``churn models list|promote|rollback``: the model registry from the command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli.console import console, fail, overridden
from models.registry import ModelRegistry, RegistryError

app = typer.Typer(help="List, promote and roll back model versions.", no_args_is_help=True)

StoreOption = typer.Option(None, "--store", help="Model store (env CHURN_MODEL_STORE).")


def _registry(ctx: typer.Context, store: Path | None) -> ModelRegistry:
    return ModelRegistry(overridden(ctx.obj, model_store=store).model_store)


@app.command("list")
def list_versions(ctx: typer.Context, store: Path | None = StoreOption) -> None:
    """Every version with its selected model, ROC AUC and whether it is current."""
    registry = _registry(ctx, store)
    versions = registry.versions()
    if not versions:
        console.print(f"no model versions in {registry.root}; run `churn train`")
        return
    current = registry.current()
    table = Table(title=f"Model versions in {registry.root}")
    for column in ("", "version", "created", "model", "ROC AUC", "rows"):
        table.add_column(column)
    for version in versions:
        try:
            m = registry.manifest(version)
        except RegistryError as exc:
            table.add_row("", version, "", f"[red]{exc}[/]", "", "")
            continue
        selected = m.get("selected_model", "?")
        auc = m.get("metrics", {}).get(selected, {}).get("roc_auc")
        table.add_row(
            "*" if version == current else "",
            version,
            str(m.get("created_at", ""))[:19],
            selected,
            f"{auc:.4f}" if isinstance(auc, float) else "",
            str(m.get("training_data", {}).get("rows", "")),
        )
    console.print(table)


@app.command("promote")
def promote(
    ctx: typer.Context,
    version: str = typer.Argument(..., help="The version to make current."),
    store: Path | None = StoreOption,
) -> None:
    """Verify a version's artifacts and make it current."""
    registry = _registry(ctx, store)
    try:
        registry.promote(version)
    except RegistryError as exc:
        fail(str(exc))
    console.print(f"current model: {version}")


@app.command("rollback")
def rollback(ctx: typer.Context, store: Path | None = StoreOption) -> None:
    """Return to the version that was current before the last promotion."""
    registry = _registry(ctx, store)
    try:
        version = registry.rollback()
    except RegistryError as exc:
        fail(str(exc))
        return
    console.print(f"current model: {version}")
