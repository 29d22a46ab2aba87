"""`churn up` end to end: its own embedded broker, a trained model, predictions, one SIGINT stops all."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from devstack.ports import free_port, port_open
from tests.support.kafka_tools import KafkaTools
from tests.support.scorer_process import CHURN

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def _children(pid: int) -> set[int]:
    """Direct children of ``pid`` (from /proc)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_churn_up_runs_the_stack_and_one_sigint_stops_everything(tmp_path: Path) -> None:
    kafka_port, web_port, api_port, quality_port = free_port(), free_port(), free_port(), free_port()
    bootstrap = f"127.0.0.1:{kafka_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update(
        {
            "CHURN_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CHURN_MODEL_STORE": str(tmp_path / "store"),  # empty: `up` must train a model
            "CHURN_SCORER_WEB_PORT": str(web_port),
            "CHURN_API_PORT": str(api_port),
            "CHURN_QUALITY_WEB_PORT": str(quality_port),
        }
    )
    up = subprocess.Popen(
        [
            CHURN,
            "up",
            "--rate",
            "50",
            "--train-rows",
            "1500",
            "--train-candidate",
            "spline_logistic",
            "--logs-dir",
            str(tmp_path / "logs"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while not port_open("127.0.0.1", web_port):
            assert up.poll() is None, up.stdout.read() if up.stdout else ""
            assert time.monotonic() < deadline, "the scorer never served /metrics"
            time.sleep(0.5)
        kafka = KafkaTools(bootstrap)
        predictions = kafka.consume("churn-predictions", 20, timeout=60)
        assert len(predictions) >= 20
        assert len(_children(up.pid)) >= 4  # broker, scorer, quality job, producer (+ api when installed)
        children = _children(up.pid)
        # The demo producer publishes outcomes a few seconds after the events; the quality job joins them.
        while _labelled(quality_port) < 1:
            assert up.poll() is None, up.stdout.read() if up.stdout else ""
            assert time.monotonic() < deadline + 60, "the quality job labelled no prediction"
            time.sleep(1)
    finally:
        children |= _children(up.pid)
        up.send_signal(signal.SIGINT)
        try:
            code = up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            for pid in [up.pid, *children]:  # leave nothing behind even when the test fails
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            raise
    output = up.stdout.read() if up.stdout else ""
    assert code == 0, output
    assert "everything stopped" in output
    assert not [pid for pid in children if _alive(pid)], output
    assert not port_open("127.0.0.1", kafka_port)
    assert not port_open("127.0.0.1", web_port)
    assert not port_open("127.0.0.1", quality_port)


def _labelled(port: int) -> float:
    """``churn_labelled_predictions_total`` of the quality job on ``port`` (0 while it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("churn_labelled_predictions_total")
    )
