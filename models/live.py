"""The model in use by a long-running process, and how it is replaced while serving.

:class:`LiveModel` holds the current :class:`~models.predictor.Predictor`.
Readers take ``live.predictor`` once per request or batch and keep that
reference until they are done, so work in flight always finishes on the model
it started with. :meth:`LiveModel.refresh` looks at the registry's ``CURRENT``
pointer; when it names a different version it loads that version (sha256
verified by the registry), checks the compiled fast path against sklearn on
probe records and that its reason codes add up to its log-odds there, and
only then swaps the reference — a single attribute assignment, atomic for
readers. A version that fails to load is refused, the
old model keeps serving, and the failure is remembered so a poll loop does not
retry the same broken version every few seconds (``force=True`` retries).

Nothing here knows about asyncio, FastAPI or Faust: the API calls ``refresh``
from a background thread on a timer, the stream scorer between batches.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from models.predictor import Predictor
from models.registry import ModelRegistry

log = logging.getLogger(__name__)

ReloadStatus = Literal["loaded", "unchanged", "refused", "no_model"]


@dataclass(frozen=True)
class ReloadResult:
    """What one :meth:`LiveModel.refresh` did.

    ``status`` is ``loaded`` (a new version now serves), ``unchanged`` (the
    pointer names the version already serving, or a version refused before),
    ``refused`` (the pointed-to version failed verification or loading; the old
    model, if any, still serves) or ``no_model`` (nothing promoted yet).
    """

    status: ReloadStatus
    serving: str | None
    previous: str | None = None
    candidate: str | None = None
    error: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "serving": self.serving,
            "previous": self.previous,
            "candidate": self.candidate,
            "error": self.error,
            "seconds": round(self.seconds, 6),
        }


def default_probe_records(n: int = 64, seed: int = 20240917) -> list[dict[str, Any]]:
    """Varied synthetic customers (some with a blank TotalCharges) to check a fast path against."""
    from training.synthetic import generate  # pandas/numpy work; only when a model is loaded

    frame = generate(n, seed=seed)
    records: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    for record in records[::7]:
        record["total_charges"] = None
    return records


class LiveModel:
    """The current predictor of a serving process; ``refresh`` swaps it safely. Thread-safe."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        probe_records: Sequence[Mapping[str, Any]] | None = None,
        on_change: Callable[[Predictor], None] | None = None,
    ) -> None:
        self.registry = registry
        self._probes = probe_records
        self._on_change = on_change
        self._predictor: Predictor | None = None
        self._refused: str | None = None
        self._lock = threading.Lock()
        self.last_result: ReloadResult | None = None
        self.loaded_at: float | None = None
        self.reloads = 0
        self.failures = 0

    @property
    def predictor(self) -> Predictor | None:
        """The model to use now; take it once and keep the reference for the whole request."""
        return self._predictor

    @property
    def version(self) -> str | None:
        predictor = self._predictor
        return predictor.version if predictor is not None else None

    def refresh(self, *, force: bool = False) -> ReloadResult:
        """Load the promoted version if it is not the one serving; see :class:`ReloadResult`.

        ``force`` retries a version refused earlier (after someone fixed its files).
        """
        with self._lock:
            started = time.perf_counter()
            result = self._refresh_locked(force)
            result = dataclasses.replace(result, seconds=time.perf_counter() - started)
            self.last_result = result
            return result

    def _refresh_locked(self, force: bool) -> ReloadResult:
        serving = self.version
        try:
            wanted = self.registry.current()
        except OSError as exc:
            self.failures += 1
            return ReloadResult("refused", serving, error=f"cannot read the registry pointer: {exc}")
        if wanted is None:
            return ReloadResult("no_model", serving)
        if wanted == serving or (wanted == self._refused and not force):
            return ReloadResult("unchanged", serving, candidate=wanted)
        try:
            predictor = Predictor.from_registry(self.registry, wanted)
            probes = self._probes if self._probes is not None else default_probe_records()
            predictor.check_fast_path(list(probes))
            predictor.check_reasons(list(probes))
        except Exception as exc:  # whatever is wrong with the new version, the old one keeps serving
            self._refused = wanted
            self.failures += 1
            log.error("model_reload_refused candidate=%s serving=%s error=%s", wanted, serving or "none", exc)
            return ReloadResult("refused", serving, previous=serving, candidate=wanted, error=str(exc))
        self._predictor = predictor  # the swap: one reference assignment
        self._refused = None
        self.loaded_at = time.time()
        self.reloads += 1
        log.info(
            "model_loaded version=%s previous=%s model=%s fast_path=%s",
            predictor.version,
            serving or "none",
            predictor.info.selected_model,
            predictor.fast_path,
        )
        if self._on_change is not None:
            self._on_change(predictor)
        return ReloadResult("loaded", predictor.version, previous=serving, candidate=wanted)
