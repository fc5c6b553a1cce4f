#!/usr/bin/env bash
# Build and run the deploy image on a machine with no image registry (this one, CI).
#
#   scripts/docker-local.sh engine          install Debian's docker.io if needed, start dockerd
#   scripts/docker-local.sh base            make python:3.11-slim locally (debootstrap + import)
#   scripts/docker-local.sh build [REPO]    build the image from REPO's models (default: deploy)
#   scripts/docker-local.sh run [NAME]      run it on the host network, wait until the model is ready
#   scripts/docker-local.sh all [REPO]      engine, base, build, run
#
# Where a registry exists none of this is needed: `docker build -f deploy/Dockerfile .`
# pulls the real python:3.11-slim (see the README).
# Settings (environment): IMAGE (santander-serve:latest), PYTHON (pip for the wheelhouse),
# MLSERVER_HTTP_PORT / MLSERVER_GRPC_PORT / MLSERVER_METRICS_PORT (8080/8081/8082), and, passed
# to the container when set, SANTANDER_ADMIN_TOKEN and SANTANDER_INNER_*_PORT (deploy/front/);
# DOCKER_RUN_ARGS, more `docker run` arguments (e.g. "-v $PWD/deploy:/srv/models:ro").
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IMAGE="${IMAGE:-santander-serve:latest}"
BASE_IMAGE="python:3.11-slim"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/santander-dockerd.log}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
# The daemon from Debian is older than some clients; the classic builder needs no buildx plugin.
export DOCKER_BUILDKIT=0

# Temporary folders (root file system, build context), removed however the script ends.
SCRATCH=()
trap 'for d in "${SCRATCH[@]}"; do as_root rm -rf "$d"; done' EXIT

say() { echo "docker-local: $*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@";
    else die "'$*' needs root"; fi
}

engine() {
    if docker info >/dev/null 2>&1; then return; fi
    if ! command -v dockerd >/dev/null; then
        say "installing docker.io from Debian"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq docker.io >/dev/null
    fi
    command -v docker >/dev/null || die "docker.io installed no docker client"
    say "starting dockerd (log: $DOCKERD_LOG)"
    # No iptables or bridge on this machine: containers use the host's network.
    as_root sh -c "nohup dockerd --storage-driver=overlay2 --iptables=false --bridge=none \
        >'$DOCKERD_LOG' 2>&1 &"
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && return; sleep 1; done
    die "dockerd did not start; see $DOCKERD_LOG"
}

base() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then return; fi
    command -v debootstrap >/dev/null || {
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq debootstrap >/dev/null; }
    local rootfs
    rootfs="$(mktemp -d)"
    SCRATCH+=("$rootfs")
    say "making $BASE_IMAGE from Debian bookworm (Python 3.11) with debootstrap"
    as_root debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$DEBIAN_MIRROR" >/dev/null
    # The official image has `python` on PATH in /usr/local/bin; so does this one.
    as_root ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
    as_root rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
    as_root tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
}

wheelhouse() {
    # pip inside `docker build` cannot see this machine's package index or CA bundle:
    # fetch the wheels here, with the host's pip, and install them offline in the build.
    say "fetching wheels into wheelhouse/"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --dest "$ROOT/wheelhouse" \
        -c "$ROOT/requirements.txt" -r "$ROOT/deploy/requirements-serve.txt" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
}

build() {
    local repo="${1:-$ROOT/deploy}"
    repo="$(cd "$repo" && pwd)" || die "no model repository at ${1:-deploy}"
    ls "$repo"/models/*/*/model-settings.json >/dev/null 2>&1 \
        || die "no model versions under $repo/models: run \`python -m santander train\` first"
    wheelhouse
    # The same layout the Dockerfile expects at the repository root, with REPO's models.
    local context
    context="$(mktemp -d)"
    SCRATCH+=("$context")
    mkdir -p "$context/deploy"
    cp "$ROOT/requirements.txt" "$ROOT/.dockerignore" "$context/"
    cp -r "$ROOT/santander" "$context/"
    cp "$ROOT/deploy/Dockerfile" "$ROOT/deploy/requirements-serve.txt" "$context/deploy/"
    cp -r "$ROOT/deploy/front" "$context/deploy/front"
    cp "$repo/settings.json" "$context/deploy/settings.json"
    cp -r "$repo/models" "$context/deploy/models"
    cp -al "$ROOT/wheelhouse" "$context/wheelhouse" 2>/dev/null || cp -r "$ROOT/wheelhouse" "$context/"
    say "building $IMAGE from $repo"
    docker build --quiet --network host --build-arg PIP_INDEX=--no-index \
        -f "$context/deploy/Dockerfile" -t "$IMAGE" "$context" >/dev/null
    say "built $IMAGE"
}

run() {
    local name="${1:-santander-serve}"
    local port="${MLSERVER_HTTP_PORT:-8080}"
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run -d --name "$name" --network host \
        -e MLSERVER_HTTP_PORT="$port" \
        -e MLSERVER_GRPC_PORT="${MLSERVER_GRPC_PORT:-8081}" \
        -e MLSERVER_METRICS_PORT="${MLSERVER_METRICS_PORT:-8082}" \
        -e SANTANDER_ADMIN_TOKEN \
        -e SANTANDER_INNER_HTTP_PORT -e SANTANDER_INNER_GRPC_PORT -e SANTANDER_INNER_METRICS_PORT \
        ${DOCKER_RUN_ARGS:-} "$IMAGE" >/dev/null
    for _ in $(seq 120); do
        if python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/v2/models/xgboost-model/ready', timeout=2)" 2>/dev/null; then
            say "container $name serving on http://127.0.0.1:$port"
            return
        fi
        [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || break
        sleep 1
    done
    docker logs "$name" 2>&1 | tail -20 >&2
    die "container $name did not become ready"
}

case "${1:-}" in
    engine) engine ;;
    base) engine; base ;;
    build) engine; base; build "${2:-}" ;;
    run) engine; run "${2:-}" ;;
    all) engine; base; build "${2:-}"; run ;;
    *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
