#!/usr/bin/env bash
# make demo: build a container on this machine with the container role and
# prove each claim of the walkthrough, and four of Docker's beyond them
# (playbooks/demo.yml), then remove it.
#
#   sudo make demo                       # Alpine minirootfs from the Alpine CDN,
#                                        # signed by Alpine's release key
#   sudo make demo MIRROR=local          # offline: a loopback mirror built from
#                                        # Debian's busybox-static, signed with a
#                                        # throwaway key
#   sudo make demo MIRROR=http://host/alpine   # any mirror laid out as the CDN,
#                                        # checked against its checksums and its
#                                        # signatures: Alpine's key, or GPG_KEY=<path
#                                        # or URL> with GPG_FINGERPRINT; VERIFY=false
#                                        # for a mirror without signatures;
#                                        # ALPINE_VERSION=<branch> for one without
#                                        # the role's default branch
#   sudo make demo KEEP=true             # leave the container running
source "$(dirname "$0")/common.sh"
require_root demo

CDN=https://dl-cdn.alpinelinux.org/alpine
# Alpine's release key, Natanael Copa's, ships with the collection
# (plugins/module_utils/_alpine_key.py) and is the role's default: nothing is
# downloaded for it. The demo pins its fingerprint by name.
ALPINE_FINGERPRINT=0482D84022F52DF1C4E7CD43293ACD0907D9495A
mirror=${MIRROR:-$CDN}
report=$BUILD/demo-report.txt
playbook_args=(-e "keep=${KEEP:-false}" -e "demo_report=$report")

# gnupg checks the signature; util-linux has losetup, unshare and nsenter;
# keyutils' keyctl puts a key in the host's keyring.
apt_install gnupg util-linux keyutils
ensure_venv
ensure_collection_path
mkdir -p "$BUILD"

if [ "$mirror" = local ]; then
    serve_test_mirror
    mirror=$MIRROR_URL
    log "serving the offline Alpine mirror at $mirror"
    # The throwaway mirror's tarballs stay out of the host's download cache,
    # in a short-lived directory of their own.
    downloads=$(mktemp -d /tmp/handmade-demo.XXXXXX)
    trap 'rm -rf "$downloads"; stop_test_mirror' EXIT
    # Its releases are 3.18.x and 3.19.x, signed by its own throwaway key: the
    # demo names the newest branch and that key, not the role's defaults.
    newest=${MIRROR_VERSIONS##* }
    playbook_args+=(-e "mirror=$mirror" -e "alpine_version=${newest%.*}" -e verify_signature=true
                    -e "gpg_key=$MIRROR_KEY_FILE" -e "gpg_fingerprint=$MIRROR_FINGERPRINT"
                    -e "download_cache=$downloads")
else
    # Ask for the small release index first, so that a machine without
    # Internet access learns how to run offline instead of a download error.
    index=$mirror/latest-stable/releases/$(uname -m)/latest-releases.yaml
    if ! reason=$("$HOST_PYTHON" - "$index" <<'PY' 2>&1
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=10).close()
except Exception as exc:
    sys.exit(str(getattr(exc, "reason", exc)))
PY
    ); then
        die "cannot reach the Alpine mirror $mirror ($index: $reason).
Run the demo offline, from a mirror served on 127.0.0.1 that is built from Debian's busybox-static:
    MIRROR=local scripts/demo.sh
or point it at a mirror this machine can reach (laid out as $CDN):
    MIRROR=http://mirror.example/alpine scripts/demo.sh"
    fi
    playbook_args+=(-e "mirror=$mirror")
    [ -z "${ALPINE_VERSION:-}" ] || playbook_args+=(-e "alpine_version=$ALPINE_VERSION")
    if [ "${VERIFY:-true}" = false ]; then
        log "not checking signatures (VERIFY=false): the download is trusted on its checksum alone"
        playbook_args+=(-e verify_signature=false)
    elif [ -n "${GPG_KEY:-}" ]; then
        playbook_args+=(-e verify_signature=true -e "gpg_key=$GPG_KEY")
        [ -z "${GPG_FINGERPRINT:-}" ] || playbook_args+=(-e "gpg_fingerprint=$GPG_FINGERPRINT")
    else
        log "checking signatures against Alpine's release key $ALPINE_FINGERPRINT (shipped with the collection)"
        playbook_args+=(-e verify_signature=true -e "gpg_fingerprint=$ALPINE_FINGERPRINT")
    fi
fi

cd "$ROOT"
rm -f "$report"
# The YAML result format prints the table as the block of text it is.
status=0
ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ANSIBLE_LOCALHOST_WARNING=false \
    ansible-playbook playbooks/demo.yml "${playbook_args[@]}" || status=$?
if [ -s "$report" ]; then
    log "the walkthrough's claims, and Docker's beyond them, checked on $(hostname)"
    cat "$report"
fi
exit "$status"
