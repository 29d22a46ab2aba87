"""The MLServer peer's requests and answers (Open Inference Protocol V2), and its report rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import api_bench, mlserver_peer
from schemas.features import FEATURES
from tests.support.api_support import records


def test_a_v2_request_has_one_typed_input_per_feature() -> None:
    rows = records(3)
    rows[1]["total_charges"] = None
    body = mlserver_peer.v2_body(rows)
    assert body["parameters"] == {"content_type": "pd"}
    inputs = {i["name"]: i for i in body["inputs"]}
    assert list(inputs) == list(FEATURES)
    assert all(i["shape"] == [3] and len(i["data"]) == 3 for i in inputs.values())
    assert inputs["tenure"]["datatype"] == "INT64" and inputs["senior_citizen"]["datatype"] == "INT64"
    assert inputs["total_charges"]["datatype"] == "FP64" and inputs["total_charges"]["data"][1] is None
    assert inputs["contract"]["datatype"] == "BYTES"
    assert inputs["contract"]["data"] == [r["contract"] for r in rows]


def test_the_churn_column_is_read_from_predict_proba() -> None:
    answer = {"outputs": [{"name": "predict_proba", "shape": [2, 2], "data": [0.9, 0.1, 0.25, 0.75]}]}
    assert mlserver_peer.churn_probabilities(answer) == [0.1, 0.75]


def test_without_an_environment_there_is_no_mlserver(tmp_path: Path) -> None:
    assert mlserver_peer.mlserver_python(tmp_path / "python") is None


def _run(path: str, rows: int, connections: int, rps: float) -> dict[str, Any]:
    return {
        "path": path,
        "rows_per_request": rows,
        "concurrency": connections,
        "rps": rps,
        "p50_ms": 1.0,
        "p90_ms": 2.0,
        "p99_ms": 3.0,
        "errors": 0,
        "access_log": False,
    }


def _results(peer: dict[str, Any]) -> dict[str, Any]:
    timing = {"p50_us": 10.0, "p99_us": 20.0, "mean_us": 12.0}
    return {
        "date": "2026-12-02",
        "machine": "machine",
        "command": "churn bench api",
        "server_side": {
            "model": "spline_logistic",
            "version": "v",
            "trained_on": "telco.csv",
            "fast_path": True,
            "predict_one": timing,
            "handler": timing,
            "naive": timing,
            "speedup_p50": 10.0,
            "max_abs_difference": 0.0,
        },
        "http": [_run("/predict", 1, 1, 1500.0), _run("/predict/batch", 100, 1, 300.0)],
        "mlserver": peer,
    }


def test_the_report_has_the_peer_rows_its_difference_and_the_ratios() -> None:
    peer = {
        "version": "MLServer 1.7.1 (scikit-learn 1.9.1, pandas 2.3.3)",
        "max_abs_difference": 2.2e-16,
        "checked_rows": 500,
        "http": [
            _run(mlserver_peer.INFER_PATH, 1, 1, 125.0),
            _run(mlserver_peer.INFER_PATH, 100, 1, 100.0),
        ],
    }
    text = api_bench.markdown(_results(peer))
    assert "| MLServer V2 (1 row) | 1 | 125 | 125 |" in text
    assert "| MLServer V2 (100 rows) | 1 | 100 | 10,000 |" in text
    assert "differ from ours by at most 2.2e-16" in text
    assert "12.0x (1 row, 1 conn.), 3.0x (100 rows, 1 conn.)" in text


def test_the_report_says_why_the_peer_is_missing() -> None:
    text = api_bench.markdown(_results({"missing": mlserver_peer.MISSING}))
    assert f"MLServer peer: not measured ({mlserver_peer.MISSING})." in text
    assert "| MLServer" not in text
