#!/usr/bin/env bash
# Build an offline base image (Debian bookworm + Python 3.11) from Debian packages, because
# no container registry may be reachable. Skips when the image exists already, unless
# MEDCELL_REFRESH=1 (`medcell up --refresh`): then it is built again from today's packages,
# security updates included (mmdebstrap adds bookworm-updates and bookworm-security itself).
# The image is labelled medcell.base.built=<UTC time> so that its age shows.
#
# Usage: build-base.sh [IMAGE [EXTRA_PACKAGES]]   e.g. build-base.sh medcell-base-nginx:bookworm nginx
# EXTRA_PACKAGES is a comma-separated list added to the base packages (the gateway's base: nginx).
set -euo pipefail

SCRIPT_NAME=build-base
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE="${1:-$DEFAULT_BASE_IMAGE}"
SUITE=bookworm
# python3-venv brings ensurepip, which the Dockerfiles use to make /opt/venv;
# ca-certificates lets the services verify TLS peers if they ever need to.
PACKAGES=python3,python3-venv,ca-certificates
EXTRA_PACKAGES="${2:-}"
if [ -n "$EXTRA_PACKAGES" ]; then
    [[ "$EXTRA_PACKAGES" =~ ^[a-z0-9.+-]+(,[a-z0-9.+-]+)*$ ]] || die "bad package list: $EXTRA_PACKAGES"
    PACKAGES="$PACKAGES,$EXTRA_PACKAGES"
fi

if [ "${MEDCELL_REFRESH:-}" != 1 ] && image_exists "$IMAGE"; then
    say "$IMAGE present"
    exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
    is_root || die "mmdebstrap is missing; install it (sudo apt-get install -y mmdebstrap) or run as root"
    apt_install mmdebstrap
fi
is_root || die "building $IMAGE needs root (mmdebstrap creates device nodes and file owners)"

mkdir -p "$BUILD_DIR"
tarball="$(mktemp --suffix=.tar "$BUILD_DIR/base-$SUITE.XXXXXX")"
log="$BUILD_DIR/build-base-${IMAGE//[^A-Za-z0-9]/_}.log"
trap 'rm -f "$tarball"' EXIT

say "building $IMAGE with mmdebstrap (about half a minute; log: $log)"
started=$SECONDS
built="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# Documentation, manuals and translations are dead weight in a service image; copyright files
# stay because the licences of what we ship require them.
if ! mmdebstrap --variant=essential --include="$PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    "$SUITE" "$tarball" >"$log" 2>&1; then
    show_log_tail "$log"
    die "mmdebstrap failed (log: $log)"
fi

# An imported tarball has no configuration at all; give it what a Debian image would have.
if ! docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --change 'LABEL org.opencontainers.image.title=medcell-base' \
    --change "LABEL org.opencontainers.image.description=\"Debian $SUITE with Python 3 ($PACKAGES)\"" \
    --change "LABEL $BASE_BUILT_LABEL=$built" \
    --message "mmdebstrap --variant=essential --include=$PACKAGES $SUITE" \
    "$tarball" "$IMAGE" >>"$log" 2>&1; then
    show_log_tail "$log"
    die "docker import failed (log: $log)"
fi
say "built $IMAGE in $((SECONDS - started))s (Debian packages of $built)"
