# medcell-facility: one container per healthcare facility, run read-only as uid 10001.
# Built by deploy/build-images.sh from a staged context (services/, medcell_common/, wheels/).
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
# The PDF export sets text in DejaVu Sans. The offline base has it; a registry base
# (python:3.11-slim-bookworm) takes Debian's package here.
RUN if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-dejavu-core \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && test -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
LABEL org.opencontainers.image.title="medcell-facility" \
      org.opencontainers.image.description="medcell facility service: one facility's messaging API, database and keys" \
      org.opencontainers.image.version="${MEDCELL_VERSION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# A fixed uid lets the provisioner and the volumes agree on ownership without looking it up.
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
    MEDCELL_DATA_DIR=/data \
    MEDCELL_KEY_DIR=/keys \
    MEDCELL_BIND=unix:/run/medcell/app.sock \
    GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=131072

COPY --from=venv /opt/venv /opt/venv
WORKDIR /app
COPY medcell_common/ /app/medcell_common/
COPY services/ /app/services/
# Bytecode is compiled now because the root filesystem is read-only at run time. The server
# runs with -OO (CMD below): its own bytecode, without docstrings and column tables, is compiled
# for the standard library, the packages and the app (-o 2); management commands and the PDF's
# process run without -OO and use the ordinary bytecode. Saves ~1.8 MiB per awake facility.
# New named volumes copy the owner and mode of these mount points, so the data and keys start
# out private to the service user. /run/medcell holds the app's socket; the provisioner bind-mounts
# a per-facility host directory there (the container has no network), so this is only its default.
RUN python3 -m compileall -q /app \
    && python3 -X no_debug_ranges -m compileall -q -o 2 -x '/(test|tests|idlelib)/' \
        "$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" /opt/venv/lib /app \
    && install -d -o 10001 -g 10001 -m 0700 /data /keys \
    && install -d -o 10001 -g 10001 -m 0711 /run/medcell

USER 10001:10001
# No Docker health check: each run would start a process (~50 ms of CPU), which is what an idle
# facility must not cost. The supervisor asks GET /healthz over the socket instead, rarely.
HEALTHCHECK NONE
# One waitress process (services/facility/server.py); malloc above: one arena for its few threads,
# and large blocks (uploads, downloads) mmapped so they go back to the system when freed.
# -OO: no docstrings in memory (the facility's code has no assert; it reads no docstring).
CMD ["python3", "-OO", "-m", "services"]
