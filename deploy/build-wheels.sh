#!/usr/bin/env bash
# Download the wheels of one image's runtime dependencies for the images' Python, so that the
# image build installs them with no network. Re-downloads only when the dependency list changes.
#
# Usage: build-wheels.sh IMAGE     (facility, gateway or supervisor; wheels go to .build/wheels/IMAGE)
set -euo pipefail

SCRIPT_NAME=build-wheels
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON="${PYTHON:-python3}"
IMAGE="${1:?usage: build-wheels.sh facility|gateway|supervisor}"
WHEEL_DIR="$BUILD_DIR/wheels/$IMAGE"
# Both supported bases (Debian bookworm's python3 and python:3.11-slim-bookworm) run CPython 3.11
# on glibc 2.36, so wheels are chosen for that target, not for whatever Python runs this script.
TARGET_PYTHON=3.11
TARGET_ABI=cp311
GLIBC_MINOR_MAX=36
# Each image gets only what its code imports; versions come from pyproject.toml where it pins them.
case "$IMAGE" in
facility) PACKAGES="flask gunicorn pynacl sqlite-utils segno fpdf2" ;;
gateway) PACKAGES="gunicorn" ;; # the control plane and the activator use the standard library
supervisor) PACKAGES="docker requests click tzdata" ;; # tzdata: opening hours in MEDCELL_TIMEZONE
*) die "unknown image '$IMAGE'" ;;
esac

command -v "$PYTHON" >/dev/null 2>&1 || die "no Python at '$PYTHON'; set PYTHON to a Python 3.11+ with pip"

# The image's requirements, one a line, with pyproject.toml's version range where it has one.
requirements="$(
    "$PYTHON" - "$ROOT_DIR/pyproject.toml" "$PACKAGES" <<'PY'
import re
import sys
import tomllib


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


with open(sys.argv[1], "rb") as f:
    dependencies = tomllib.load(f)["project"]["dependencies"]
pinned = {canonical(re.match(r"[A-Za-z0-9._-]+", r).group(0)): r for r in dependencies}
for name in sys.argv[2].split():
    print(pinned.get(canonical(name), name))
PY
)" || die "could not read the dependencies from pyproject.toml with $PYTHON (needs Python 3.11+)"

# pip's --platform takes exact tags; list every manylinux level the target glibc can run.
platform_args=(--platform manylinux1_x86_64 --platform manylinux2010_x86_64 --platform manylinux2014_x86_64)
for minor in $(seq 5 "$GLIBC_MINOR_MAX"); do
    platform_args+=(--platform "manylinux_2_${minor}_x86_64")
done

key="$(printf '%s\n' "$requirements" "python=$TARGET_PYTHON abi=$TARGET_ABI glibc=2.$GLIBC_MINOR_MAX" |
    sha256sum | cut -d' ' -f1)"
if [ -f "$WHEEL_DIR/.key" ] && [ "$(cat "$WHEEL_DIR/.key")" = "$key" ]; then
    say "$IMAGE wheels up to date"
    exit 0
fi

say "downloading $IMAGE wheels for Python $TARGET_PYTHON"
log="$BUILD_DIR/build-wheels-$IMAGE.log"
staging="$BUILD_DIR/wheels/$IMAGE.new"
rm -rf "$staging"
mkdir -p "$staging"
printf '%s\n' "$requirements" >"$staging/requirements.txt"
# Binary wheels only: nothing may need compiling inside an image that has no compiler.
if ! "$PYTHON" -m pip download --disable-pip-version-check --only-binary=:all: \
    --implementation cp --python-version "$TARGET_PYTHON" \
    --abi "$TARGET_ABI" --abi abi3 --abi none "${platform_args[@]}" \
    --dest "$staging" --requirement "$staging/requirements.txt" >"$log" 2>&1; then
    show_log_tail "$log"
    die "pip could not download the wheels (log: $log)"
fi
printf '%s\n' "$key" >"$staging/.key"
# Swap in the complete set at once so an interrupted download never looks up to date.
rm -rf "$WHEEL_DIR"
mv "$staging" "$WHEEL_DIR"
say "$(find "$WHEEL_DIR" -name '*.whl' | wc -l) $IMAGE wheels in $WHEEL_DIR"
