"""What a benchmark tells its caller while it runs, and the error that ends it.

The ``churn bench`` commands pass their rich console, which has both methods.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol


class Progress(Protocol):
    def status(self, status: str) -> AbstractContextManager[Any]:
        """A message shown while the block runs (a spinner in a terminal)."""
        ...

    def print(self, *objects: Any) -> None:
        """A line for the person running the benchmark (rich markup allowed)."""
        ...


class BenchmarkError(RuntimeError):
    """A benchmark cannot be carried out or a run failed; the message says why."""
