#!/usr/bin/env bash
# Build the medcell images, each only when its inputs changed:
#   medcell-facility:$MEDCELL_IMAGE_TAG  from services/ and medcell_common/
#   medcell-gateway:$MEDCELL_IMAGE_TAG   from gateway/ and medcell_common/ (nginx inside)
#   medcell-supervisor:$MEDCELL_IMAGE_TAG from provisioner/host/, provisioner/supervisor/ and medcell_common/
# plus what they stand on: the base images and each image's own dependency wheels.
#
# Usage: build-images.sh [facility] [gateway] [supervisor]        (no argument: all three)
# Environment: PYTHON (a Python 3.11+ with pip, default python3), BASE_IMAGE (default
# medcell-base:bookworm built locally, for the gateway medcell-base-nginx:bookworm, the same plus
# Debian's nginx, and for the facility medcell-base-fonts:bookworm, plus DejaVu fonts; e.g.
# python:3.11-slim-bookworm where a registry answers, then the gateway's and the facility's
# Dockerfiles install nginx and the fonts themselves),
# MEDCELL_IMAGE_TAG (default latest), MEDCELL_REFRESH=1 (`medcell up --refresh`: build the bases
# again from today's Debian packages, or pull a registry base again, download the locked wheels
# again and rebuild every image without the build cache). Progress goes to stderr; stdout stays empty.
set -euo pipefail
shopt -s inherit_errexit

SCRIPT_NAME=build-images
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export PYTHON="${PYTHON:-python3}"
TAG="${MEDCELL_IMAGE_TAG:-latest}"
HASH_LABEL=medcell.build-hash
REFRESH="${MEDCELL_REFRESH:-}"

# What goes into each image's build context, relative to the repository root.
image_sources() {
    case "$1" in
    facility) echo "medcell_common services" ;;
    gateway) echo "medcell_common gateway" ;;
    # the supervisor and the host operations it uses; never the CLI (provisioner/cli/)
    supervisor) echo "medcell_common provisioner/__init__.py provisioner/host provisioner/supervisor" ;;
    esac
}

# The base each image is built on: the gateway's offline base has nginx as well, the
# facility's the DejaVu fonts.
image_base() {
    if [ "$1" = gateway ] && [ "$BASE_IMAGE" = "$DEFAULT_BASE_IMAGE" ]; then
        echo "$GATEWAY_BASE_IMAGE"
    elif [ "$1" = facility ] && [ "$BASE_IMAGE" = "$DEFAULT_BASE_IMAGE" ]; then
        echo "$FACILITY_BASE_IMAGE"
    else
        echo "$BASE_IMAGE"
    fi
}

# The module the image runs; without it there is nothing worth building.
image_entry_module() {
    case "$1" in
    facility) echo "services/facility/__init__.py" ;;
    gateway) echo "gateway/__main__.py" ;;
    supervisor) echo "provisioner/supervisor/__main__.py" ;;
    esac
}

