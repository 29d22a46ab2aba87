"""``--mlflow-uri`` and ``--mlflow-experiment`` of ``churn train`` and ``churn retrain``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from cli.console import fail

if TYPE_CHECKING:
    from config.settings import Settings
    from training.tracking import TrackingConfig

MLFLOW_URI: Any = typer.Option(
    None,
    "--mlflow-uri",
    help="Log the run to this MLflow tracking URI, e.g. file:///abs/mlruns "
    "(env CHURN_MLFLOW_TRACKING_URI; default: not tracked). Needs the mlflow extra.",
)
MLFLOW_EXPERIMENT: Any = typer.Option(
    None,
    "--mlflow-experiment",
    help="MLflow experiment of the run (env CHURN_MLFLOW_EXPERIMENT) [default: churn-stream].",
)


def tracking_config(settings: Settings) -> TrackingConfig | None:
    """The ``TrackingConfig`` the settings ask for, or None; ends the command if MLflow is missing.

    Checked before any data is read or any model trained.
    """
    if settings.mlflow_tracking_uri is None:
        return None
    from training.tracking import TrackingConfig, TrackingError, check_available

    try:
        check_available()
    except TrackingError as exc:
        fail(str(exc))
    return TrackingConfig(settings.mlflow_tracking_uri, settings.mlflow_experiment)
