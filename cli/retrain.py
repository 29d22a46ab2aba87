"""``churn retrain``: a model trained on live data, promoted only through the gate (docs/mlops.md)."""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import typer
from rich.markup import escape

from cli.console import console, fail, overridden
from cli.tracking_options import MLFLOW_EXPERIMENT, MLFLOW_URI, tracking_config
from config.settings import Settings

log = logging.getLogger(__name__)

#: The exit code of a single run, by its decision (docs/mlops.md).
EXIT_CODES = {"promoted": 0, "kept_challenger": 1, "skipped": 2}


def command(
    ctx: typer.Context,
    store: Path | None = typer.Option(None, "--store", help="Model store (env CHURN_MODEL_STORE)."),
    holdout: float = typer.Option(
        0.2,
        "--holdout",
        min=0.01,
        max=0.9,
        help="Share of labelled customers, latest by outcome time, held out.",
    ),
    gate_gain: float = typer.Option(
        0.0, "--gate", help="ROC AUC gain over the champion the new model needs (and an interval above 0)."
    ),
    min_pairs: int = typer.Option(
        200, "--min-pairs", min=2, help="Fewest customers in the evaluation window."
    ),
    min_train_rows: int = typer.Option(500, "--min-rows", min=10, help="Fewest training rows."),
    n_boot: int = typer.Option(2000, "--bootstrap", min=100, help="Bootstrap resamples of the comparison."),
    candidates: list[str] | None = typer.Option(None, "--candidate", help="Train only these (repeatable)."),
    cv_folds: int = typer.Option(5, "--cv-folds", min=2, help="Cross-validation folds of the selection."),
    idle_s: float = typer.Option(
        3.0, "--idle", help="Stop reading a topic after this long without a record."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the decision and its evidence as JSON."),
    every: str | None = typer.Option(
        None, "--every", help="Run again every DURATION (e.g. 24h, 30m, 90s) until SIGTERM/SIGINT."
    ),
    runs: int | None = typer.Option(None, "--runs", min=1, help="With --every: stop after N runs."),
    listen: str | None = typer.Option(
        None,
        "--listen",
        help="Serve the Alertmanager webhook on HOST:PORT (POST /alerts, GET /health, /metrics): "
        "firing --alert alerts start a retrain; needs an admin API key off loopback.",
    ),
    cooldown: str = typer.Option(
        "1h", "--cooldown", help="With --listen: at least this long between two retrain starts."
    ),
    alertnames: list[str] | None = typer.Option(
        None,
        "--alert",
        help="With --listen: an alertname that retrains (repeatable; default ChurnPredictionDrift, "
        "ChurnLiveRocAucBelowTraining).",
    ),
    mlflow_uri: str | None = MLFLOW_URI,
    mlflow_experiment: str | None = MLFLOW_EXPERIMENT,
) -> None:
    """Train on the features last seen per customer (events topic) with their observed outcomes
    (outcomes topic), compare with the champion on the latest labelled window, register the new
    version as challenger and promote it only if it passes the gate.

    Exit codes: 0 promoted, 1 kept as challenger (the gate refused it), 2 skipped (not enough data);
    with --every or --listen, 0 once stopped (each run's decision is in the registry's decisions.jsonl)."""
    # Kafka, pandas and sklearn load when the command runs, not for `churn --help`.
    from models.registry import ModelRegistry
    from scorer.live_pairs import read_last_seen
    from training.retrain import RetrainConfig, last_seen, retrain
    from training.tracking import TrackingError

    settings = overridden(
        ctx.obj, model_store=store, mlflow_tracking_uri=mlflow_uri, mlflow_experiment=mlflow_experiment
    )
    tracking = tracking_config(settings)
    registry = ModelRegistry.from_settings(settings)
    period = parse_duration(every) if every is not None else None

    def once(trigger: list[dict[str, object]] | None = None) -> str:
        events, outcomes, counts = read_last_seen(settings, idle_s=idle_s)
        frame = last_seen(events, outcomes)
        source = {
            "events_topic": settings.events_topic,
            "outcomes_topic": settings.outcomes_topic,
            "read": dict(counts),
        }
        config = RetrainConfig(
            holdout=holdout,
            min_gain=gate_gain,
            min_pairs=min_pairs,
            min_train_rows=min_train_rows,
            n_boot=n_boot,
            candidates=candidates or None,
            cv_folds=cv_folds,
            signing_key=registry.signing_key,
            tracking=tracking,
        )
        result = retrain(frame, registry, config, source=source, trigger=trigger or ())
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "decision": result.decision,
                        "reason": result.reason,
                        "version": result.version,
                        "evidence": result.evidence,
                    }
                )
            )
        else:
            rows = result.evidence["rows"]
            console.print(
                f"labelled customers: {rows['labelled']} "
                f"(train {rows['train']}, evaluation window {rows['window']})"
            )
            c = result.evidence.get("comparison")
            if c:
                console.print(
                    f"ROC AUC on the window: champion {c['roc_auc_a']:.4f}, new {c['roc_auc_b']:.4f}, "
                    f"gain {c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
                )
            console.print(
                f"{result.decision}: {escape(result.reason)}"
                + (f" (version {escape(result.version)})" if result.version else "")
            )
        return result.decision

    if listen is not None:
        _listen(settings, once, listen, cooldown, alertnames, period, runs)
        return
    if period is None:
        try:
            code = EXIT_CODES[once()]
        except TrackingError as exc:
            fail(str(exc))
        raise typer.Exit(code)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    done = 0
    while not stop.is_set():
        try:
            once()
        except Exception:  # a failed run (broker away, bad data) must not end the schedule
            log.exception("retrain run failed; the next one is in %s", every)
        done += 1
        if runs is not None and done >= runs:
            break
        console.print(f"next retrain in {every}")
        stop.wait(period)


def _listen(
    settings: Settings,
    once: Callable[..., str],
    listen: str,
    cooldown: str,
    alertnames: list[str] | None,
    period: float | None,
    runs: int | None,
) -> None:
    """``--listen``: the webhook (api/retrain_hook.py) runs ``once`` for each retrain it starts."""
    from api.auth import KeyConfigError
    from api.retrain_hook import DEFAULT_ALERTNAMES, parse_listen, serve

    if runs is not None:
        raise typer.BadParameter("--runs does not combine with --listen (it serves until SIGTERM)")
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    cooldown_s = 0.0 if cooldown.strip() in ("0", "0s") else parse_duration(cooldown)
    console.print(f"retrain webhook on http://{host}:{port}/alerts (cooldown {cooldown})")
    try:
        serve(
            settings,
            lambda triggers: once([t.as_evidence() for t in triggers]),
            host=host,
            port=port,
            cooldown_s=cooldown_s,
            alertnames=alertnames or DEFAULT_ALERTNAMES,
            every_s=period,
        )
    except KeyConfigError as exc:
        fail(str(exc))


def parse_duration(text: str) -> float:
    """Seconds in ``24h``, ``30m``, ``90s`` or ``2d`` (at least one second)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if match is None:
        raise typer.BadParameter(f"{text!r}: write a number and a unit, e.g. 24h, 30m, 90s, 2d")
    seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if seconds < 1:
        raise typer.BadParameter(f"{text!r}: at least one second")
    return seconds
