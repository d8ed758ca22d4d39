# medcell-supervisor: keeps every facility at its desired state, sleeps idle ones and wakes them
# (on request from the gateway's activator, and before their deadlines). The only container that
# holds the Docker socket. Built by deploy/build-images.sh from a staged context (provisioner/ with
# only host/ and supervisor/, no CLI; wheels/ with docker, requests and tzdata).
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
LABEL org.opencontainers.image.title="medcell-supervisor" \
      org.opencontainers.image.description="medcell supervisor: sleeps, wakes and restarts the facility containers" \
      org.opencontainers.image.version="${MEDCELL_VERSION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# The default user is unprivileged; the provisioner runs the container as the operator's uid:gid
# (with the Docker socket's group added), so the files it writes under MEDCELL_HOME stay theirs.
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
    MEDCELL_HOME=/medcell

COPY --from=venv /opt/venv /opt/venv
WORKDIR /app
COPY medcell_common/ /app/medcell_common/
COPY provisioner/ /app/provisioner/
# Bytecode is compiled now because the root filesystem is read-only at run time.
RUN python3 -m compileall -q /app

USER 10001:10001
# Health is its own business: no HEALTHCHECK that forks a process every few seconds.
HEALTHCHECK NONE
CMD ["python3", "-m", "provisioner.supervisor"]