# Copy only what the image needs: no caches, no editor or VCS leftovers, no tests.
stage_context() {
    local name="$1" context="$BUILD_DIR/context-$1"
    rm -rf "$context"
    mkdir -p "$context"
    # shellcheck disable=SC2046  # the source list is fixed and has no spaces
    tar -C "$ROOT_DIR" --exclude='__pycache__' --exclude='*.py[co]' --exclude='.*' \
        --exclude='*~' -cf - $(image_sources "$name") | tar -C "$context" -xf -
    cp "$DEPLOY_DIR/$name.Dockerfile" "$context/Dockerfile"
    mkdir "$context/wheels"
    cp "$BUILD_DIR/wheels/$name"/*.whl "$BUILD_DIR/wheels/$name/requirements.txt" "$context/wheels/"
    echo "$context"
}

# A digest of everything the build depends on: every path, mode and content in the context,
# the exact base image and the version label. Timestamps are left out on purpose, so that a
# fresh checkout of the same sources does not rebuild.
build_hash() {
    local context="$1" base="$2" base_id="$3" version="$4"
    {
        printf 'base=%s\nbase_id=%s\nversion=%s\n' "$base" "$base_id" "$version"
        (
            cd "$context"
            find . -printf '%y %m %P\n' | LC_ALL=C sort
            find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
        )
    } | sha256sum | cut -d' ' -f1
}

image_label() {
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

image_id() {
    docker image inspect --format '{{ .Id }}' "$1" 2>/dev/null || true
}

build_image() {
    local name="$1" version="$2"
    local image="medcell-$name:$TAG" entry context hash old_id log started base base_id
    entry="$(image_entry_module "$name")"
    [ -f "$ROOT_DIR/$entry" ] || die "cannot build $image: $entry is missing"
    [ -f "$DEPLOY_DIR/$name.Dockerfile" ] || die "cannot build $image: deploy/$name.Dockerfile is missing"
    base="$(image_base "$name")"
    base_id="$(image_id "$base")"
    bash "$DEPLOY_DIR/build-wheels.sh" "$name"

    context="$(stage_context "$name")"
    hash="$(build_hash "$context" "$base" "$base_id" "$version")"
    if [ "$REFRESH" != 1 ] && [ "$(image_label "$image" "$HASH_LABEL")" = "$hash" ]; then
        say "$image up to date"
        return 0
    fi

    old_id="$(image_id "$image")"
    # How old the operating system packages under the image are: the offline base's label, else
    # the registry base's creation time.
    base_built="$(image_label "$base" "$BASE_BUILT_LABEL")"
    if [ -z "$base_built" ]; then
        base_built="$(docker image inspect --format '{{ .Created }}' "$base")"
        base_built="${base_built%%.*}" # to whole seconds, the form the offline base's label has
        base_built="${base_built%Z}Z"
    fi
    # A refresh takes nothing from the cache, so a registry base's apt-get runs again too.
    cache=()
    [ "$REFRESH" != 1 ] || cache=(--no-cache)
    log="$BUILD_DIR/build-$name.log"
    started=$SECONDS
    say "building $image (log: $log)"
    # The classic builder, explicitly: it is what Debian's engine has, and newer clients would
    # otherwise look for the BuildKit plugin.
    if ! DOCKER_BUILDKIT=0 docker build --force-rm "${cache[@]}" \
        --build-arg "BASE_IMAGE=$base" \
        --build-arg "MEDCELL_VERSION=$version" \
        --label "$HASH_LABEL=$hash" \
        --label "$BASE_BUILT_LABEL=$base_built" \
        --tag "$image" "$context" >"$log" 2>&1; then
        show_log_tail "$log"
        die "building $image failed (log: $log)"
    fi
    # The replaced image is only disk weight now; leave it if a container still uses it.
    if [ -n "$old_id" ] && [ "$old_id" != "$(image_id "$image")" ]; then
        docker image rm "$old_id" >/dev/null 2>&1 || true
    fi
    say "built $image in $((SECONDS - started))s ($(($(docker image inspect --format '{{ .Size }}' "$image") / 1000000)) MB)"
}

project_version() {
    "$PYTHON" - "$ROOT_DIR/pyproject.toml" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    print(tomllib.load(f)["project"]["version"])
PY
}

main() {
    local names=("$@") name
    [ "${#names[@]}" -gt 0 ] || names=(facility gateway supervisor)
    for name in "${names[@]}"; do
        [ -n "$(image_sources "$name")" ] || die "unknown image '$name' (expected facility, gateway or supervisor)"
    done

    command -v docker >/dev/null 2>&1 || die "docker is not installed; run: make engine"
    docker info >/dev/null 2>&1 || die "no Docker Engine answers; run: make engine"

    mkdir -p "$BUILD_DIR"
    # Two builds at once (say `make images` and `medcell up`) would fight over the staged contexts.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$BUILD_DIR/.lock"
        flock --wait 1800 9 || die "another image build did not finish within 30 minutes"
    fi

    if [ "$BASE_IMAGE" = "$DEFAULT_BASE_IMAGE" ]; then
        bash "$DEPLOY_DIR/build-base.sh" "$BASE_IMAGE"
        case " ${names[*]} " in
        *" gateway "*) bash "$DEPLOY_DIR/build-base.sh" "$GATEWAY_BASE_IMAGE" nginx ;;
        esac
        case " ${names[*]} " in
        *" facility "*) bash "$DEPLOY_DIR/build-base.sh" "$FACILITY_BASE_IMAGE" fonts-dejavu-core ;;
        esac
    elif [ "$REFRESH" = 1 ] || ! image_exists "$BASE_IMAGE"; then
        say "pulling $BASE_IMAGE"
        docker pull --quiet "$BASE_IMAGE" >/dev/null || die "cannot pull $BASE_IMAGE"
    fi

    local version
    version="$(project_version)" || die "could not read the version from pyproject.toml"
    for name in "${names[@]}"; do
        build_image "$name" "$version"
    done
}

main "$@"
