"""Metrics of a server with several worker processes (``churn api --workers N``).

prometheus-client's multiprocess mode: with ``PROMETHEUS_MULTIPROC_DIR`` set
before ``prometheus_client`` is imported, every counter, gauge and histogram
cell is a memory-mapped file per process in that directory, and
:class:`prometheus_client.multiprocess.MultiProcessCollector` adds them up at
scrape time, whichever worker answers. Counters of exited workers stay in the
sum, so totals never go backwards when a worker is replaced.

Collectors that read the running process (``process_*``, ``python_gc_*``)
would describe only the worker that happens to answer the scrape.
:class:`WorkerProcessCollector` reports ``process_*`` of every live process
that wrote to the directory, and of the supervisor that started them, each
with a ``pid`` label; ``python_gc_*`` is not exported in this mode (it can
only be read from inside each process).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client import values as client_values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

#: ``counter_1234.db``, ``gauge_livemax_1234.db``: the writer's pid ends the name.
_PID_IN_NAME = re.compile(r"_(\d+)\.db$")


def multiprocess_enabled() -> bool:
    """True when prometheus_client stores values in per-process files (it decided at import)."""
    return bool(getattr(client_values.ValueClass, "_multiprocess", False))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class WorkerProcessCollector:
    """``process_*`` of the supervisor and of each live worker writing to ``directory``, labelled ``pid``."""

    def __init__(self, directory: Path, supervisor: int | None) -> None:
        self.directory = directory
        self.supervisor = supervisor

    def pids(self) -> list[int]:
        found = {int(m.group(1)) for f in os.listdir(self.directory) if (m := _PID_IN_NAME.search(f))}
        if self.supervisor is not None:
            found.add(self.supervisor)
        return sorted(pid for pid in found if _alive(pid))

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for pid in self.pids():
            reader = ProcessCollector(pid=lambda pid=pid: pid, registry=None)  # type: ignore[misc]
            for family in reader.collect():
                target = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    target.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from merged.values()


def exposition_registry(directory: Path, supervisor: int | None) -> CollectorRegistry:
    """The registry ``/metrics`` serves: every worker's series summed, plus each process's ``process_*``."""
    if not multiprocess_enabled():
        raise RuntimeError(
            f"metrics directory {directory} given, but PROMETHEUS_MULTIPROC_DIR was not set "
            "before prometheus_client was imported: the workers' values would not reach it"
        )
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    registry.register(WorkerProcessCollector(directory, supervisor))
    return registry
