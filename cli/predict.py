"""``churn predict``: offline batch scoring of a telco-format CSV with the current model."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from cli.console import console, fail
from models.registry import ModelRegistry, RegistryError


def command(
    ctx: typer.Context,
    input_path: Path = typer.Option(..., "--input", "-i", help="Telco-format CSV (Churn column optional)."),
    output_path: Path = typer.Option(..., "--output", "-o", help="Where to write the scored CSV."),
    store: Path | None = typer.Option(None, "--store", help="Model store (env CHURN_MODEL_STORE)."),
    version: str | None = typer.Option(
        None, "--version", help="Score with this version, not the current one."
    ),
) -> None:
    """Score every row; the output keeps the id column and adds churn_probability and churn."""
    # sklearn and pandas load when the command runs, not for `churn --help`.
    from models.predictor import Predictor
    from training.data import DataError, clean, read_csv

    settings = ctx.obj.with_overrides(model_store=store)
    if not input_path.is_file():
        fail(f"no such file: {input_path}")
    try:
        predictor = Predictor.from_registry(ModelRegistry(settings.model_store), version)
    except RegistryError as exc:
        fail(str(exc))
        return
    started = time.perf_counter()
    try:
        raw = read_csv(input_path)
        frame = clean(raw, require_target=False)
    except DataError as exc:
        fail(f"{input_path}: {exc}")
        return
    probability = predictor.predict_frame(frame)
    id_column = "customerID" if "customerID" in _header(input_path) else "customer_id"
    out = frame[["customer_id"]].rename(columns={"customer_id": id_column})
    out["churn_probability"] = probability
    out["churn"] = predictor.decide(probability).astype(int)
    out.to_csv(output_path, index=False, float_format="%.17g")
    seconds = time.perf_counter() - started
    console.print(
        f"scored {len(out)} rows with model {predictor.version} in {seconds:.2f} s "
        f"({len(out) / max(seconds, 1e-9):,.0f} rows/s); "
        f"predicted churn {out['churn'].mean():.1%} -> {output_path}"
    )


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig") as handle:
        return [c.strip() for c in handle.readline().split(",")]
