# slamon worker image (used by docker-compose.yml): `slamon worker`, configured by SLAMON_* variables.
#   docker build -t slamon .
#   docker run --rm slamon slamon worker --help
#
# Reproducible: the Python packages come from requirements.lock (exact versions and sha256 hashes, generated from
# pyproject.toml by `make lock`), the base image is pinned by tag and, when BASE_DIGEST is given, by digest:
#   docker buildx imagetools inspect python:3.11.11-slim-bookworm     # prints "Digest: sha256:..."
#   docker build --build-arg BASE_DIGEST=@sha256:<that digest> -t slamon .
# BASE_DIGEST includes the leading "@". It is empty by default because the digest could not be looked up where this
# file was written (no access to Docker Hub): refresh it with the command above whenever the tag is changed, and
# pass it in CI (a tag can be re-pushed, a digest cannot).
ARG BASE_DIGEST=""
FROM python:3.11.11-slim-bookworm${BASE_DIGEST}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Every dependency has a manylinux wheel for CPython 3.11 (faust-streaming, rocksdict, aiokafka, orjson, ...),
# so the slim image needs no compiler.
# the locked dependencies first (their layer is reused while requirements.lock is unchanged), each checked
# against its hash; then the package itself without resolving anything again
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY monitor ./monitor
# monitor/catalogue/data links to topics/: the catalogue and schemas are package data of the installed package
COPY topics ./topics
RUN pip install . --no-deps \
    && pip check \
    && groupadd --system --gid 10001 slamon \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /app slamon \
    && mkdir -p /data \
    && chown slamon /data
ENV SLAMON_WEB_HOST=0.0.0.0 \
    SLAMON_WEB_PORT=6066 \
    SLAMON_DATA_DIR=/data \
    SLAMON_STORE=rocksdb://

USER slamon
EXPOSE 6066
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=6 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:6066/readyz', timeout=4).status != 200)"]
CMD ["slamon", "worker"]
