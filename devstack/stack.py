"""Run the local stack as child processes and stop all of them together (``churn up``).

The :class:`Stack` owns everything it starts: the embedded broker (only when
nothing listens at the bootstrap address), the scorer, the online-quality job,
the API and a demo producer that also publishes the customers' outcomes a few
seconds after their events, so live model quality shows at once.
:meth:`Stack.stop` stops them in reverse order — producer first, broker last —
with SIGTERM, then SIGKILL after a grace period, so nothing is left running.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import Settings
from devstack.broker import EmbeddedBroker
from devstack.ports import port_open, split_bootstrap
from devstack.processes import ChurnProcess, QualityProcess, ScorerProcess
from models.store import ModelStore

log = logging.getLogger(__name__)


@dataclass
class Stack:
    settings: Settings
    logs_dir: Path
    demo_rate: float = 20.0
    with_api: bool = True
    #: Seconds between a demo event and its outcome.
    outcome_delay_s: float = 5.0
    broker: EmbeddedBroker | None = None
    children: list[ChurnProcess] = field(default_factory=list)

    # ------------------------------------------------------------------ start
    def ensure_broker(self) -> str:
        """Start the embedded broker unless something already listens at the bootstrap address."""
        host, port = split_bootstrap(self.settings.kafka_bootstrap_servers)
        if port_open(host, port):
            log.info("using the Kafka broker already listening at %s:%d", host, port)
            return "existing"
        self.broker = EmbeddedBroker(port=port, host=host, log_path=self.logs_dir / "broker.log").start()
        return "embedded"

    def needs_model(self) -> bool:
        return ModelStore(self.settings.model_store).current() is None

    def train_model(self, rows: int = 7043, candidates: list[str] | None = None) -> ChurnProcess:
        """Start ``churn train`` (synthetic data, promote) as a child, so a Ctrl-C can stop it too."""
        args = ["train", "--store", str(self.settings.model_store), "--rows", str(rows), "--no-plots"]
        for candidate in candidates or []:
            args += ["--candidate", candidate]
        return self._started(ChurnProcess(args, self._env(), self._log("train"), new_session=True))

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["CHURN_KAFKA_BOOTSTRAP_SERVERS"] = self.settings.kafka_bootstrap_servers
        env["CHURN_MODEL_STORE"] = str(Path(self.settings.model_store).resolve())
        env["CHURN_SCORER_WEB_PORT"] = str(self.settings.scorer_web_port)
        env["CHURN_API_PORT"] = str(self.settings.api_port)
        env["CHURN_EVENTS_TOPIC"] = self.settings.events_topic
        env["CHURN_PREDICTIONS_TOPIC"] = self.settings.predictions_topic
        env["CHURN_DLQ_TOPIC"] = self.settings.dlq_topic
        env["CHURN_OUTCOMES_TOPIC"] = self.settings.outcomes_topic
        env["CHURN_OUTCOMES_DLQ_TOPIC"] = self.settings.outcomes_dlq_topic
        env["CHURN_SHADOW_PREDICTIONS_TOPIC"] = self.settings.shadow_predictions_topic
        env["CHURN_QUALITY_WEB_PORT"] = str(self.settings.quality_web_port)
        return env

    def _log(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def _started(self, child: ChurnProcess) -> ChurnProcess:
        self.children.append(child)
        log.info("started %s pid=%d log=%s", child.name, child.pid, child.log_path)
        return child

    def start_services(self) -> None:
        s = self.settings
        env = self._env()
        self._started(ScorerProcess(env, self._log("scorer"), new_session=True, host=s.scorer_web_host))
        self._started(QualityProcess(env, self._log("quality"), new_session=True, host=s.quality_web_host))
        if self.with_api:
            api_url = f"http://{s.api_host}:{s.api_port}"
            self._started(ChurnProcess(["api"], env, self._log("api"), new_session=True, url=api_url))
        produce = ["produce", "--rate", f"{self.demo_rate:g}", "--outcomes"]
        produce += ["--outcome-delay", f"{self.outcome_delay_s:g}"]
        self._started(ChurnProcess(produce, env, self._log("producer"), new_session=True, name="producer"))

    # ------------------------------------------------------------------ run
    def first_exited(self) -> ChurnProcess | None:
        """The first long-running child that has exited (the one-shot ``train`` child excluded)."""
        for child in self.children:
            if child.name != "train" and not child.running():
                return child
        return None

    # ------------------------------------------------------------------ stop
    def stop(self, grace: float = 20.0) -> None:
        """Stop children newest first (SIGTERM, then SIGKILL after ``grace``), then the broker."""
        for child in reversed(self.children):
            code = child.stop(timeout=grace)
            log.info("stopped %s pid=%d exit=%s", child.name, child.pid, code)
        if self.broker is not None:
            self.broker.stop()
