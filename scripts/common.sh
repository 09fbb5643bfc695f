# shellcheck shell=bash
# Shared set-up for every make target: root check, Debian packages, the
# development virtualenv, and a collections path that holds this checkout as
# handmade.containers. Sourced, never run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Caches survive between runs (and between clones on one machine), so the
# second run of any target skips the installs and the mirror/VM builds.
CACHE=${HANDMADE_DEV_CACHE:-/var/cache/handmade-containers-dev}
BUILD=$ROOT/.build
# Modules run on the managed host with its own Python, standard library only.
HOST_PYTHON=${HANDMADE_HOST_PYTHON:-/usr/bin/python3}
export ROOT CACHE BUILD HOST_PYTHON

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() {
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo make $1): namespaces, mounts and cgroups need it"
}

# apt_install PKG...: install the Debian packages that are missing, nothing else.
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The virtualenv is keyed by the requirement files, so editing them makes a
# fresh one and an unchanged tree reuses the cached one.
ensure_venv() {
    local python=${HANDMADE_DEV_PYTHON:-python3} key
    apt_install python3 python3-venv
    key=$(cat "$ROOT/requirements.txt" "$ROOT/tests/requirements.txt" | sha256sum | cut -c1-12)
    VENV=$CACHE/venv-$key
    if [ ! -x "$VENV/bin/ansible-playbook" ] || [ ! -f "$VENV/.complete" ]; then
        log "creating the development virtualenv $VENV"
        rm -rf "$VENV"
        mkdir -p "$CACHE"
        "$python" -m venv "$VENV"
        "$VENV/bin/pip" install -q --upgrade pip
        (cd "$ROOT/tests" && "$VENV/bin/pip" install -q -r requirements.txt)
        touch "$VENV/.complete"
    fi
    export VENV PATH="$VENV/bin:$PATH"
}

# Ansible finds collections as <path>/ansible_collections/<ns>/<name>: link
# this checkout there so that FQCNs resolve to the working tree.
ensure_collection_path() {
    local link=$BUILD/collections/ansible_collections/handmade/containers
    mkdir -p "$(dirname "$link")"
    [ "$(readlink "$link" 2>/dev/null)" = "$ROOT" ] || ln -sfn "$ROOT" "$link"
    export ANSIBLE_COLLECTIONS_PATH=$BUILD/collections
    export ANSIBLE_PYTHON_INTERPRETER=$HOST_PYTHON
    export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_RETRY_FILES_ENABLED=0
}
