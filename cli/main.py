"""The ``churn`` command: one sub-command per module in this package."""

from __future__ import annotations

import typer

from cli import (
    api,
    bench,
    broker,
    consume,
    dlq,
    models_cmd,
    predict,
    produce,
    quality,
    retrain,
    score,
    train,
    up,
)

app = typer.Typer(
    name="churn",
    help="churn-stream: train, serve and stream-score customer churn models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    log_level: str = typer.Option(None, "--log-level", help="DEBUG, INFO, WARNING... (env CHURN_LOG_LEVEL)"),
) -> None:
    """Settings come from CHURN_* environment variables; flags override them."""
    # pydantic-settings loads once a command runs, not for `churn --help`.
    from pydantic import ValidationError

    from cli.console import fail
    from config.logs import setup_logging
    from config.settings import SecretFileError, Settings

    try:
        settings = Settings().with_overrides(log_level=log_level)
    except (SecretFileError, ValidationError) as exc:
        fail(f"configuration: {exc}")
    setup_logging(settings.log_level)
    ctx.obj = settings


app.command("train")(train.command)
app.command("retrain")(retrain.command)
app.command("predict")(predict.command)
app.command("broker")(broker.command)
app.command("score")(score.command)
app.command("produce")(produce.command)
app.command("quality")(quality.command)
app.command("consume")(consume.command)
app.command("up")(up.command)
app.command("api")(api.command)
app.add_typer(models_cmd.app, name="models")
app.add_typer(bench.app, name="bench")
app.add_typer(dlq.app, name="dlq")


def run() -> None:
    app()


if __name__ == "__main__":
    run()
