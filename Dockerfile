# syntax=docker/dockerfile:1
# model-exporter: the sidecar image (also the model simulator of the compose demo).
#
#   docker build -t model-exporter .
#   docker run --rm -v /path/to/logs:/var/log/model:ro \
#     -v $PWD/config/exporter.yaml:/etc/model-exporter/exporter.yaml:ro -p 10027:10027 model-exporter

# --- build: a wheel of the package and of every dependency, at the locked versions ---------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A C compiler for the native JSON scanner (exporter/_scan.c); only this stage has one: the
# runtime stage installs the built wheel. The Python headers come with the python image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY requirements/lock.txt ./requirements/
COPY exporter ./exporter
RUN pip wheel --wheel-dir /wheels --constraint requirements/lock.txt .

# --- runtime: the wheels installed, nothing else --------------------------------------------------
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The wheels are bind-mounted from the build stage, so they never become a layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels model-exporter \
 && python -c "import exporter._scan"
# A fixed, unprivileged UID, so volume permissions (the log, the positions file) can be granted
# to it ahead of time; Kubernetes manifests set the same runAsUser.
RUN groupadd --system --gid 10001 model-exporter \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin model-exporter \
 && mkdir -p /etc/model-exporter /var/lib/model-exporter /var/log/model \
 && chown 10001:10001 /var/lib/model-exporter /var/log/model
COPY config/exporter.yaml /etc/model-exporter/exporter.yaml
USER 10001:10001
# The positions file lives here; mount a volume to keep positions across container restarts.
VOLUME ["/var/lib/model-exporter"]
EXPOSE 10027
# Liveness (/healthz: ingestion runs and /metrics renders; /readyz is for load balancers and
# Kubernetes readiness). No curl in the slim image: ask with the interpreter already there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:10027/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["model-exporter"]
CMD ["run", "--config", "/etc/model-exporter/exporter.yaml"]
