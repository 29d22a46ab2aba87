"""The MLServer peer of ``churn bench api``: the same pipeline behind MLServer's scikit-learn runtime.

MLServer (Seldon) serves the pipeline ``churn api`` serves, dumped with joblib,
through the Open Inference Protocol V2 with the pandas codec: one input per
snake_case feature, output ``predict_proba`` of shape ``[n, 2]``. MLServer pins
versions this project does not use, so it runs from a virtual environment of its
own (``make mlserver-venv`` creates ``.venv-mlserver``; ``--mlserver-python``
names another); without one the row is left out with :data:`MISSING`.
``PYTHONPATH`` points at this checkout so that the pipeline's own classes
(``models.*``) unpickle there. One worker (``parallel_workers: 1``), single
threaded native pools (``OMP_NUM_THREADS=1``), like ``churn api --workers 1``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.progress import BenchmarkError
from devstack.ports import free_port
from devstack.processes import ChildProcess
from schemas.features import FEATURES

#: The checkout this module runs from (its ``models`` package must unpickle in MLServer).
REPO = Path(__file__).resolve().parents[1]
#: Where ``make mlserver-venv`` puts MLServer's own environment.
DEFAULT_PYTHON = REPO / ".venv-mlserver" / "bin" / "python"
MODEL = "churn"
INFER_PATH = f"/v2/models/{MODEL}/infer"
MISSING = (
    "MLServer is not installed: `make mlserver-venv` (or pass --mlserver-python PATH to a Python "
    "with mlserver==1.7.1 and mlserver-sklearn==1.7.1)"
)
_INTEGERS = {"tenure", "senior_citizen"}
_FLOATS = {"monthly_charges", "total_charges"}


def mlserver_python(explicit: Path | None = None) -> Path | None:
    """The Python of an environment where ``mlserver`` and ``mlserver_sklearn`` import, or None."""
    python = explicit or DEFAULT_PYTHON
    if not python.exists():
        return None
    check = subprocess.run(
        [str(python), "-c", "import mlserver, mlserver_sklearn; print(mlserver.__version__)"],
        capture_output=True,
        text=True,
    )
    return python if check.returncode == 0 else None


def mlserver_version(python: Path) -> str:
    code = (
        "import mlserver, sklearn, pandas; "
        "print(mlserver.__version__, sklearn.__version__, pandas.__version__)"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return f"MLServer {out[0]} (scikit-learn {out[1]}, pandas {out[2]})"


def v2_body(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """An Open Inference Protocol V2 request for ``rows`` (pandas codec, one input per feature)."""
    inputs = []
    for name in FEATURES:
        values: list[Any] = [row.get(name) for row in rows]
        data: list[Any]
        if name in _INTEGERS:
            datatype, data = "INT64", [int(v) for v in values]
        elif name in _FLOATS:
            datatype, data = "FP64", [None if v is None or v == "" else float(v) for v in values]
        else:
            datatype, data = "BYTES", [str(v) for v in values]
        inputs.append({"name": name, "shape": [len(rows)], "datatype": datatype, "data": data})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def churn_probabilities(answer: dict[str, Any]) -> list[float]:
    """The churn column of a V2 answer's ``predict_proba`` output (row-major ``[n, 2]``)."""
    (output,) = answer["outputs"]
    data = output["data"]
    return [float(x) for x in data[1::2]]


class MLServerPeer:
    """An MLServer process serving ``pipeline``; :attr:`port` answers V2 requests once started."""

    def __init__(self, python: Path, pipeline: Any, work: Path) -> None:
        import joblib  # heavy: only when the peer really runs

        self.python = python
        self.folder = work / "mlserver"
        model_dir = self.folder / MODEL
        model_dir.mkdir(parents=True, exist_ok=True)
        joblib.dump(pipeline, model_dir / "model.joblib")
        self.port = free_port()
        settings = {
            "http_port": self.port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "parallel_workers": 1,
        }
        (self.folder / "settings.json").write_text(json.dumps(settings))
        model_settings = {
            "name": MODEL,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {
                "uri": str(model_dir / "model.joblib"),
                "version": "v1",
                "extra": {"predict_fn": "predict_proba"},
            },
        }
        (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
        self.process: ChildProcess | None = None

    def start(self, timeout: float = 120.0) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        command = [str(self.python.parent / "mlserver"), "start", str(self.folder)]
        self.process = ChildProcess(command, env, self.folder / "mlserver.log", name="mlserver")
        deadline = time.monotonic() + timeout
        ready = f"http://127.0.0.1:{self.port}/v2/models/{MODEL}/ready"
        while True:
            if not self.process.running():
                raise BenchmarkError(f"MLServer exited early:\n{self.log_tail()}")
            try:
                if httpx.get(ready, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BenchmarkError(f"MLServer was not ready within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.25)

    def probabilities(self, rows: list[dict[str, Any]]) -> list[float]:
        response = httpx.post(f"http://127.0.0.1:{self.port}{INFER_PATH}", json=v2_body(rows), timeout=30)
        if response.status_code != 200:
            raise BenchmarkError(f"MLServer answered {response.status_code}: {response.text[:500]}")
        return churn_probabilities(response.json())

    def log_tail(self) -> str:
        path = self.folder / "mlserver.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.running():
            self.process.stop(timeout=30)  # SIGTERM, then SIGKILL after the timeout


def max_difference(ours: list[float], theirs: list[float]) -> float:
    if len(ours) != len(theirs):
        raise BenchmarkError(f"MLServer answered {len(theirs)} probabilities for {len(ours)} rows")
    return max((abs(a - b) for a, b in zip(ours, theirs, strict=True)), default=math.nan)
