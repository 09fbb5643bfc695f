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
        # A user who is not root (make unit-fast) uses the one root made, or
        # makes one of their own elsewhere.
        { mkdir -p "$CACHE" 2>/dev/null && [ -w "$CACHE" ]; } ||
            die "cannot create the development virtualenv in $CACHE as $(id -un): create it once as root (sudo make unit-fast), or set HANDMADE_DEV_CACHE to a directory of yours"
        rm -rf "$VENV"
        "$python" -m venv "$VENV"
        "$VENV/bin/pip" install -q --upgrade pip
        (cd "$ROOT/tests" && "$VENV/bin/pip" install -q -r requirements.txt)
        touch "$VENV/.complete"
    fi
    # Root's virtualenv may run an interpreter only root can reach (pyenv's
    # under /root).
    "$VENV/bin/python" -c '' 2>/dev/null ||
        die "the development virtualenv $VENV does not run as $(id -un) (its Python is $(readlink "$VENV/bin/python3")): set HANDMADE_DEV_CACHE to a directory of yours for a virtualenv of your own"
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

# ---- the offline Alpine-shaped mirror (demo, mirror, Molecule) ------------
# serve_test_mirror [PORT]: build (once, cached) the mirror of
# tests/fixtures/alpine_mirror.py and serve it on 127.0.0.1 in the background
# until the calling script exits (stop_test_mirror, from an EXIT trap; a
# script with a trap of its own calls it there). Sets MIRROR_URL,
# MIRROR_PORT, MIRROR_ROOT, MIRROR_KEY_FILE, MIRROR_FINGERPRINT,
# MIRROR_VERSIONS and MIRROR_ARCHES.
serve_test_mirror() {
    local fixture=$ROOT/tests/fixtures/alpine_mirror.py info
    apt_install busybox-static gnupg python3
    info=$("$HOST_PYTHON" "$fixture" build --cache "$CACHE/mirror")
    {
        read -r MIRROR_ROOT; read -r MIRROR_KEY_FILE; read -r MIRROR_FINGERPRINT
        read -r MIRROR_VERSIONS; read -r MIRROR_ARCHES
    } < <("$HOST_PYTHON" -c '
import json, sys
info = json.load(sys.stdin)
for field in ("root", "key_file", "fingerprint", "versions", "arches"):
    value = info[field]
    print(" ".join(value) if isinstance(value, list) else value)' <<<"$info")
    mkdir -p "$BUILD"
    # A port file of its own, so that two runs side by side never read each other's.
    MIRROR_PORT_FILE=$(mktemp "$BUILD/mirror-port.XXXXXX")
    "$HOST_PYTHON" "$fixture" serve --root "$MIRROR_ROOT" --port-file "$MIRROR_PORT_FILE" --port "${1:-0}" &
    MIRROR_PID=$!
    trap stop_test_mirror EXIT
    for _ in $(seq 100); do [ -s "$MIRROR_PORT_FILE" ] && break; sleep 0.1; done
    [ -s "$MIRROR_PORT_FILE" ] || die "the offline Alpine mirror did not start ($fixture serve)"
    MIRROR_PORT=$(cat "$MIRROR_PORT_FILE")
    MIRROR_URL=http://127.0.0.1:$MIRROR_PORT
    export MIRROR_URL MIRROR_PORT MIRROR_ROOT MIRROR_KEY_FILE MIRROR_FINGERPRINT MIRROR_VERSIONS MIRROR_ARCHES
}

stop_test_mirror() {
    [ -n "${MIRROR_PID:-}" ] || return 0
    kill "$MIRROR_PID" 2>/dev/null || true
    wait "$MIRROR_PID" 2>/dev/null || true
    rm -f "$MIRROR_PORT_FILE"
    MIRROR_PID=
}

# ---- ansible-test (scripts/sanity.sh, scripts/units.sh) -------------------
# ansible-test wants the collection at .../ansible_collections/<ns>/<name> and
# sees only the files git tracks there. The checkout's working tree (tracked
# files plus untracked, not ignored ones, so uncommitted work is checked too)
# is copied into a staging tree with a git repository of its own; the
# checkout's index is never touched. The staging tree's tests/output (the
# venvs ansible-test units creates, results) survives between runs.
ANSIBLE_TEST_STAGE=$BUILD/ansible-test/ansible_collections/handmade/containers
# ansible-test keeps its sanity venvs, its pip bootstrap script and pip's
# download cache under ~: give it a home inside the project's cache, so the
# second run reuses them and one rm -rf of $CACHE makes a run cold again.
# Keep this path short: venv scripts' shebangs must fit in 127 characters.
ANSIBLE_TEST_HOME=$CACHE/ansible-test
export ANSIBLE_TEST_STAGE ANSIBLE_TEST_HOME

stage_collection_for_ansible_test() {
    local stage=$ANSIBLE_TEST_STAGE file
    mkdir -p "$stage"
    # One staging tree per checkout: a second sanity or units run waits for
    # the first instead of rewriting the files under it. The lock is held on
    # fd 9 until the calling script exits.
    exec 9>"$BUILD/ansible-test.lock"
    flock 9
    find "$stage" -mindepth 1 -maxdepth 1 ! -name tests ! -name .git -exec rm -rf {} +
    if [ -d "$stage/tests" ]; then
        find "$stage/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
    fi
    (
        cd "$ROOT"
        git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
            # Skip files deleted in the working tree but still in the index.
            if [ -e "$file" ] || [ -L "$file" ]; then printf '%s\0' "$file"; fi
        done | tar --null --files-from=- -cf - | tar -xf - -C "$stage"
    )
    # The staging tree's own repository: it records exactly the copied files,
    # and tests/output stays untracked through the copied .gitignore.
    (
        cd "$stage"
        [ -d .git ] || git init -q
        git add --all . && git -c user.name=stage -c user.email=stage@localhost \
            commit -q --allow-empty -m staged >/dev/null
    )
}

# The Python versions ansible-test checks the managed-host code with: every
# one pyenv provides (pyenv's shims answer only for the global version, so
# each interpreter is linked into one directory put first on PATH).
PYENV_PYTHONS=$BUILD/pythons
link_pyenv_pythons() {
    local interpreter name pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
    mkdir -p "$PYENV_PYTHONS"
    if command -v pyenv >/dev/null; then pyenv_root=$(pyenv root); fi
    for interpreter in "$pyenv_root"/versions/3.*/bin/python3.*; do
        name=${interpreter##*/}
        if [[ $name =~ ^python3\.[0-9]+$ ]] && [ -x "$interpreter" ]; then
            ln -sfn "$interpreter" "$PYENV_PYTHONS/$name"
        fi
    done
}

# The Python versions (3.8 3.9 ...) that ansible-test supports for modules
# and module_utils, oldest first.
ansible_test_supported_python_versions() {
    python -c 'from ansible_test._util.target.common import constants as c
print(" ".join(c.REMOTE_ONLY_PYTHON_VERSIONS + c.CONTROLLER_PYTHON_VERSIONS))'
}

# "OLDEST NEWEST" of those.
supported_python_range() {
    local supported
    supported=$(ansible_test_supported_python_versions)
    echo "${supported%% *} ${supported##* }"
}

# The supported versions that ansible-test will find: pyenv's (after
# link_pyenv_pythons) and the development venv's own. Each must run: a pyenv
# shim for a version that is not selected is on PATH but answers "command
# not found".
ansible_test_python_versions() {
    local supported
    read -ra supported <<<"$(ansible_test_supported_python_versions)"
    PATH=$PYENV_PYTHONS:$PATH python - "${supported[@]}" <<'PY'
import shutil, subprocess, sys
def runs(version):
    interpreter = shutil.which("python" + version)
    return interpreter and subprocess.call([interpreter, "-c", ""], stderr=subprocess.DEVNULL) == 0
print(" ".join(v for v in sys.argv[1:] if runs(v)))
PY
}

# ansible-test skips a Python it cannot find with only a warning, which would
# let a layer pass having checked fewer versions than it claims: fail instead,
# naming the missing ones.
require_every_supported_python() {
    local layer=$1 supported available version missing=()
    supported=$(ansible_test_supported_python_versions)
    available=$(ansible_test_python_versions)
    for version in $supported; do
        [[ " $available " == *" $version "* ]] || missing+=("$version")
    done
    [ ${#missing[@]} -eq 0 ] ||
        die "$layer checks every Python ansible-core supports ($supported), and ${missing[*]} cannot be found here: install them with pyenv (pyenv install ${missing[*]}), or name the versions to check (scripts/$layer.sh --python X.Y)"
}

# ansible-test, run in the staging tree with its home and the pyenv pythons,
# after putting the pip bootstrap stand-in everywhere ansible-test looks for
# one (get_pip_<pip version>.py, one pip version per Python version).
run_ansible_test() {
    local pip_versions pip_version
    pip_versions=$(python - <<'PY'
from types import SimpleNamespace
from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._util.target.common import constants
versions = constants.REMOTE_ONLY_PYTHON_VERSIONS + constants.CONTROLLER_PYTHON_VERSIONS
print(" ".join(sorted({get_venv_packages(SimpleNamespace(version=v))["pip"] for v in versions})))
PY
    )
    for pip_version in $pip_versions; do
        install -D -m 0644 "$ROOT/tests/utils/get_pip_standin.py" \
            "$ANSIBLE_TEST_HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
    done
    (cd "$ANSIBLE_TEST_STAGE" && HOME=$ANSIBLE_TEST_HOME PATH=$PYENV_PYTHONS:$PATH ansible-test "$@")
}
