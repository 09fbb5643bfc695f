"""The container module on the real kernel: one task converges a container's tree, limits and process.

Each test fetches from the offline mirror into a private directory, so the
trees, cgroups and state directories it makes are its own, and removes the
container afterwards (the fixture checks nothing of it is left).
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest
import yaml

import cgroup_helpers
from conftest import COLLECTIONS_PATH, processes_with, run_module_direct

from ansible_collections.handmade.containers.plugins.module_utils._container.record import STATE_ROOT, process_start_time

SLEEP = ["/bin/sleep", "3600"]


@pytest.fixture
def place():
    """A unique container name and a private directory for its root filesystem; all removed afterwards."""
    name = "test-container-%s" % uuid.uuid4().hex[:8]
    parent = tempfile.mkdtemp(prefix="handmade-container-test-")
    yield name, os.path.join(parent, "rootfs")
    for pid in processes_with(name):
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    for cgroup in ("handmade/containers/%s" % name, "handmade/test-%s/%s" % (name, name), "handmade/test-%s" % name):
        cgroup_helpers.force_remove(cgroup)
    if os.path.isdir(os.path.join(STATE_ROOT, name)):
        shutil.rmtree(os.path.join(STATE_ROOT, name))
    shutil.rmtree(parent, ignore_errors=True)


def _fetch(mirror, version):
    return {"version": version, "mirror": mirror.url, "verify_signature": True, "gpg_key": mirror.key_file,
            "gpg_fingerprint": mirror.fingerprint, "cache_dir": os.path.join(mirror.root, os.pardir, "cache-container")}


def _args(place, mirror, version=None, **extra):
    name, rootfs = place
    args = {"name": name, "rootfs": rootfs, "fetch": _fetch(mirror, version or mirror.versions[0]),
            "command": SLEEP, "memory": "64M", "pids_max": 64, "stop_timeout": 0}
    args.update(extra)
    return args


def _ok(result):
    assert not result["failed"], result
    return result


def _memory_limit(result):
    directory = result["cgroup_paths"]["memory"]
    for name in ("memory.max", "memory.limit_in_bytes"):
        if os.path.exists(os.path.join(directory, name)):
            return int(cgroup_helpers.read(directory, name))
    raise AssertionError("no memory limit file in %s" % directory)


def _stamp_version(rootfs):
    with open(os.path.join(rootfs, ".handmade-rootfs.json")) as handle:
        return json.load(handle)["version"]


def test_one_task_fetches_limits_and_starts_then_changes_nothing(run_module, alpine_mirror, place):
    first = _ok(run_module("container", _args(place, alpine_mirror)))
    assert first["changed"] and first["state"] == "started"
    assert [action.split()[0] for action in first["actions"]] == ["fetch", "create", "start"], first["actions"]
    assert process_start_time(first["pid"]) is not None
    assert first["cgroup"] == "handmade/containers/%s" % place[0]
    assert _memory_limit(first) == 64 * 1024 * 1024
    assert cgroup_helpers.cgroups_of(first["pid"])["memory"].endswith("/handmade/containers/%s" % place[0])
    assert first["rootfs_fetch"]["signature_verified"] is True

    again = _ok(run_module("container", _args(place, alpine_mirror)))
    assert not again["changed"] and again["actions"] == [], again
    assert again["pid"] == first["pid"]


def test_a_limit_changes_in_place_and_a_defining_setting_recreates(run_module, alpine_mirror, place):
    first = _ok(run_module("container", _args(place, alpine_mirror)))
    bigger = _ok(run_module("container", _args(place, alpine_mirror, memory="96M")))
    assert bigger["changed"] and bigger["pid"] == first["pid"], bigger
    assert bigger["actions"] == ["set memory 100663296 in the cgroup handmade/containers/%s (was memory 67108864)" % place[0]]
    assert _memory_limit(bigger) == 96 * 1024 * 1024

    recreated = _ok(run_module("container", _args(place, alpine_mirror, memory="96M", env={"MODE": "b"})))
    assert recreated["recreated"] and recreated["changed_settings"] == ["env"], recreated
    assert recreated["pid"] != first["pid"] and process_start_time(first["pid"]) is None


def test_check_mode_tells_a_limit_change_and_a_recreate_together_and_changes_nothing(
        run_module, ansible_module, alpine_mirror, place):
    first = _ok(run_module("container", _args(place, alpine_mirror)))
    # Through the real task executor, as a playbook in --check --diff runs it.
    changes = _args(place, alpine_mirror, memory="80M", env={"MODE": "b"})
    planned = _ok(ansible_module("container", changes, check_mode=True))
    assert planned["changed"] and planned["recreated"] and planned["changed_settings"] == ["env"], planned
    assert planned["actions"] == [
        "set memory 83886080 in the cgroup handmade/containers/%s (was memory 67108864)" % place[0],
        "recreate %s: env changed" % place[0]]
    diff = _ok(run_module("container", changes, check_mode=True, diff=True))["diff"]
    assert diff["before"]["limits"]["memory"] == 64 * 1024 * 1024
    assert diff["after"]["limits"]["memory"] == 80 * 1024 * 1024
    assert diff["before"]["container"]["config"]["env"] == {} and diff["after"]["container"]["config"]["env"] == {
        "MODE": "b"}
    assert process_start_time(first["pid"]) is not None
    assert _memory_limit(first) == 64 * 1024 * 1024


def test_check_mode_on_a_fresh_host_says_what_would_be_made_and_makes_nothing(ansible_module, alpine_mirror, place):
    planned = _ok(ansible_module("container", _args(place, alpine_mirror), check_mode=True))
    assert planned["changed"], planned
    assert [action.split()[0] for action in planned["actions"]] == ["fetch", "create", "start"], planned
    assert not os.path.exists(place[1])
    assert not os.path.exists(os.path.join(STATE_ROOT, place[0]))
    assert cgroup_helpers.directories_of("handmade/containers/%s" % place[0]) == []


def test_a_new_release_replaces_the_tree_under_a_running_container_without_failing(run_module, alpine_mirror, place):
    old, new = alpine_mirror.versions[0], alpine_mirror.versions[-1]
    first = _ok(run_module("container", _args(place, alpine_mirror, old)))
    planned = _ok(run_module("container", _args(place, alpine_mirror, new), check_mode=True))
    assert planned["changed"] and planned["recreated"], planned
    assert _stamp_version(place[1]) == old and process_start_time(first["pid"]) is not None

    upgraded = _ok(run_module("container", _args(place, alpine_mirror, new)))
    assert upgraded["actions"] == [
        "replace the root filesystem %s with %s %s" % (place[1], new, alpine_mirror.tarball_url(new)),
        "stop %s to replace its root filesystem" % place[0],
        "start %s again on the new root filesystem" % place[0]], upgraded["actions"]
    # Check mode said what the run did.
    assert planned["actions"] == upgraded["actions"] and upgraded["recreated"]
    assert _stamp_version(place[1]) == new and upgraded["rootfs_fetch"]["version"] == new
    assert process_start_time(first["pid"]) is None and process_start_time(upgraded["pid"]) is not None
    assert os.stat("/proc/%d/root" % upgraded["pid"]).st_ino == os.stat(place[1]).st_ino


def test_a_tree_another_container_runs_from_is_not_replaced_and_nothing_is_stopped(
        run_module, alpine_mirror, place):
    old, new = alpine_mirror.versions[0], alpine_mirror.versions[-1]
    first = _ok(run_module("container", _args(place, alpine_mirror, old)))
    neighbour = "%s-neighbour" % place[0]
    try:
        _ok(run_module("ns_exec", {"name": neighbour, "state": "started", "rootfs": place[1], "command": SLEEP}))
        refused = run_module("container", _args(place, alpine_mirror, new))
        assert refused["failed"] and "processes outside container %s run from it" % place[0] in refused["msg"]
        assert process_start_time(first["pid"]) is not None and _stamp_version(place[1]) == old
    finally:
        _ok(run_module("ns_exec", {"name": neighbour, "state": "absent", "stop_timeout": 0}))


def test_a_neighbour_chrooted_below_the_tree_still_holds_it(run_module, alpine_mirror, place):
    # Root inside may chroot (CAP_SYS_CHROOT is a default): its root is then
    # a directory of the tree, no longer the tree's own, and it still runs
    # from the tree. The swap must see it, or it would delete the tree under it.
    old, new = alpine_mirror.versions[0], alpine_mirror.versions[-1]
    first = _ok(run_module("container", _args(place, alpine_mirror, old)))
    neighbour = "%s-chrooted" % place[0]
    try:
        _ok(run_module("ns_exec", {"name": neighbour, "state": "started", "rootfs": place[1],
                                   "command": ["/bin/sh", "-c", "mkdir -p /tmp/jail/bin && cp /bin/busybox "
                                               "/tmp/jail/bin/ && exec chroot /tmp/jail /bin/busybox sleep 3600"]}))
        assert _rootfs_of_the_chrooted(neighbour) != "/"
        refused = run_module("container", _args(place, alpine_mirror, new))
        assert refused["failed"] and "processes outside container %s run from it" % place[0] in refused["msg"]
        assert process_start_time(first["pid"]) is not None and _stamp_version(place[1]) == old
    finally:
        _ok(run_module("ns_exec", {"name": neighbour, "state": "absent", "stop_timeout": 0}))


def _rootfs_of_the_chrooted(name, timeout=30):
    """PID 1's root as its mount namespace names it, once its chroot happened ("/" until then)."""
    with open(os.path.join(STATE_ROOT, name, "state.json")) as handle:
        pid = json.load(handle)["pid"]
    deadline = time.monotonic() + timeout
    while os.readlink("/proc/%d/root" % pid) == "/" and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.readlink("/proc/%d/root" % pid)


