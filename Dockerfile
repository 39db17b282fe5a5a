# wanmock: the fake Wan video-generation providers as a container.
#
#   docker build -t wanmock .
#   docker run --rm -p 127.0.0.1:8000:8000 wanmock
#   docker run --rm -p 127.0.0.1:8000:8000 -e WANMOCK_SEED=1 -e WANMOCK_TIMING=instant wanmock
#
# Every `wanmock serve` option is also an environment variable (WANMOCK_<OPTION>: WANMOCK_STORE,
# WANMOCK_WORKERS, WANMOCK_PUBLIC_URL, ...), so an orchestrator needs no command line; flags
# after the image name win (`docker run wanmock serve --seed 1`). Any Debian-based Python 3.11
# image works as BASE (python3 is found on PATH: /usr/local/bin in the official image,
# /usr/bin in Debian's). See docs/containers.md.
ARG BASE=docker.io/library/python:3.11-slim

# -- build: the wanmock wheel and a wheel of every dependency ---------------------------------
FROM ${BASE} AS build
WORKDIR /src
# A venv, not the system's pip: Debian's python3 refuses system-wide installs (PEP 668).
RUN python3 -m venv /opt/build
COPY pyproject.toml README.md ARCHITECTURE.md ./
COPY contracts ./contracts
COPY mockserver ./mockserver
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/build/bin/pip wheel --disable-pip-version-check --wheel-dir /wheels . \
    && cd /wheels && sha256sum *.whl > /wheels.sha256

# -- runtime: the wheels installed into a venv, nothing else ----------------------------------
FROM ${BASE}
# The wheels' digests, copied: a bind mount from another stage is not part of a step's cache
# key under podman/buildah, so without this a rebuild after a code change would reuse the
# install step below and ship the old code.
COPY --from=build /wheels.sha256 /opt/wanmock-wheels.sha256
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python3 -m venv /opt/wanmock \
    && /opt/wanmock/bin/pip install --disable-pip-version-check --no-cache-dir --no-index \
       --find-links /wheels wanmock \
    && rm -rf /root/.cache
# A user of its own, written into /etc/passwd directly: a minimal Debian base has no useradd.
RUN echo "wanmock:x:10001:10001:wanmock:/var/lib/wanmock:/usr/sbin/nologin" >> /etc/passwd \
    && echo "wanmock:x:10001:" >> /etc/group \
    && mkdir -p /var/lib/wanmock \
    && chown 10001:10001 /var/lib/wanmock
USER 10001:10001
WORKDIR /var/lib/wanmock
# Bound to every interface inside the container (--allow-remote, which also makes the control
# API and dashboard ask for a control token: set WANMOCK_CONTROL_TOKEN, or read the one printed
# at start). Result videos are cached under the user's home.
ENV PATH=/opt/wanmock/bin:$PATH \
    HOME=/var/lib/wanmock \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WANMOCK_HOST=0.0.0.0 \
    WANMOCK_PORT=8000 \
    WANMOCK_ALLOW_REMOTE=true \
    WANMOCK_VIDEO_DIR=/var/lib/wanmock/videos
# The contracts' OpenAPI check, done once here: every start then finds its verdict in
# ~/.cache/wanmock (docs/contracts.md) and is serving in under a second.
RUN python3 -c "from mockserver.contracts import load; load()" \
    && test -n "$(ls "$HOME/.cache/wanmock/validated")"
EXPOSE 8000
# GET /_wanmock/health: 200 while the fake answers and its store is reachable (no token needed).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-m", "mockserver.healthcheck"]
# uvicorn stops on SIGTERM: open requests end, webhook deliveries owed are handed to the
# store's other workers (docs/containers.md).
STOPSIGNAL SIGTERM
ENTRYPOINT ["wanmock"]
CMD ["serve"]
