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


@app.command("compare")
def compare(
    ctx: typer.Context,
    champion: str | None = typer.Option(None, "--champion", help="Default: the registry's CURRENT."),
    challenger: str | None = typer.Option(
        None, "--challenger", help="Default: the registry's CHALLENGER, else the last version seen in shadow."
    ),
    n_boot: int = typer.Option(2000, "--bootstrap", min=100, help="Bootstrap resamples."),
    confidence: float = typer.Option(0.95, "--confidence", min=0.5, max=0.999),
    seed: int = typer.Option(0, "--seed"),
    gate_gain: float | None = typer.Option(
        None, "--gate", help="Exit 1 unless the challenger passes the retrain gate with this ROC AUC gain."
    ),
    min_pairs: int = typer.Option(200, "--min-pairs", min=2, help="Fewest labelled pairs the gate accepts."),
    idle_s: float = typer.Option(
        3.0, "--idle", help="Stop reading a topic after this long without a record."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    store: Path | None = StoreOption,
) -> None:
    """Champion against challenger on the same live outcomes: ROC AUC of each, the difference with a
    paired-bootstrap interval, Brier scores, counts. Reads the predictions, shadow and outcomes topics.

    Exit codes: 0 compared (and, with --gate, the challenger passes); 1 it does not pass --gate;
    2 nothing to compare (no challenger, too few labelled pairs or one class only)."""
    # The join reads Kafka and the statistics load numpy/sklearn: only when this command runs.
    from scorer.live_pairs import read_pairs
    from training.comparison import NotComparableError, compare_paired, gate

    registry = ModelStore.from_settings(ctx.obj, store)
    pairs = read_pairs(ctx.obj, idle_s=idle_s)
    a = champion or registry.current()
    b = challenger or registry.challenger() or pairs.latest.get("challenger")
    counts = pairs.versions()
    summary: dict[str, object] = {
        "champion": a,
        "challenger": b,
        "labelled": {"champion": counts.get(a or "", 0), "challenger": counts.get(b or "", 0)},
        "records_read": dict(pairs.read),
        "records_skipped": dict(pairs.refused),
    }
    if a is None or b is None:
        _compare_exit(summary, "no champion or no challenger to compare", as_json)
        return
    labels, pa, pb = pairs.paired(a, b)
    try:
        result = compare_paired(labels, pa, pb, n_boot=n_boot, confidence=confidence, seed=seed)
    except NotComparableError as exc:
        _compare_exit(summary, str(exc), as_json)
        return
    summary["comparison"] = result.as_dict()
    passed = True
    if gate_gain is not None:
        decision = gate(result, min_gain=gate_gain, min_pairs=min_pairs)
        summary["gate"] = {"promote": decision.promote, "reason": decision.reason, "min_gain": gate_gain}
        passed = decision.promote
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        table = Table(
            title=f"champion {escape(a)} vs challenger {escape(b)} on {result.n} labelled customers"
        )
        for column in ("", "champion", "challenger", "difference"):
            table.add_column(column)
        ci = f"[{result.ci_low:+.4f}, {result.ci_high:+.4f}] ({result.confidence:.0%}, paired bootstrap)"
        table.add_row(
            "ROC AUC", f"{result.roc_auc_a:.4f}", f"{result.roc_auc_b:.4f}", f"{result.difference:+.4f} {ci}"
        )
        table.add_row(
            "Brier",
            f"{result.brier_a:.4f}",
            f"{result.brier_b:.4f}",
            f"{result.brier_b - result.brier_a:+.4f}",
        )
        console.print(table)
        console.print(f"{result.positives} of {result.n} churned")
        if "gate" in summary:
            console.print(f"gate: {'pass' if passed else 'fail'} — {escape(str(summary['gate']['reason']))}")  # type: ignore[index]
    if not passed:
        raise typer.Exit(1)


def _compare_exit(summary: dict[str, object], reason: str, as_json: bool) -> None:
    summary["error"] = reason
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        console.print(f"nothing to compare: {escape(reason)}")
    raise typer.Exit(2)
