# medcell-gateway: nginx as the HTTPS entry point routing /f/<slug>/ to the facility sockets, with
# the Python control plane and activator (gateway/). Built by deploy/build-images.sh from a staged
# context (gateway/, the activator's gunicorn config, wheels/). The offline base has nginx already.
ARG BASE_IMAGE=medcell-base:bookworm

# The virtualenv is made in its own stage so the wheels never end up in a layer of the image.
FROM ${BASE_IMAGE} AS venv
COPY wheels/ /tmp/wheels/
# `python3 -m venv` works on both bases (Debian's /usr/bin/python3, the slim image's /usr/local);
# pip and setuptools come from the Python's bundled ensurepip wheels, so no network is needed.
# requirements.txt is the image's lock file (deploy/locks/): every package pinned, every file
# checked against its sha256, nothing installed that the lock does not name.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-index --find-links /tmp/wheels \
        --requirement /tmp/wheels/requirements.txt \
    && /opt/venv/bin/pip uninstall --yes --quiet setuptools

FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG MEDCELL_VERSION=dev
# A registry base (python:3.11-slim-bookworm) has no nginx: take Debian's package then. Its default
# site and log directories are never used (the gateway renders its own configuration under /tmp).
RUN if ! command -v nginx >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && nginx -v
LABEL org.opencontainers.image.title="medcell-gateway" \
      org.opencontainers.image.description="medcell gateway: HTTPS entry point routing to the facility containers" \
      org.opencontainers.image.version="${MEDCELL_VERSION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# A fixed uid lets the provisioner and the mounted files agree on ownership without looking it up.
# Debian's essential variant has no useradd, so fall back to writing the account entries directly.
RUN if command -v useradd >/dev/null 2>&1; then \
        groupadd --system --gid 10001 medcell \
        && useradd --system --uid 10001 --gid 10001 --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin medcell; \
    else \
        echo 'medcell:x:10001:' >>/etc/group \
        && echo 'medcell:x:10001:10001:medcell:/nonexistent:/usr/sbin/nologin' >>/etc/passwd; \
    fi

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MEDCELL_GATEWAY_CONFIG=/etc/medcell-gateway \
    MEDCELL_GATEWAY_STATE_DIR=/tmp/medcell-gateway

COPY --from=venv /opt/venv /opt/venv
WORKDIR /app
COPY medcell_common/ /app/medcell_common/
COPY gateway/ /app/gateway/
# Bytecode is compiled now because the root filesystem is read-only at run time.
RUN python3 -m compileall -q /app

USER 10001:10001
EXPOSE 8443 8080
# Liveness only: the gateway's certificate is often self-signed and never names 127.0.0.1, so
# verification is off for this loopback probe (it carries no secrets).
# Every 30 s: a probe starts a Python process (~50 ms of CPU), too dear to run every few seconds.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import ssl, urllib.request; ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE; urllib.request.urlopen('https://127.0.0.1:8443/healthz', context=ctx, timeout=2)"]
CMD ["python", "-m", "gateway", "serve"]
