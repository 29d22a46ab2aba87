"""The scoring core shared by the stream scorer, the API and ``churn predict``.

``Predictor`` splits the fitted pipeline into its stateless encoder (first
step) and the fitted rest. It encodes validated records straight into a numpy
matrix — no DataFrame per call — and runs the rest of the pipeline once per
batch, inside sklearn's fast-path configuration (inputs are already known to be
finite and well-typed). The inputs the estimators see are bit-identical to what
``pipeline.predict_proba(frame)`` would feed them, so the probabilities match
the sklearn pipeline. Linear pipelines are additionally compiled to plain numpy
(:mod:`models.fastpath`), which makes a one-record call cost microseconds.

The ``explain_*`` methods take the same inputs as their ``predict_*``
counterparts and return, with the same probabilities, each record's reason
codes (:mod:`models.explain`): one code path for the API, both stream engines
and ``churn predict``.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline

from models.encoding import FeatureEncoder
from models.explain import Contributions, Reason, compile_explainer, reasons
from models.fastpath import compile_tail
from models.store import LoadedModel, ModelStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Explained:
    """Probabilities and, per record, its reasons (see :func:`models.explain.reasons`)."""

    probability: np.ndarray
    reasons: list[list[Reason]]


@dataclass(frozen=True)
class ModelInfo:
    version: str
    selected_model: str
    threshold: float
    created_at: str


class Predictor:
    """Scores customer records with one fitted pipeline; immutable, so safe to share."""

    def __init__(self, pipeline: Pipeline, manifest: dict[str, Any]) -> None:
        encoder = pipeline.steps[0][1]
        if not isinstance(encoder, FeatureEncoder):
            raise TypeError("the pipeline must start with models.encoding.FeatureEncoder")
        self.pipeline = pipeline
        self.manifest = manifest
        self.info = ModelInfo(
            version=str(manifest["version"]),
            selected_model=str(manifest.get("selected_model", "unknown")),
            threshold=float(manifest.get("threshold", 0.5)),
            created_at=str(manifest.get("created_at", "")),
        )
        self._encoder = encoder
        self._rest = pipeline[1:]
        self._fast = compile_tail(self._rest)
        self.fast_path = self._fast is not None
        self._explainer = compile_explainer(self._rest)

    @property
    def explainable(self) -> bool:
        """Whether this model serves reason codes (see :attr:`no_reasons_because`)."""
        return self._explainer.explainable

    @property
    def no_reasons_because(self) -> str | None:
        """Why the model serves no reason codes, or ``None`` when it does."""
        return self._explainer.unavailable

    def check_reasons(self, records: Sequence[Any], tolerance: float = 1e-9) -> None:
        """Check that the reasons add up to sklearn's log-odds on ``records``; else serve none."""
        if not self._explainer.explainable or not records:
            return
        matrix = self._encoder.encode_records(records)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            expected = self._rest.decision_function(matrix)
        if not np.allclose(self._explainer(matrix).log_odds(), expected, rtol=0.0, atol=tolerance):
            log.warning("reason codes do not add up to the log-odds for %s; serving none", self.version)
            self._explainer = dataclasses.replace(
                self._explainer, decompose=None, unavailable="its reason codes failed the load-time check"
            )

    def check_fast_path(self, records: Sequence[Any], tolerance: float = 1e-12) -> None:
        """Compare the compiled scorer with sklearn on ``records``; disable it on any mismatch."""
        if self._fast is None or not records:
            return
        matrix = self._encoder.encode_records(records)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            expected = self._rest.predict_proba(matrix)[:, 1]
        if not np.allclose(self._fast(matrix), expected, rtol=0.0, atol=tolerance):
            log.warning("compiled scorer disagrees with sklearn for %s; using sklearn", self.version)
            self._fast = None
            self.fast_path = False

    @classmethod
    def from_loaded(cls, loaded: LoadedModel) -> Predictor:
        return cls(loaded.pipeline, loaded.manifest)

    @classmethod
    def from_registry(cls, registry: ModelStore, version: str | None = None) -> Predictor:
        """Load (sha256-verified) the given version, the promoted one by default."""
        return cls.from_loaded(registry.load(version))

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def threshold(self) -> float:
        return self.info.threshold

    def predict_batch(self, records: Sequence[Any]) -> np.ndarray:
        """Churn probabilities for validated records (pydantic models or snake_case dicts)."""
        if not records:
            return np.empty(0, dtype=np.float64)
        return self.predict_matrix(self._encoder.encode_records(records))

    def predict_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        """Churn probabilities for ``n`` validated records given column by column (the stream scorer)."""
        if n == 0:
            return np.empty(0, dtype=np.float64)
        return self.predict_matrix(self._encoder.encode_columns(columns, n))

    def predict_one(self, record: Any) -> float:
        """The single-record path: one small matrix, no DataFrame."""
        return float(self.predict_matrix(self._encoder.encode_one(record))[0])

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Churn probabilities for a cleaned frame (see :func:`training.data.clean`)."""
        if frame.empty:
            return np.empty(0, dtype=np.float64)
        return self.predict_matrix(self._encoder.transform(frame))

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        if self._fast is not None:
            return self._fast(matrix)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            proba = self._rest.predict_proba(matrix)
        return np.asarray(proba[:, 1], dtype=np.float64)

    def contributions(self, matrix: np.ndarray) -> Contributions:
        """Every feature's log-odds contribution for an encoded matrix; raises NotExplainableError."""
        return self._explainer(matrix)

    def explain_batch(self, records: Sequence[Any], *, top: int = 3, down: int = 0) -> Explained:
        """:meth:`predict_batch` with each record's ``top`` (and ``down``) reasons."""
        if not records:
            return Explained(np.empty(0, dtype=np.float64), [])
        get = operator.getitem if isinstance(records[0], Mapping) else getattr
        return self._explained(
            self._encoder.encode_records(records), lambda name: [get(r, name) for r in records], top, down
        )

    def explain_columns(
        self, columns: Mapping[str, Sequence[Any]], n: int, *, top: int = 3, down: int = 0
    ) -> Explained:
        """:meth:`predict_columns` with each record's ``top`` (and ``down``) reasons."""
        if n == 0:
            return Explained(np.empty(0, dtype=np.float64), [])
        return self._explained(self._encoder.encode_columns(columns, n), columns.__getitem__, top, down)

    def explain_one(self, record: Any, *, top: int = 3, down: int = 0) -> tuple[float, list[Reason]]:
        """:meth:`predict_one` with the record's ``top`` (and ``down``) reasons."""
        get = operator.getitem if isinstance(record, Mapping) else getattr
        explained = self._explained(
            self._encoder.encode_one(record), lambda name: [get(record, name)], top, down
        )
        return float(explained.probability[0]), explained.reasons[0]

    def explain_frame(self, frame: pd.DataFrame) -> tuple[np.ndarray, Contributions]:
        """:meth:`predict_frame` with every feature's contribution (for column-wise output)."""
        matrix = self._encoder.transform(frame)
        return self.predict_matrix(matrix), self.contributions(matrix)

    def _explained(
        self, matrix: np.ndarray, column: Callable[[str], Sequence[Any]], top: int, down: int
    ) -> Explained:
        contributions = self.contributions(matrix)  # first: refuse before scoring when unexplainable
        probability = self.predict_matrix(matrix)
        return Explained(probability, reasons(contributions, column, top=top, down=down))

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """Churn yes/no at the model's threshold."""
        return np.asarray(probabilities >= self.threshold)
