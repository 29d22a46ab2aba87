"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.prometheus import PrometheusServer

StartPrometheus = Callable[..., PrometheusServer]


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[StartPrometheus]:
    """Start a real Prometheus scraping the given targets; stopped after the test.

    Usage: ``prom = prometheus_server(scorer_targets=["127.0.0.1:6066"], api_targets=[...])``.
    """
    started: list[PrometheusServer] = []

    def start(
        scorer_targets: Sequence[str] = (), api_targets: Sequence[str] = (), **options: object
    ) -> PrometheusServer:
        workdir = tmp_path / f"prometheus-{len(started)}"
        workdir.mkdir()
        server = PrometheusServer(workdir, scorer_targets, api_targets, **options)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