def test_stopped_keeps_everything_and_absent_removes_it_all(run_module, alpine_mirror, place):
    first = _ok(run_module("container", _args(place, alpine_mirror)))
    stopped = _ok(run_module("container", {"name": place[0], "state": "stopped"}))
    assert stopped["changed"] and stopped["pid"] is None and stopped["actions"] == ["stop %s" % place[0]]
    assert process_start_time(first["pid"]) is None
    assert os.path.isdir(place[1]) and cgroup_helpers.directories_of(first["cgroup"])

    removed = _ok(run_module("container", {"name": place[0], "state": "absent", "rootfs": place[1],
                                           "remove_rootfs": True}, diff=True))
    assert removed["actions"] == ["remove %s" % place[0], "remove the root filesystem %s" % place[1]]
    assert not os.path.exists(place[1])
    assert not os.path.exists(os.path.join(STATE_ROOT, place[0]))
    assert cgroup_helpers.directories_of(first["cgroup"]) == []
    assert not os.listdir(os.path.dirname(place[1])), "the removal left something beside the tree"
    again = _ok(run_module("container", {"name": place[0], "state": "absent", "rootfs": place[1],
                                         "remove_rootfs": True}))
    assert not again["changed"] and again["actions"] == []


@pytest.mark.parametrize("target, message", [
    ("own", "was not installed by rootfs_fetch"),
    ("/", "is not a root filesystem's own directory"),
    ("/etc", "was not installed by rootfs_fetch"),
    ("link", "is not a directory"),
])
def test_remove_rootfs_leaves_a_tree_it_did_not_install(run_module, place, target, message):
    name, rootfs = place
    os.makedirs(os.path.join(rootfs, "data"))
    path = {"own": rootfs, "link": rootfs + "-link"}.get(target, target)
    if target == "link":
        os.symlink(rootfs, path)
    refused = run_module("container", {"name": name, "state": "absent", "rootfs": path, "remove_rootfs": True})
    assert refused["failed"] and message in refused["msg"], refused
    assert os.path.isdir(os.path.join(rootfs, "data")) and os.path.isfile("/etc/passwd")


