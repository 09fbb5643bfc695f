#!/usr/bin/env bash
# ansible-test integration: the targets in tests/integration/targets/, one per
# module, played by ansible-playbook's own task executor (check mode, diff,
# register, failed_when as a playbook gets them) on this host, as root, on
# the real kernel. Every target cleans up after itself.
#
# The targets fetch their root filesystems from the offline Alpine-shaped
# mirror, served on 127.0.0.1 for the duration of the run. Where it is, its
# key and fingerprint reach them as vars through
# tests/integration/integration_config.yml, which ansible-test passes to
# every target; this script writes that file into the staging tree only.
#
# Extra arguments go to ansible-test: target names (cgroup, ns_exec), -v,
# --start-at-task, ... Without them, every target must have run.
source "$(dirname "$0")/common.sh"
require_root targets
apt_install git busybox-static gnupg procps
ensure_venv

# A staging tree of its own, so that a sanity or units run does not wait for
# this one (the shared tree is locked while it is in use), and a lock of its
# own: two runs of these targets at once would meet on the same containers.
mkdir -p "$BUILD"
exec 8>"$BUILD/ansible-test-targets.lock"
flock 8
ANSIBLE_TEST_STAGE=$BUILD/ansible-test-targets/ansible_collections/handmade/containers
stage_collection_for_ansible_test
exec 9>&- # the shared tree's lock: this run no longer reads it

serve_test_mirror 0 # any free port
# Vars for every target. Modules run on the host's own Python, standard
# library only, as on any managed host (the inventory ansible-test writes
# would give them the controller's virtualenv).
"$HOST_PYTHON" - "$ANSIBLE_TEST_STAGE/tests/integration/integration_config.yml" <<'PY'
import json, os, sys
config = {
    "ansible_python_interpreter": os.environ["HOST_PYTHON"],
    "handmade_mirror": {
        "url": os.environ["MIRROR_URL"],
        "root": os.environ["MIRROR_ROOT"],
        "key_file": os.environ["MIRROR_KEY_FILE"],
        "fingerprint": os.environ["MIRROR_FINGERPRINT"],
        "versions": os.environ["MIRROR_VERSIONS"].split(),
        "arches": os.environ["MIRROR_ARCHES"].split(),
    },
}
with open(sys.argv[1], "w") as handle:
    json.dump(config, handle, indent=2)  # JSON is YAML
    handle.write("\n")
PY

# ansible-test skips a target it judges unfit for the host with only a
# warning (and all of them with exit status 0): a full run must have run
# every target there is, each one's record written by this run.
results_dir=$ANSIBLE_TEST_STAGE/tests/output/data
rm -f "$results_dir"/integration-*.json

log "ansible-test integration (mirror at $MIRROR_URL)"
# --allow-destructive: the targets make cgroups, containers and root
# filesystems on this host (and remove them); ansible-test skips destructive
# targets on a host it does not manage unless told.
run_ansible_test integration --local --allow-destructive --color no "$@"

if [ $# -eq 0 ]; then
    "$HOST_PYTHON" - "$ANSIBLE_TEST_STAGE/tests/integration/targets" "$results_dir" <<'PY'
import glob, json, os, sys
targets, results_dir = sys.argv[1:]
expected = sorted(name for name in os.listdir(targets)
                  if os.path.isdir(os.path.join(targets, name)) and not name.startswith(("setup_", "prepare_")))
ran = set()
for path in glob.glob(os.path.join(results_dir, "integration-*.json")):
    with open(path) as handle:
        ran.update(json.load(handle)["targets"])
missing = [name for name in expected if name not in ran]
if not expected or missing:
    sys.exit("error: ansible-test did not run the targets %s (ran: %s): see its warnings above"
             % (", ".join(missing) or "(none found)", ", ".join(sorted(ran)) or "none"))
print("targets run: %s" % ", ".join(expected), file=sys.stderr)
PY
fi
