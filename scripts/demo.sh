#!/usr/bin/env bash
# make demo: build a container on this machine with the container role and
# prove each claim of the walkthrough (playbooks/demo.yml), then remove it.
#
#   sudo make demo                       # Alpine minirootfs from the Alpine CDN
#   sudo make demo MIRROR=local          # offline: a loopback mirror built from
#                                        # Debian's busybox-static, signed with a
#                                        # throwaway key
#   sudo make demo MIRROR=http://host/alpine   # any mirror laid out as the CDN,
#                                        # checked against its own checksums, and
#                                        # its signatures too with GPG_KEY=<path or
#                                        # URL> (and GPG_FINGERPRINT unless Alpine's)
#   sudo make demo KEEP=true             # leave the container running
source "$(dirname "$0")/common.sh"
require_root demo

CDN=https://dl-cdn.alpinelinux.org/alpine
# Alpine's release signing key, checked against the fingerprint the
# rootfs_fetch module pins by default.
ALPINE_KEY_URL=https://alpinelinux.org/keys/ncopa.asc
mirror=${MIRROR:-$CDN}
report=$BUILD/demo-report.txt
playbook_args=(-e "keep=${KEEP:-false}" -e "demo_report=$report")

apt_install gnupg util-linux
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
    playbook_args+=(-e "mirror=$mirror" -e verify_signature=true
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
    sudo make demo MIRROR=local
or point it at a mirror this machine can reach (laid out as $CDN):
    sudo make demo MIRROR=http://mirror.example/alpine"
    fi
    playbook_args+=(-e "mirror=$mirror")
    gpg_key=${GPG_KEY:-}
    if [ "$mirror" = "$CDN" ]; then gpg_key=${gpg_key:-$ALPINE_KEY_URL}; fi
    if [ -n "$gpg_key" ]; then
        playbook_args+=(-e verify_signature=true -e "gpg_key=$gpg_key")
        [ -z "${GPG_FINGERPRINT:-}" ] || playbook_args+=(-e "gpg_fingerprint=$GPG_FINGERPRINT")
    fi
fi

cd "$ROOT"
rm -f "$report"
# The YAML result format prints the table as the block of text it is.
status=0
ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ANSIBLE_LOCALHOST_WARNING=false \
    ansible-playbook playbooks/demo.yml "${playbook_args[@]}" || status=$?
if [ -s "$report" ]; then
    log "the walkthrough's claims, checked on $(hostname)"
    cat "$report"
fi
exit "$status"
