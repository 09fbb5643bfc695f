#!/usr/bin/env bash
# The path a Galaxy user takes, checked end to end:
#   1. ansible-galaxy collection build (galaxy.yml's build_ignore applies);
#   2. ansible-galaxy collection install of that tarball into a temporary
#      collections path, which is then the only one Ansible sees;
#   3. ansible-doc lists and renders every module and role it ships, and a
#      playbook calls its modules by FQCN (tests/galaxy/install_check.yml);
#   4. galaxy-importer, the code Galaxy runs on an upload, over the tarball:
#      any warning or error it reports fails this script.
source "$(dirname "$0")/common.sh"
require_root galaxy
ensure_venv

# galaxy-importer pins its own ansible-lint range, so it lives in a venv of
# its own (cached, keyed by these pins) rather than in the development one.
GALAXY_IMPORTER_REQUIREMENTS=("galaxy-importer==0.4.44" "ansible-core>=2.19,<2.20")

galaxy_build=$BUILD/galaxy
scratch=$(mktemp -d "${TMPDIR:-/tmp}/handmade-galaxy.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

log "ansible-galaxy collection build"
rm -rf "$galaxy_build"
mkdir -p "$galaxy_build"
ansible-galaxy collection build "$ROOT" --output-path "$galaxy_build"
tarball=$(find "$galaxy_build" -name 'handmade-containers-*.tar.gz')
[ -f "$tarball" ] || die "ansible-galaxy collection build made no tarball in $galaxy_build"

log "ansible-galaxy collection install $(basename "$tarball")"
installed=$scratch/collections
# Only the installed copy from here on: not the checkout's link, not a copy
# that pip may have put into site-packages.
export ANSIBLE_COLLECTIONS_PATH=$installed ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
ansible-galaxy collection install --offline -p "$installed" "$tarball"
export ANSIBLE_PYTHON_INTERPRETER=$HOST_PYTHON ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0
found=$(ansible-galaxy collection list handmade.containers --format json)
[[ $found == *"\"$installed/ansible_collections\""* ]] ||
    die "handmade.containers does not resolve to the installed copy under $installed: $found"

# What the tarball ships, read from the tarball itself.
mapfile -t modules < <(tar -tzf "$tarball" | sed -n 's|^plugins/modules/\([A-Za-z0-9_]*\)\.py$|\1|p' | grep -vx '__init__' | sort)
mapfile -t roles < <(tar -tzf "$tarball" | sed -n 's|^roles/\([A-Za-z0-9_]*\)/meta/argument_specs\.yml$|\1|p' | sort)
# A tarball without modules is broken (a build_ignore pattern that swallowed
# plugins/, say), not a collection with less to check.
[ ${#modules[@]} -gt 0 ] ||
    die "$(basename "$tarball") ships no modules (no plugins/modules/*.py in it): check galaxy.yml's build_ignore"

log "ansible-doc on the installed collection: ${#modules[@]} module(s), ${#roles[@]} role(s) with argument specs"
listed=$(ansible-doc -l handmade.containers --json)
for module in "${modules[@]}"; do
    [[ $listed == *"\"handmade.containers.$module\""* ]] ||
        die "ansible-doc -l handmade.containers does not list $module, which the tarball ships: check its DOCUMENTATION"
    ansible-doc handmade.containers."$module" >/dev/null ||
        die "ansible-doc cannot render handmade.containers.$module from the installed tarball (message above): fix its DOCUMENTATION, EXAMPLES or RETURN"
    echo "module handmade.containers.$module: listed and documented"
done
listed_roles=$(ansible-doc -t role -l handmade.containers --json)
for role in "${roles[@]}"; do
    [[ $listed_roles == *"\"handmade.containers.$role\""* ]] ||
        die "ansible-doc -t role -l handmade.containers does not list the role $role"
    ansible-doc -t role handmade.containers."$role" >/dev/null ||
        die "ansible-doc cannot render the role handmade.containers.$role from the installed tarball (message above): fix roles/$role/meta/argument_specs.yml"
    echo "role handmade.containers.$role: listed and documented"
done

# Every shipped module that has a harmless check-mode call in tests/galaxy/
# is called, and at least one must be.
called=()
for module in "${modules[@]}"; do
    if [ -f "$ROOT/tests/galaxy/$module.yml" ]; then
        called+=("$module")
    else
        echo "module handmade.containers.$module: no tests/galaxy/$module.yml, so documented but not called"
    fi
done
[ ${#called[@]} -gt 0 ] ||
    die "the collection ships modules (${modules[*]}) but tests/galaxy/ calls none of them: add tests/galaxy/<module>.yml"
log "playbook calling ${called[*]} by FQCN from the installed collection"
mkdir -p "$scratch/check"
(
    cd "$scratch"
    ansible-playbook -i localhost, -c local "$ROOT/tests/galaxy/install_check.yml" \
        -e "$(python -c 'import json, sys; print(json.dumps({"install_check_modules": sys.argv[1:-2], "install_check_dir": sys.argv[-2], "install_check_id": sys.argv[-1]}))' \
            "${called[@]}" "$scratch/check" "$$")"
)

log "galaxy-importer over $(basename "$tarball")"
importer_key=$(printf '%s\n' "${GALAXY_IMPORTER_REQUIREMENTS[@]}" | sha256sum | cut -c1-12)
importer_venv=$CACHE/galaxy-importer-$importer_key
if [ ! -f "$importer_venv/.complete" ]; then
    rm -rf "$importer_venv"
    python3 -m venv "$importer_venv"
    "$importer_venv/bin/pip" install -qq --upgrade pip
    "$importer_venv/bin/pip" install -qq "${GALAXY_IMPORTER_REQUIREMENTS[@]}"
    touch "$importer_venv/.complete"
fi
# Galaxy's own settings, except what needs a network or a container engine:
# ansible-lint runs offline, ansible-test sanity runs in scripts/sanity.sh.
importer_log=$scratch/galaxy-importer.log
status=0
(
    cd "$scratch"
        GALAXY_IMPORTER_OFFLINE_ANSIBLE_LINT=true \
        GALAXY_IMPORTER_RUN_ANSIBLE_TEST=false \
        GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP="$scratch/ansible-tmp" \
        PATH="$importer_venv/bin:$PATH" \
        python -m galaxy_importer.main "$tarball"
) 2>&1 | tee "$importer_log" || status=$?
[ "$status" -eq 0 ] || die "galaxy-importer failed (exit $status): see its output above"
if grep -E '^(WARNING|ERROR|CRITICAL):' "$importer_log" >/dev/null; then
    die "galaxy-importer reported problems, which Galaxy would show on the collection's page: $(grep -cE '^(WARNING|ERROR|CRITICAL):' "$importer_log") line(s) above"
fi
log "galaxy: build, install, FQCN use and galaxy-importer passed"
