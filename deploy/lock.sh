#!/usr/bin/env bash
# Write each image's lock file, deploy/locks/IMAGE.txt: every package the image installs, pinned
# to one version with the sha256 of its files, resolved for the images' Python and platform from
# the names in deploy/locks/IMAGE.in and the version ranges in pyproject.toml.
#
# Usage: lock.sh [--upgrade]    (`make lock` / `make lock-upgrade`)
# Without --upgrade the versions already locked are kept where they still fit (a new dependency
# changes nothing else); --upgrade takes the newest release each range allows (security updates).
# Environment: UV (the uv executable, default uv on PATH), PYTHON (a Python 3.11+, default python3).
set -euo pipefail

SCRIPT_NAME=lock
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UV="${UV:-uv}"
PYTHON="${PYTHON:-python3}"
upgrade=()
case "${1:-}" in
"") ;;
--upgrade) upgrade=(--upgrade) ;;
*) die "unknown option '$1' (expected --upgrade)" ;;
esac
command -v "$UV" >/dev/null 2>&1 || die "uv is missing; run: make venv"

# pyproject.toml's runtime dependencies as constraints: they bound every package they name,
# whether an image asks for it by name or gets it through another one.
mkdir -p "$BUILD_DIR"
constraints="$BUILD_DIR/pyproject-constraints.txt"
"$PYTHON" - "$ROOT_DIR/pyproject.toml" >"$constraints" <<'PY' ||
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
    die "could not read the dependencies from pyproject.toml with $PYTHON (needs Python 3.11+)"

for input in "$LOCK_DIR"/*.in; do
    image="$(basename "$input" .in)"
    # Relative paths, so the notes in the lock file name no directory of this machine.
    (
        cd "$ROOT_DIR"
        "$UV" pip compile --quiet --no-config "${upgrade[@]}" \
            --generate-hashes --only-binary :all: \
            --python-version "$TARGET_PYTHON" --python-platform "x86_64-manylinux_2_$GLIBC_MINOR_MAX" \
            --custom-compile-command "make lock" \
            --constraint "deploy/.build/pyproject-constraints.txt" \
            --output-file "deploy/locks/$image.txt" "deploy/locks/$image.in"
    ) || die "could not lock the $image image's requirements"
    say "deploy/locks/$image.txt: $(grep -c '^[A-Za-z0-9]' "$LOCK_DIR/$image.txt") packages"
done
