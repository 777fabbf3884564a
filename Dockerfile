# newswatch: news feeds → rules → Slack / email alerts.
#   docker build -t newswatch .
#   docker run -v "$PWD/config:/config" -v newswatch-data:/data newswatch
# BASE_IMAGE lets CI build from a local Debian image (see scripts/container-smoke).
ARG BASE_IMAGE=python:3.12-slim

# --- build: a venv with the locked dependencies (hash-checked) and newswatch itself
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/newswatch
COPY requirements.lock /src/requirements.lock
RUN /opt/newswatch/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: \
        -r /src/requirements.lock
COPY pyproject.toml README.md /src/
COPY bot /src/bot
RUN /opt/newswatch/bin/pip install --no-cache-dir --no-deps --no-build-isolation --no-index /src \
    && /opt/newswatch/bin/pip uninstall --yes setuptools

# --- runtime: only the venv, the default config and an unprivileged user
FROM ${BASE_IMAGE}
ARG UID=10001
RUN useradd --uid "${UID}" --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin newswatch \
    && mkdir /data \
    && chown "${UID}:${UID}" /data
COPY --from=build /opt/newswatch /opt/newswatch
COPY config /config
# The shipped settings.yaml listens on ${NEWSWATCH_SERVER_HOST:-127.0.0.1}: all
# interfaces here, so a published port reaches /healthz and /metrics.
ENV PATH=/opt/newswatch/bin:$PATH \
    NEWSWATCH_CONFIG=/config \
    NEWSWATCH_SERVER_HOST=0.0.0.0 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The shipped store is sqlite:data/newswatch.db, relative to the working directory.
WORKDIR /
VOLUME /data
USER ${UID}:${UID}
EXPOSE 8080
# Reads the port from the config in use, then GETs /healthz on 127.0.0.1.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-m", "bot.service.health"]
ENTRYPOINT ["newswatch"]
CMD ["run"]
