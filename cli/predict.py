"""``churn predict``: offline batch scoring of a telco-format CSV with the current model.

Rows are read with the input contract (:mod:`models.offline`): a row is accepted or refused as
the same values on the topic or in a ``/predict`` body would be.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.console import console, fail, overridden
from models.store import ModelStore, RegistryError
from schemas.features import FEATURES

if TYPE_CHECKING:
    import pandas as pd

    from models.explain import Contributions


def command(
    ctx: typer.Context,
    input_path: Path = typer.Option(..., "--input", "-i", help="Telco-format CSV (Churn column optional)."),
    output_path: Path = typer.Option(..., "--output", "-o", help="Where to write the scored CSV."),
    store: Path | None = typer.Option(None, "--store", help="Model store (env CHURN_MODEL_STORE)."),
    version: str | None = typer.Option(
        None, "--version", help="Score with this version, not the current one."
    ),
    explain: bool = typer.Option(
        False,
        "--explain",
        help="Add reason columns: reason_up_<i>, reason_up_<i>_value, reason_up_<i>_contribution "
        "(log-odds), strongest first.",
    ),
    top: int = typer.Option(3, "--top", min=1, help="With --explain: reasons pushing churn up per row."),
    down: int = typer.Option(
        0, "--down", min=0, help="With --explain: also this many pushing it down (reason_down_<i>...)."
    ),
) -> None:
    """Score every row; the output keeps the id column and adds churn_probability and churn."""
    # sklearn and pandas load when the command runs, not for `churn --help`.
    import pandas as pd

    from models.offline import CsvInputError, read_events
    from models.predictor import Predictor

    settings = overridden(ctx.obj, model_store=store)
    if not input_path.is_file():
        fail(f"no such file: {input_path}")
    try:
        predictor = Predictor.from_registry(ModelStore.from_settings(settings), version)
    except RegistryError as exc:
        fail(str(exc))
        return
    if explain and not predictor.explainable:
        fail(
            f"model {predictor.version} ({predictor.info.selected_model}) serves no reason codes: "
            f"{predictor.no_reasons_because}"
        )
    started = time.perf_counter()
    try:
        rows = read_events(input_path)
    except CsvInputError as exc:
        fail(f"{input_path}: {exc}")
        return
    if not rows.events:
        fail(f"{input_path}: no rows")
    frame = rows.frame()
    out = pd.DataFrame({rows.id_column: [event.customer_id for event in rows.events]})
    contributions: Contributions | None = None
    if explain:
        probability, contributions = predictor.explain_frame(frame)
    else:
        probability = predictor.predict_frame(frame)
    out["churn_probability"] = probability
    out["churn"] = predictor.decide(probability).astype(int)
    if contributions is not None:
        out = _with_reasons(out, frame, contributions, top=top, down=down)
    out.to_csv(output_path, index=False, float_format="%.17g")
    seconds = time.perf_counter() - started
    console.print(
        f"scored {len(out)} rows with model {predictor.version} in {seconds:.2f} s "
        f"({len(out) / max(seconds, 1e-9):,.0f} rows/s); "
        f"predicted churn {out['churn'].mean():.1%} -> {output_path}"
    )


def _with_reasons(
    out: pd.DataFrame, frame: pd.DataFrame, contributions: Contributions, *, top: int, down: int
) -> pd.DataFrame:
    """Reason columns, built column-wise: feature name, the customer's value, the contribution.

    A row with fewer features pushing that way leaves the remaining columns empty.
    """
    import numpy as np  # with pandas: loaded only when the command runs
    import pandas as pd

    # A trailing blank column: index -1 (no reason) picks it.
    names = np.array([*FEATURES, ""], dtype=object)
    # Values as text, as the input file had them (blank total_charges stays blank): writing
    # mixed-type object columns through a float format costs twice the whole rest.
    values = np.column_stack(
        [
            *(np.where(frame[name].isna(), "", frame[name].astype(str)) for name in FEATURES),
            np.full(len(frame), "", dtype=object),
        ]
    )
    columns: dict[str, np.ndarray] = {}
    for direction, count, up in (("up", top, True), ("down", down, False)):
        if count <= 0:
            continue
        features, shares = contributions.top(count, up=up)
        for i in range(features.shape[1]):
            picked = features[:, i]
            prefix = f"reason_{direction}_{i + 1}"
            columns[prefix] = names[picked]
            columns[f"{prefix}_value"] = values[np.arange(len(frame)), picked]
            columns[f"{prefix}_contribution"] = shares[:, i]
    return pd.concat([out, pd.DataFrame(columns, index=out.index)], axis=1)
