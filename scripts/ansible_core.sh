# shellcheck shell=bash
# The two ends of the ansible-core range the collection claims, each in a
# virtualenv of its own on a Python from pyenv, cached like the development
# virtualenv (keyed by the requirement and the interpreter). Sourced after
# common.sh by scripts/sanity.sh and scripts/matrix.sh, never run.
#
#   oldest  the series meta/runtime.yml's requires_ansible names (">=2.15.0":
#           the newest 2.15.x), on the oldest controller Python that series
#           supports (OLDEST_ANSIBLE_CORE_PYTHON below).
#   newest  the newest ansible-core the package index has, asked at every
#           run, on the newest Python from pyenv that it installs on.
#           HANDMADE_NEWEST_ANSIBLE_CORE=X.Y.Z names it instead (offline, or
#           to go back to one release).
#
# Each sets ANSIBLE_CORE_VENV, ANSIBLE_CORE_VERSION (as installed) and
# ANSIBLE_CORE_PYTHON (X.Y).

# The oldest controller Python of the oldest series: 2.15 runs on 3.9 to
# 3.11. Raising requires_ansible may need this raised too; the venv is
# checked against the series' own list of controller Pythons.
OLDEST_ANSIBLE_CORE_PYTHON=${HANDMADE_OLDEST_ANSIBLE_CORE_PYTHON:-3.9}

# pyenv_python X.Y: the path of pyenv's interpreter for X.Y (link_pyenv_pythons).
pyenv_python() {
    link_pyenv_pythons
    { [ -x "$PYENV_PYTHONS/python$1" ] && "$PYENV_PYTHONS/python$1" -c '' 2>/dev/null; } ||
        die "Python $1 is not available from pyenv (found: $(pyenv_python_versions)): install it (pyenv install $1)"
    echo "$PYENV_PYTHONS/python$1"
}

# pyenv_python_versions: the X.Y versions pyenv provides, newest first.
pyenv_python_versions() {
    link_pyenv_pythons
    find "$PYENV_PYTHONS" -maxdepth 1 -name 'python3.*' -printf '%f\n' | sed 's/^python//' | sort -rV | tr '\n' ' '
}

# oldest_ansible_core_series: X.Y from meta/runtime.yml's requires_ansible.
oldest_ansible_core_series() {
    local series
    series=$(sed -n 's/^requires_ansible: *["'\'']\{0,1\}>= *\([0-9]*\.[0-9]*\).*$/\1/p' "$ROOT/meta/runtime.yml")
    [ -n "$series" ] || die "cannot read the oldest ansible-core from meta/runtime.yml (requires_ansible: \">=X.Y.Z\" expected)"
    echo "$series"
}

# index_newest_ansible_core PYTHON [--ignore-requires-python]: the newest
# ansible-core the package index offers to that interpreter.
index_newest_ansible_core() {
    "$1" -m pip index versions ansible-core "${@:2}" 2>/dev/null |
        sed -n 's/^ansible-core (\([0-9][0-9.]*\))$/\1/p'
}

# ensure_ansible_core_venv REQUIREMENT X.Y: a venv of pyenv's Python X.Y
# holding REQUIREMENT (a pip requirement for ansible-core), made once.
ensure_ansible_core_venv() {
    local requirement=$1 python_version=$2 python key venv controllers
    python=$(pyenv_python "$python_version")
    key=$(printf '%s\n%s\n' "$requirement" "$("$python" -c 'import sys; print(sys.version)')" | sha256sum | cut -c1-12)
    venv=$CACHE/venv-ansible-core-$key
    if [ ! -x "$venv/bin/ansible-playbook" ] || [ ! -f "$venv/.complete" ]; then
        log "creating a virtualenv with $requirement on Python $python_version: $venv"
        mkdir -p "$CACHE"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/pip" install -q --upgrade pip
        "$venv/bin/pip" install -q "$requirement" ||
            die "cannot install $requirement on Python $python_version (pip above)"
        printf '%s\n' "$requirement" >"$venv/requirement.txt"
        touch "$venv/.complete"
    fi
    ANSIBLE_CORE_VENV=$venv
    ANSIBLE_CORE_PYTHON=$python_version
    ANSIBLE_CORE_VERSION=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
    # A release runs its controller only on some Pythons (2.15: 3.9 to 3.11),
    # whatever pip accepted: it must be one of them.
    controllers=$("$venv/bin/python" -c 'from ansible_test._util.target.common import constants as c
print(" ".join(c.CONTROLLER_PYTHON_VERSIONS))')
    [[ " $controllers " == *" $python_version "* ]] ||
        die "ansible-core $ANSIBLE_CORE_VERSION runs its controller on Python $controllers, not on $python_version: choose one of those"
    export ANSIBLE_CORE_VENV ANSIBLE_CORE_PYTHON ANSIBLE_CORE_VERSION
}

ensure_oldest_ansible_core_venv() {
    local series
    series=$(oldest_ansible_core_series)
    ensure_ansible_core_venv "ansible-core>=$series.0,<${series%.*}.$((${series#*.} + 1))" "$OLDEST_ANSIBLE_CORE_PYTHON"
}

# The newest release on the index (whatever Python it needs), on the newest
# pyenv Python the index offers it to: a release that needs a Python pyenv
# does not have here fails, rather than letting an older one pass as newest.
ensure_newest_ansible_core_venv() {
    local newest version versions
    read -ra versions <<<"$(pyenv_python_versions)"
    [ ${#versions[@]} -gt 0 ] || die "pyenv provides no Python 3 here: the newest ansible-core needs one"
    if [ -n "${HANDMADE_NEWEST_ANSIBLE_CORE:-}" ]; then
        ensure_ansible_core_venv "ansible-core==$HANDMADE_NEWEST_ANSIBLE_CORE" \
            "${HANDMADE_NEWEST_ANSIBLE_CORE_PYTHON:-${versions[0]}}"
        return 0
    fi
    newest=$(index_newest_ansible_core "$(pyenv_python "${versions[0]}")" --ignore-requires-python)
    [ -n "$newest" ] ||
        die "the package index did not answer 'pip index versions ansible-core': reach it, or name the newest release with HANDMADE_NEWEST_ANSIBLE_CORE=X.Y.Z (and HANDMADE_NEWEST_ANSIBLE_CORE_PYTHON=X.Y)"
    for version in "${versions[@]}"; do
        if [ "$(index_newest_ansible_core "$(pyenv_python "$version")")" = "$newest" ]; then
            ensure_ansible_core_venv "ansible-core==$newest" "$version"
            return 0
        fi
    done
    die "ansible-core $newest, the newest on the package index, installs on none of pyenv's Pythons (${versions[*]}): install the Python it needs with pyenv"
}
