# The naive way to build ClickVote for several platforms, for benchmarks/build.py
# only: apt and pip run INSIDE each target platform, i.e. under QEMU for arm64/armv7.
# It installs the same things as docker/Dockerfile's app target (libpq included).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
WORKDIR /app
COPY pyproject.toml README.md* ./
COPY clickvote ./clickvote
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then export PIP_CERT=/run/secrets/extra_ca; fi \
 && apt-get update -q && apt-get install -q -y --no-install-recommends libpq5 \
 && rm -rf /var/lib/apt/lists/* \
 && { [ -f README.md ] || : > README.md; } \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -q .
ENTRYPOINT ["/opt/venv/bin/clickvote"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--data-dir", "/data"]
