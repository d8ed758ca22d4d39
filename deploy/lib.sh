# shellcheck shell=bash disable=SC2034  # sourced: the scripts use these variables
# Shared helpers for the deploy scripts; sourced, never run.
# Progress goes to stderr so that callers (the provisioner) can keep stdout for their own output.

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$DEPLOY_DIR/.." && pwd)"
BUILD_DIR="$DEPLOY_DIR/.build"

# The offline base built from Debian packages; an operator with a registry overrides it.
DEFAULT_BASE_IMAGE="medcell-base:bookworm"
BASE_IMAGE="${BASE_IMAGE:-$DEFAULT_BASE_IMAGE}"
# The gateway's offline base: the same packages plus Debian's nginx.
GATEWAY_BASE_IMAGE="medcell-base-nginx:bookworm"
# The facility's offline base: the same packages plus DejaVu fonts for its PDF exports.
FACILITY_BASE_IMAGE="medcell-base-fonts:bookworm"
# Label on each offline base: when its Debian packages were fetched (UTC). Images built on it
# inherit it, so an operator sees how old the packages under a running container are.
BASE_BUILT_LABEL="medcell.base.built"

# Both supported bases (Debian bookworm's python3 and python:3.11-slim-bookworm) run CPython 3.11
# on glibc 2.36 (x86_64): the locks are resolved and the wheels chosen for that target, not for
# whatever Python runs these scripts.
TARGET_PYTHON=3.11
TARGET_ABI=cp311
GLIBC_MINOR_MAX=36
# Lock files: what each image installs, pinned with hashes (deploy/lock.sh writes them).
LOCK_DIR="$DEPLOY_DIR/locks"

say() {
    printf '%s: %s\n' "${SCRIPT_NAME:-deploy}" "$*" >&2
}

die() {
    printf 'Error: %s\n' "$*" >&2
    exit 1
}

# Print the end of a log so a failure explains itself without flooding the terminal.
show_log_tail() {
    local log="$1" lines="${2:-30}"
    if [ -s "$log" ]; then
        printf -- '--- last %s lines of %s ---\n' "$lines" "$log" >&2
        tail -n "$lines" "$log" >&2
    fi
}

is_root() {
    [ "$(id -u)" -eq 0 ]
}

image_exists() {
    docker image inspect "$1" >/dev/null 2>&1
}

# apt-get without prompts and with its chatter kept in a log; shows the log only on failure.
apt_install() {
    local log="$BUILD_DIR/apt.log"
    mkdir -p "$BUILD_DIR"
    say "installing $* with apt-get"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } \
        >"$log" 2>&1; then
        show_log_tail "$log"
        die "apt-get could not install $*"
    fi
}
