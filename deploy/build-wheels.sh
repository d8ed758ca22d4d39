#!/usr/bin/env bash
# Download the wheels one image's lock file (deploy/locks/IMAGE.txt) names, for the images' Python,
# so that the image build installs them with no network. pip checks every file against the lock's
# hashes. Re-downloads only when the lock changes, or always with MEDCELL_REFRESH=1.
#
# Usage: build-wheels.sh IMAGE     (facility, gateway or supervisor; wheels go to .build/wheels/IMAGE)
set -euo pipefail

SCRIPT_NAME=build-wheels
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON="${PYTHON:-python3}"
IMAGE="${1:?usage: build-wheels.sh facility|gateway|supervisor}"
WHEEL_DIR="$BUILD_DIR/wheels/$IMAGE"
LOCK="$LOCK_DIR/$IMAGE.txt"
case "$IMAGE" in
facility | gateway | supervisor) ;;
*) die "unknown image '$IMAGE'" ;;
esac
[ -f "$LOCK" ] || die "deploy/locks/$IMAGE.txt is missing; run: make lock"

command -v "$PYTHON" >/dev/null 2>&1 || die "no Python at '$PYTHON'; set PYTHON to a Python 3.11+ with pip"

# pip's --platform takes exact tags; list every manylinux level the target glibc can run.
platform_args=(--platform manylinux1_x86_64 --platform manylinux2010_x86_64 --platform manylinux2014_x86_64)
for minor in $(seq 5 "$GLIBC_MINOR_MAX"); do
    platform_args+=(--platform "manylinux_2_${minor}_x86_64")
done

key="$({ cat "$LOCK" && echo "python=$TARGET_PYTHON abi=$TARGET_ABI glibc=2.$GLIBC_MINOR_MAX"; } |
    sha256sum | cut -d' ' -f1)"
if [ "${MEDCELL_REFRESH:-}" != 1 ] && [ -f "$WHEEL_DIR/.key" ] && [ "$(cat "$WHEEL_DIR/.key")" = "$key" ]; then
    say "$IMAGE wheels up to date"
    exit 0
fi

say "downloading $IMAGE wheels for Python $TARGET_PYTHON"
log="$BUILD_DIR/build-wheels-$IMAGE.log"
staging="$BUILD_DIR/wheels/$IMAGE.new"
rm -rf "$staging"
mkdir -p "$staging"
cp "$LOCK" "$staging/requirements.txt"
# Binary wheels only: nothing may need compiling inside an image that has no compiler. The lock
# holds the whole tree, pinned and hashed: pip resolves nothing and refuses any other file.
if ! "$PYTHON" -m pip download --disable-pip-version-check --only-binary=:all: \
    --require-hashes --no-deps \
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