def test_cgroup_parent_places_the_own_cgroup_and_it_goes_with_the_container(run_module, alpine_mirror, place):
    parent = "handmade/test-%s" % place[0]
    started = _ok(run_module("container", _args(place, alpine_mirror, cgroup_parent=parent)))
    assert started["cgroup"] == "%s/%s" % (parent, place[0])
    assert cgroup_helpers.cgroups_of(started["pid"])["memory"].endswith("/%s/%s" % (parent, place[0]))
    _ok(run_module("container", {"name": place[0], "state": "absent", "cgroup_parent": parent}))
    assert cgroup_helpers.directories_of("%s/%s" % (parent, place[0])) == []


@pytest.mark.parametrize("extra, message", [
    ({"cgroup": "handmade/x", "cgroup_parent": "handmade/y"}, "mutually exclusive: cgroup|cgroup_parent"),
    ({"cgroup_parent": "system.slice"}, "cgroup_parent 'system.slice' must be handmade or a cgroup below it"),
    ({"fetch": None, "rootfs": None}, "state=started needs a root filesystem: give rootfs"),
    ({"fetch": {"version": "9.99"}}, "fetch: "),
    ({"command": ["/bin/no-such-program"]}, "has no /bin/no-such-program"),
    ({"user": "nobody-here"}, "nobody-here"),
])
def test_bad_input_is_refused_naming_the_problem_and_nothing_is_left(run_module, alpine_mirror, place, extra,
                                                                     message):
    args = _args(place, alpine_mirror)
    if extra.get("fetch") is not None:
        args["fetch"] = dict(args["fetch"], **extra.pop("fetch"))
    args.update(extra)
    refused = run_module("container", dict((key, value) for key, value in args.items() if value is not None))
    assert refused["failed"] and message in refused["msg"], refused
    assert not os.path.exists(os.path.join(STATE_ROOT, place[0]))
    assert cgroup_helpers.directories_of("handmade/containers/%s" % place[0]) == []


def test_the_documented_examples_run_as_written_against_the_mirror(alpine_mirror, tmp_path):
    """EXAMPLES, as one playbook; only where the tree comes from changes (the mirror, not the CDN)."""
    from ansible_collections.handmade.containers.plugins.modules import container as module
    tasks = yaml.safe_load(module.EXAMPLES)
    names = set()
    for task in tasks:
        args = task["handmade.containers.container"]
        names.update(task.get("loop") or [args["name"]])
        if "fetch" in args:
            args["fetch"].update(_fetch(alpine_mirror, alpine_mirror.versions[-1].rsplit(".", 1)[0]))
            args["fetch"]["cache_dir"] = str(tmp_path / "cache")
    playbook = tmp_path / "examples.yml"
    playbook.write_text(yaml.safe_dump([{"name": "EXAMPLES", "hosts": "localhost", "gather_facts": False,
                                         "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false")
    try:
        proc = subprocess.run(["ansible-playbook", str(playbook)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=env, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout.decode(errors="replace")
    finally:
        for name in names:
            run_module_direct("container", {"name": name, "state": "absent", "stop_timeout": 0,
                                            "rootfs": "/var/lib/handmade-containers/rootfs/%s" % name,
                                            "remove_rootfs": True})
    for name in names:
        assert not os.path.exists("/var/lib/handmade-containers/rootfs/%s" % name)
        assert not os.path.exists(os.path.join(STATE_ROOT, name))
