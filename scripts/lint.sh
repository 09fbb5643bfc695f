#!/usr/bin/env bash
# The changelog, then ansible-lint:
#   1. antsibull-changelog lint: changelogs/config.yaml and every fragment in
#      changelogs/fragments/; lint-changelog-yaml: changelogs/changelog.yaml;
#   2. CHANGELOG.md is exactly what antsibull-changelog generate makes of
#      changelogs/changelog.yaml (docs/changelog.md says how to release);
#   3. plugins/module_utils/_container/init_program.py was built from
#      src/init/init.c as it is (scripts/build-init.sh writes the digest);
#   4. ansible-lint with the production profile (configuration in
#      .ansible-lint): the roles, playbooks, Molecule scenarios and the
#      collection's metadata. Offline, with no collection dependencies to
#      fetch. Extra arguments go to ansible-lint (e.g. a path, or -t to list
#      the rules).
source "$(dirname "$0")/common.sh"
require_root lint
ensure_venv
ensure_collection_path
cd "$ROOT"

log "antsibull-changelog lint (changelogs/config.yaml, changelogs/fragments/, changelogs/changelog.yaml)"
antsibull-changelog lint ||
    die "a changelog fragment or changelogs/config.yaml is malformed (above): see docs/changelog.md for the format"
antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml ||
    die "changelogs/changelog.yaml is malformed (above): it is written by antsibull-changelog release, not by hand"

log "CHANGELOG.md is what antsibull-changelog generate makes of changelogs/changelog.yaml"
generated=$(mktemp "${TMPDIR:-/tmp}/handmade-changelog.XXXXXX")
trap 'rm -f "$generated"' EXIT
antsibull-changelog generate --output "$generated" --output-format md
diff -u CHANGELOG.md "$generated" ||
    die "CHANGELOG.md is not what antsibull-changelog generate makes of changelogs/changelog.yaml (diff above): run antsibull-changelog generate and commit CHANGELOG.md; never edit it by hand"

log "the built-in init's bytes were built from src/init/init.c as it is"
built_from=$(sed -n 's/^SOURCE_SHA256 = "\([0-9a-f]*\)"$/\1/p' plugins/module_utils/_container/init_program.py)
source_digest=$(sha256sum src/init/init.c | cut -d' ' -f1)
[ "$built_from" = "$source_digest" ] ||
    die "plugins/module_utils/_container/init_program.py was built from another src/init/init.c (sha256 ${built_from:-none}, the file's is $source_digest): run scripts/build-init.sh and commit both"

log "ansible-lint --offline (production profile)"
ansible-lint --offline "$@"
