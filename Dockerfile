# syntax=docker/dockerfile:1
# churn-stream: one image for every component (train, score, api, produce).
# Build:  docker build -t churn-stream:0.1.0 .
# Run:    docker run --rm churn-stream:0.1.0 --help

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- builder: a wheel of the project and a virtualenv with it and its runtime deps ----------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first (cached while only the sources change), then the sources.
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY config ./config
COPY models ./models
COPY kafka_io ./kafka_io
COPY training ./training
COPY producer ./producer
COPY scorer ./scorer
COPY api ./api
COPY monitoring ./monitoring
COPY devstack ./devstack
COPY benchmarks ./benchmarks
COPY cli ./cli
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && pip install /wheels/*.whl \
 && pip check

# --- runtime: the virtualenv only, no compilers, no dev extras, not root ---------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="churn-stream" \
      org.opencontainers.image.description="Streaming customer-churn scoring: Kafka + Faust + scikit-learn + FastAPI" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLBACKEND=Agg \
    CHURN_MODEL_STORE=/models \
    CHURN_API_HOST=0.0.0.0 \
    CHURN_SCORER_WEB_HOST=0.0.0.0
RUN groupadd --system --gid 10001 churn \
 && useradd --system --uid 10001 --gid churn --home-dir /home/churn --create-home --shell /usr/sbin/nologin churn \
 && mkdir -p /models \
 && chown churn:churn /models
# /models is owned by churn so a fresh named volume mounted there is writable.
COPY --from=builder /opt/venv /opt/venv
WORKDIR /home/churn
USER churn:churn
EXPOSE 8000 6066
# Probes the API by default; compose points the scorer's probe at its web port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "monitoring.healthcheck"]
ENTRYPOINT ["churn"]
CMD ["--help"]
