"""The model in use by a long-running process, and how it is replaced while serving.

:class:`LiveModel` holds the current :class:`~models.predictor.Predictor`.
Readers take ``live.predictor`` once per request or batch and keep that
reference until they are done, so work in flight always finishes on the model
it started with. :meth:`LiveModel.refresh` looks at the registry's ``CURRENT``
pointer; when it names a different version it test-loads that version
(:meth:`models.registry.ModelRegistry.vet`: integrity, signature, the compiled
fast path against sklearn, reason codes, probe predictions) and only then swaps
the reference — a single attribute assignment, atomic for readers. A version
that fails is refused and the failure is remembered, so a poll loop does not
retry the same broken version every few seconds (``force=True`` retries).

When ``CURRENT`` cannot be loaded the process falls back, loudly (an ERROR log
line and ``model_is_fallback(True)`` to its metrics): it keeps the model it was
serving, or — at start-up, with nothing serving yet — loads the newest version
of the promotion history that passes the same checks. It leaves the fallback as
soon as ``CURRENT`` loads.

A second :class:`LiveModel` with ``role="challenger"`` follows the ``CHALLENGER``
pointer the same way (same checks, same atomic swap), for shadow scoring. It
differs in two things: when the pointer is removed it drops its model (its
``predictor`` becomes ``None``), and when the named version fails it serves no
challenger rather than a fallback — a shadow is never worth serving the wrong model.

Nothing here knows about asyncio, FastAPI, Faust or Prometheus: the API calls
``refresh`` from a background thread on a timer, the stream scorer between
batches, and both pass their metrics as :class:`ModelEvents`, told of every
version loaded and refused, and of every fallback begun or ended.
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
from models.registry import ModelRegistry, RegistryError

log = logging.getLogger(__name__)

ReloadStatus = Literal["loaded", "unchanged", "refused", "no_model"]
Role = Literal["champion", "challenger"]


@dataclass(frozen=True)
class ReloadResult:
    """What one :meth:`LiveModel.refresh` did.

    ``status`` is ``loaded`` (a new version now serves), ``unchanged`` (the
    pointer names the version already serving, or a version refused before),
    ``refused`` (the pointed-to version failed verification or loading; the old
    model, if any, still serves) or ``no_model`` (nothing promoted yet).
    ``fallback`` is true while the version serving is not ``CURRENT`` because
    ``CURRENT`` was refused. ``error`` says why a version was refused, in words
    fit for a client (no paths, no hashes); the log has the details.
    """

    status: ReloadStatus
    serving: str | None
    previous: str | None = None
    candidate: str | None = None
    error: str | None = None
    seconds: float = 0.0
    fallback: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "serving": self.serving,
            "previous": self.previous,
            "candidate": self.candidate,
            "error": self.error,
            "seconds": round(self.seconds, 6),
            "fallback": self.fallback,
        }


class ModelEvents(Protocol):
    """Who hears what :meth:`LiveModel.refresh` did (the process's metrics)."""

    def model_loaded(self, version: str, model: str) -> None:
        """``version`` (of the ``model`` candidate) serves from now on."""
        ...

    def model_refused(self) -> None:
        """A promoted version was refused, or the registry pointer could not be read."""
        ...

    def model_is_fallback(self, active: bool) -> None:
        """Whether the version serving now is a fallback for a ``CURRENT`` that was refused."""
        ...


class LiveModel:
    """The current predictor of a serving process; ``refresh`` swaps it safely. Thread-safe."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        probes: Sequence[Mapping[str, Any]] | None = None,
        events: ModelEvents | None = None,
        role: Role = "champion",
    ) -> None:
        self.registry = registry
        self.role = role
        self._probes = probes
        self._events = events
        self._predictor: Predictor | None = None
        self._refused: str | None = None
        self._fallback = False
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
    def fallback(self) -> bool:
        """Whether the version serving is a fallback for a ``CURRENT`` that was refused."""
        return self._fallback

    @classmethod
    def load(cls, registry: ModelRegistry, *, events: ModelEvents | None = None) -> LiveModel:
        """A live model already serving the promoted version (or the last good one, see the module
        docstring); :class:`RegistryError` when none is usable."""
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
        predictor = self._predictor
        swapped = result.status == "loaded" or (result.fallback and result.previous != result.serving)
        if swapped and predictor is not None:
            self._events.model_loaded(predictor.version, predictor.info.selected_model)
        self._events.model_is_fallback(result.fallback)

    def _refresh_locked(self, force: bool) -> ReloadResult:
        serving = self.version
        try:
            wanted = self.registry.challenger() if self.role == "challenger" else self.registry.current()
        except OSError as exc:
            self.failures += 1
            log.error("model_pointer_unreadable error=%r", exc)
            reason = exc.strerror or type(exc).__name__
            error = f"cannot read the registry pointer ({reason})"
            return ReloadResult("refused", serving, error=error, fallback=self._fallback)
        if wanted is None:
            if self.role == "challenger" and serving is not None:
                self._predictor = None  # the challenger was cleared: shadow scoring stops
                self._refused = None
                log.info("challenger_cleared previous=%s", serving)
                return ReloadResult("no_model", None, previous=serving)
            return ReloadResult("no_model", serving, fallback=self._fallback)
        if wanted == serving:
            self._fallback = False
            return ReloadResult("unchanged", serving, candidate=wanted)
        if wanted == self._refused and not force:
            return ReloadResult("unchanged", serving, candidate=wanted, fallback=self._fallback)
        try:
            predictor = self.registry.vet(wanted, self._probes)
        except Exception as exc:  # whatever is wrong with the new version, the old one keeps serving
            return self._refuse(wanted, serving, exc)
        self._serve(predictor)
        self._refused = None
        self._fallback = False
        log.info(
            "model_loaded role=%s version=%s previous=%s model=%s fast_path=%s",
            self.role,
            predictor.version,
            serving or "none",
            predictor.info.selected_model,
            predictor.fast_path,
        )
        return ReloadResult("loaded", predictor.version, previous=serving, candidate=wanted)

    def _refuse(self, wanted: str, serving: str | None, exc: Exception) -> ReloadResult:
        """``wanted`` failed: remember it, and fall back to the model serving or the last good one."""
        self._refused = wanted
        self.failures += 1
        error = str(exc) if isinstance(exc, RegistryError) else f"it failed to load ({type(exc).__name__})"
        log.error(
            "model_reload_refused role=%s candidate=%s serving=%s error=%s",
            self.role,
            wanted,
            serving or "none",
            exc,
        )
        if self.role == "challenger":  # no fallback for a shadow: serve no challenger until fixed
            self._predictor = None
            return ReloadResult("refused", None, previous=serving, candidate=wanted, error=error)
        now = serving
        if now is None:
            fallback = self._last_good(exclude=wanted)
            if fallback is not None:
                self._serve(fallback)
                now = fallback.version
        self._fallback = now is not None
        if self._fallback:
            log.error(
                "model_fallback serving=%s current=%s: CURRENT cannot be loaded; serving the last good "
                "version until CURRENT is fixed or another version is promoted",
                now,
                wanted,
            )
        return ReloadResult(
            "refused", now, previous=serving, candidate=wanted, error=error, fallback=self._fallback
        )

    def _last_good(self, exclude: str) -> Predictor | None:
        """The newest version of the promotion history, other than ``exclude``, that passes the checks."""
        try:
            history = self.registry.history()
        except (OSError, ValueError) as exc:
            log.error("model_history_unreadable error=%r", exc)
            return None
        tried = {exclude}
        for version in reversed(history):
            if version in tried:
                continue
            tried.add(version)
            try:
                return self.registry.vet(version, self._probes)
            except Exception as exc:
                log.error("model_fallback_refused version=%s error=%s", version, exc)
        return None

    def _serve(self, predictor: Predictor) -> None:
        self._predictor = predictor  # the swap: one reference assignment
        self.loaded_at = time.time()
        self.reloads += 1
