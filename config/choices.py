"""The allowed values of the enumerated settings, as ``Literal`` types.

``config.settings`` validates the ``CHURN_*`` variables with them and the CLI
offers them as choices (``churn score --engine {faust,native}``). This module
imports nothing heavy, so the ``churn`` command can use them without loading
pydantic-settings for ``--help``.
"""

from __future__ import annotations

from typing import Literal

ScorerEngine = Literal["faust", "native"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]
RateLimitBy = Literal["address", "key"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
