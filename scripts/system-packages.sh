#!/usr/bin/env bash
# `make system`: the Debian packages the test suite needs (`make run` needs none of them).
# Idempotent: installs only what is missing, one line per package, and says nothing when all
# are there. Root runs apt-get itself; anyone else goes through sudo; with neither it stops
# with one line naming the packages. `--check` installs nothing: it names what is missing,
# one package a line, and exits 1 if anything is.
set -euo pipefail

# package: how to tell it is installed (a command on PATH, or a file glob)
declare -A CHECK=(
    [postgresql]="/usr/lib/postgresql/*/bin/initdb"   # the prediction log's Postgres tests
    [chromium]="chromium"                             # the page's headless-browser test
    [wrk]="wrk"                                       # the serving benchmark (REST load)
    [nghttp2-client]="h2load"                         # the serving benchmark (gRPC load)
    [kubernetes-client]="kubectl"                     # renders the Kubernetes manifests
    [docker.io]="dockerd"                             # the image test's engine
    [debootstrap]="debootstrap"                       # the image test's base image
    [nginx]="/usr/sbin/nginx"                         # the rollout benchmark's front
)
ORDER=(postgresql chromium wrk nghttp2-client kubernetes-client docker.io debootstrap nginx)

present() {
    local check=$1
    if [[ $check == /* ]]; then compgen -G "$check" >/dev/null; else command -v "$check" >/dev/null; fi
}

missing=()
for package in "${ORDER[@]}"; do
    present "${CHECK[$package]}" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "${1:-}" = --check ]; then printf '%s\n' "${missing[@]}"; exit 1; fi

if [ "$EUID" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "make system: needs root or sudo to install: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq >/dev/null
for package in "${missing[@]}"; do
    echo "make system: installing $package"
    if ! "${as_root[@]}" apt-get install -y -qq "$package" \
            >/tmp/santander-apt.log 2>&1; then
        echo "make system: apt-get install $package failed (see /tmp/santander-apt.log)" >&2
        exit 1
    fi
done
