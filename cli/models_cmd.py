"""``churn models list|promote|rollback|sign``: the model registry from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from cli.console import console, fail
from models.store import ModelStore, RegistryError

if TYPE_CHECKING:
    from models.registry import ModelRegistry

app = typer.Typer(help="List, promote, roll back and sign model versions.", no_args_is_help=True)

StoreOption = typer.Option(None, "--store", help="Model store (env CHURN_MODEL_STORE).")


def _registry(ctx: typer.Context, store: Path | None) -> ModelRegistry:
    # Promoting test-loads the model: sklearn loads when such a command runs, not for `churn --help`.
    from models.registry import ModelRegistry

    return ModelRegistry.from_settings(ctx.obj, store)


@app.command("list")
def list_versions(ctx: typer.Context, store: Path | None = StoreOption) -> None:
    """Every version with its selected model, ROC AUC and whether it is current."""
    registry = ModelStore.from_settings(ctx.obj, store)
    versions = registry.versions()
    if not versions:
        console.print(f"no model versions in {escape(str(registry.root))}; run `churn train`")
        return
    current = registry.current()
    table = Table(title=f"Model versions in {escape(str(registry.root))}")
    for column in ("", "version", "created", "model", "ROC AUC", "rows", "format"):
        table.add_column(column, no_wrap=column == "version")
    for version in versions:
        try:
            m = registry.manifest(version)
        except RegistryError as exc:
            table.add_row("", escape(version), "", f"[red]{escape(str(exc))}[/]", "", "", "")
            continue
        selected = str(m.get("selected_model", "?"))
        metrics = m.get("metrics")
        auc = metrics.get(selected, {}).get("roc_auc") if isinstance(metrics, dict) else None
        data = m.get("training_data")
        table.add_row(
            "*" if version == current else "",
            escape(version),
            escape(str(m.get("created_at", ""))[:19]),
            escape(selected),
            f"{auc:.4f}" if isinstance(auc, float) else "",
            escape(str(data.get("rows", ""))) if isinstance(data, dict) else "",
            escape(str(m.get("model_format", "joblib"))),
        )
    console.print(table)


@app.command("promote")
def promote(
    ctx: typer.Context,
    version: str = typer.Argument(..., help="The version to make current."),
    store: Path | None = StoreOption,
) -> None:
    """Test-load a version (integrity, signature, probe predictions) and make it current."""
    registry = _registry(ctx, store)
    try:
        registry.promote(version)
    except RegistryError as exc:
        fail(f"{exc}; CURRENT is unchanged")
    console.print(f"current model: {escape(version)}")


@app.command("rollback")
def rollback(ctx: typer.Context, store: Path | None = StoreOption) -> None:
    """Return to the version that was current before the last promotion."""
    registry = _registry(ctx, store)
    try:
        version = registry.rollback()
    except RegistryError as exc:
        fail(str(exc))
        return
    console.print(f"current model: {escape(version)}")


@app.command("sign")
def sign(
    ctx: typer.Context,
    versions: list[str] = typer.Argument(None, help="Versions to sign (default: with --all, every one)."),
    all_versions: bool = typer.Option(False, "--all", help="Sign every version in the store."),
    store: Path | None = StoreOption,
) -> None:
    """Sign versions with CHURN_MODEL_SIGNING_KEY after checking their sha256 (for versions trained
    before the key was set). Sign only versions you trust: a signature vouches for what is on disk now."""
    registry = ModelStore.from_settings(ctx.obj, store)
    chosen = registry.versions() if all_versions else list(versions or [])
    if not chosen:
        fail("name the versions to sign, or pass --all")
    for version in chosen:
        try:
            registry.sign(version)
        except RegistryError as exc:
            fail(str(exc))
        console.print(f"signed {escape(version)}")
