"""``churn models ...``: versions, champion, challenger and decisions from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from cli.console import console, fail
from models.store import ModelStore, RegistryError

if TYPE_CHECKING:
    from models.registry import ModelRegistry

app = typer.Typer(
    help="List, promote, roll back and sign model versions; set the shadow challenger.", no_args_is_help=True
)
challenger_app = typer.Typer(help="The shadow challenger: scored beside the champion, never for decisions.")
app.add_typer(challenger_app, name="challenger")

StoreOption = typer.Option(None, "--store", help="Model store (env CHURN_MODEL_STORE).")
ReasonOption = typer.Option("", "--reason", help="Why: recorded in the registry's decisions.jsonl.")


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
    challenger = registry.challenger()
    table = Table(title=f"Model versions in {escape(str(registry.root))} (* current, c challenger)")
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
            "*" if version == current else "c" if version == challenger else "",
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
    challenger: bool = typer.Option(
        False, "--challenger", help="Make it the shadow challenger instead of the champion."
    ),
    reason: str = ReasonOption,
    store: Path | None = StoreOption,
) -> None:
    """Test-load a version (integrity, signature, probe predictions) and make it current (or challenger)."""
    registry = _registry(ctx, store)
    if challenger:
        try:
            registry.set_challenger(version, reason=reason)
        except RegistryError as exc:
            fail(f"{exc}; CHALLENGER is unchanged")
        console.print(f"challenger model: {escape(version)} (scored in shadow, never for decisions)")
        return
    try:
        registry.promote(version, reason=reason)
    except RegistryError as exc:
        fail(f"{exc}; CURRENT is unchanged")
    console.print(f"current model: {escape(version)}")


@app.command("rollback")
def rollback(ctx: typer.Context, reason: str = ReasonOption, store: Path | None = StoreOption) -> None:
    """Return to the version that was current before the last promotion."""
    registry = _registry(ctx, store)
    try:
        version = registry.rollback(reason=reason)
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


@challenger_app.command("clear")
def challenger_clear(
    ctx: typer.Context, reason: str = ReasonOption, store: Path | None = StoreOption
) -> None:
    """Stop shadow scoring: remove the CHALLENGER pointer (running scorers and APIs follow it)."""
    previous = _registry(ctx, store).clear_challenger(reason=reason)
    if previous is None:
        console.print("no challenger was set")
    else:
        console.print(f"challenger {escape(previous)} cleared")


@challenger_app.command("show")
def challenger_show(ctx: typer.Context, store: Path | None = StoreOption) -> None:
    """The challenger version, if one is set."""
    version = ModelStore.from_settings(ctx.obj, store).challenger()
    console.print(escape(version) if version else "no challenger")


@app.command("history")
def history(
    ctx: typer.Context,
    last: int = typer.Option(20, "--last", min=1, help="Show the last N decisions."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object a line, as recorded."),
    store: Path | None = StoreOption,
) -> None:
    """Promotions, roll backs, challenger changes and retrain decisions: who, when, why, evidence."""
    entries = ModelStore.from_settings(ctx.obj, store).decisions()[-last:]
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry))
        return
    if not entries:
        console.print("no decisions recorded")
        return
    table = Table(title="Registry decisions (oldest first)")
    for column in ("at", "action", "version", "previous", "who", "reason"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            *(escape(str(e.get(k) or "")) for k in ("at", "action", "version", "previous", "who", "reason"))
        )
    console.print(table)
