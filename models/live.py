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

Nothing here knows about asyncio, FastAPI, Faust or Prometheus: the API calls
``refresh`` from a background thread on a timer, the stream scorer between
batches, and both pass their metrics as :class:`ModelEvents`, told of every
version loaded and every one refused.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from models.predictor import Predictor
from models.probes import probe_records
from models.registry import ModelRegistry, RegistryError

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


class ModelEvents(Protocol):
    """Who hears what :meth:`LiveModel.refresh` did (the process's metrics)."""

    def model_loaded(self, version: str, model: str) -> None:
        """``version`` (of the ``model`` candidate) serves from now on."""
        ...

    def model_refused(self) -> None:
        """A promoted version was refused, or the registry pointer could not be read."""
        ...


class LiveModel:
    """The current predictor of a serving process; ``refresh`` swaps it safely. Thread-safe."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        probes: Sequence[Mapping[str, Any]] | None = None,
        events: ModelEvents | None = None,
    ) -> None:
        self.registry = registry
        self._probes = probes
        self._events = events
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

    @classmethod
    def load(cls, registry: ModelRegistry, *, events: ModelEvents | None = None) -> LiveModel:
        """A live model already serving the promoted version; :class:`RegistryError` when none is usable."""
        live = cls(registry, events=events)
        result = live.refresh()
        if live.predictor is None:
            raise RegistryError(result.error or f"no promoted model in {registry.root}")
        return live

    @property
    def current(self) -> Predictor:
        """The model to use now, in a process that started only once one was loaded."""
        predictor = self._predictor
        if predictor is None:
            raise RegistryError(f"no model is loaded from {self.registry.root}")
        return predictor

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
            self._tell(result)
            return result

    def _tell(self, result: ReloadResult) -> None:
        if self._events is None:
            return
        if result.status == "refused":
            self._events.model_refused()
        elif result.status == "loaded":
            self._events.model_loaded(self.current.version, self.current.info.selected_model)

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
            probes = self._probes if self._probes is not None else probe_records()
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
        return ReloadResult("loaded", predictor.version, previous=serving, candidate=wanted)
