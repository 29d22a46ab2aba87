# churn-stream images: one Dockerfile, one target per role. Always name the target:
#
#   serving   base dependencies only (no matplotlib, no embedded dev broker); no probe.
#             `churn produce`, `churn predict`, `churn models ...`
#   scorer    serving + `churn score`, probed on the scorer's readiness endpoint (:6066)
#   api       serving + `churn api`, probed on the API's readiness endpoint (:8000)
#   training  serving's dependencies + the `training` extra (matplotlib); `churn train`, no probe
#
#   docker build --target api -t churn-stream-api:0.1.0 .
#   docker compose build                       # builds every target docker-compose.yml uses
#
# Dependencies are installed from deploy/requirements/*.txt, which pin every package with the
# sha256 of each of its files (`make lock` regenerates them from pyproject.toml; docs/deploy.md).
# Every stage runs as uid/gid 10001, so Kubernetes' runAsNonRoot can verify it.

# python:3.11.14-slim-bookworm, pinned to the digest of its multi-architecture index.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS python-base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# --- the project's wheel, built with locked build tools --------------------------------------
FROM python-base AS wheel
WORKDIR /src
COPY deploy/requirements/build.txt /tmp/build.txt
RUN pip install --no-cache-dir --require-hashes -r /tmp/build.txt
# The whole context (.dockerignore keeps tests, docs, data and model stores out); the wheel
# holds only the packages pyproject.toml lists, so nothing else reaches a runtime image.
COPY . .
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

# --- virtualenvs without pip: locked dependencies first (cached while only sources change) ----
FROM python-base AS serving-venv
COPY deploy/requirements/serving.txt /tmp/requirements.txt
RUN python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install --no-cache-dir --require-hashes -r /tmp/requirements.txt
COPY --from=wheel /wheels /wheels
RUN pip --python /opt/venv/bin/python install --no-cache-dir --no-deps --no-index /wheels/*.whl \
 && pip --python /opt/venv/bin/python check

FROM python-base AS training-venv
COPY deploy/requirements/training.txt /tmp/requirements.txt
RUN python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install --no-cache-dir --require-hashes -r /tmp/requirements.txt
COPY --from=wheel /wheels /wheels
RUN pip --python /opt/venv/bin/python install --no-cache-dir --no-deps --no-index /wheels/*.whl \
 && pip --python /opt/venv/bin/python check

# --- what every runtime image shares: no installer, a numeric non-root user ------------------
FROM python-base AS runtime
LABEL org.opencontainers.image.title="churn-stream" \
      org.opencontainers.image.description="Streaming customer-churn scoring: Kafka + Faust + scikit-learn + FastAPI" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    CHURN_MODEL_STORE=/models \
    CHURN_API_HOST=0.0.0.0 \
    CHURN_SCORER_WEB_HOST=0.0.0.0
# The base image's pip/setuptools/wheel are not needed at run time (the venvs have none either).
# /models is owned by 10001 so a fresh named volume mounted there is writable by the trainer.
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
 && groupadd --gid 10001 churn \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin churn \
 && mkdir -p /models \
 && chown 10001:10001 /models
WORKDIR /tmp
USER 10001:10001
ENTRYPOINT ["churn"]

# --- serving: the scorer's and the API's dependencies, nothing for training or development ---
FROM runtime AS serving
COPY --from=serving-venv /opt/venv /opt/venv
# Which probe fits depends on the command; the scorer and api targets set theirs.
HEALTHCHECK NONE
CMD ["--help"]

# --- training: one-shot `churn train` ------------------------------------------------------
FROM runtime AS training
ENV MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib
COPY --from=training-venv /opt/venv /opt/venv
HEALTHCHECK NONE
CMD ["train"]

# --- scorer: `churn score`; healthy once ready (assigned, model loaded, broker reachable) ---
FROM serving AS scorer
EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "monitoring.healthcheck", "http://127.0.0.1:6066/health/ready"]
CMD ["score"]

# --- api: `churn api`; healthy once a model is loaded ---------------------------------------
FROM serving AS api
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "monitoring.healthcheck", "http://127.0.0.1:8000/health/ready"]
CMD ["api"]
