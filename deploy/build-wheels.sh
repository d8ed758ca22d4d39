#!/usr/bin/env bash
# Download the wheels of the services' runtime dependencies for the images' Python, so that the
# image builds install them with no network. Re-downloads only when the dependency list changes.
set -euo pipefail

SCRIPT_NAME=build-wheels
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON="${PYTHON:-python3}"
WHEEL_DIR="$BUILD_DIR/wheels"
# Both supported bases (Debian bookworm's python3 and python:3.11-slim-bookworm) run CPython 3.11
# on glibc 2.36, so wheels are chosen for that target, not for whatever Python runs this script.
TARGET_PYTHON=3.11
TARGET_ABI=cp311
GLIBC_MINOR_MAX=36
# Used only on the operator's machine to drive the engine; never inside an image.
HOST_ONLY_DEPENDENCIES="docker"

command -v "$PYTHON" >/dev/null 2>&1 || die "no Python at '$PYTHON'; set PYTHON to a Python 3.11+ with pip"

# The runtime dependencies as written in pyproject.toml, one requirement a line.
requirements="$(
    "$PYTHON" - "$ROOT_DIR/pyproject.toml" "$HOST_ONLY_DEPENDENCIES" <<'PY'
import re
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    dependencies = tomllib.load(f)["project"]["dependencies"]
host_only = set(sys.argv[2].split())
for requirement in dependencies:
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    if re.sub(r"[-_.]+", "-", name).lower() not in host_only:
        print(requirement)
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
    say "wheels up to date"
    exit 0
fi

say "downloading wheels for Python $TARGET_PYTHON"
log="$BUILD_DIR/build-wheels.log"
staging="$BUILD_DIR/wheels.new"
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
say "$(find "$WHEEL_DIR" -name '*.whl' | wc -l) wheels in $WHEEL_DIR"
