"""``churn bench format``: the served model's file format, skops against the joblib pickle.

The measuring is done by :mod:`benchmarks.format_bench`; this command reads the options and
prints the table.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli.console import console


def command(
    rows: int = typer.Option(3000, "--rows", min=500, help="Synthetic rows the candidates are fitted on."),
    loads: int = typer.Option(7, "--loads", min=1, help="Loads per format (the median is reported)."),
    rounds: int = typer.Option(5, "--rounds", min=1, help="Interleaved scoring rounds per format."),
    write_docs: Path | None = typer.Option(
        None, "--write-docs", help="Write the results into this Markdown file (e.g. docs/benchmarks.md)."
    ),
) -> None:
    """Size, load time, identical probabilities and scoring time of skops and joblib, per candidate."""
    # sklearn and the candidates load when the benchmark runs, not for `churn --help`.
    from benchmarks import format_bench

    plan = format_bench.FormatPlan(rows=rows, loads=loads, rounds=rounds, write_docs=write_docs)
    results = format_bench.run(plan, console)
    table = Table(title="model format: joblib pickle against skops")
    for header in format_bench.HEADERS:
        table.add_column(header, justify="left" if header == "pipeline" else "right")
    for row in format_bench.table_rows(results):
        table.add_row(*row)
    console.print(table)
    if write_docs is not None:
        format_bench.write_docs(write_docs, results)
        console.print(f"results written to {write_docs}")
