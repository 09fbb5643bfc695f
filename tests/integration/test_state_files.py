"""State files that cannot be turned against the host (record.py, logs.py), on the real kernel.

ns_exec runs as root and writes /run/handmade-containers/<name>/: the
record, the stdin fifo, the log and its rotated copies. A symlink (or the
wrong kind of file) planted at any of those names must be refused with the
path and the fix, or replaced without being followed, and the file it
points at must stay untouched. Each test plants one and checks both.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".build", "collections")))

from ansible_collections.handmade.containers.plugins.module_utils._container.supervise import find_supervisors
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (
    STATE_ROOT,
    StateDir,
    process_start_time,
)

SECRET = "root:secret-hash-that-must-not-change:19000:0:99999:7:::\n"


@pytest.fixture
def target(tmp_path):
    """A stand-in for /etc/shadow: a file the runtime must never write."""
    path = tmp_path / "shadow"
    path.write_text(SECRET)
    return str(path)


@pytest.fixture
def name(run_module):
    """A unique container name; whatever the test planted, its state is gone afterwards."""
    container = "test-state-files-%s" % uuid.uuid4().hex[:8]
    yield container
    path = os.path.join(STATE_ROOT, container)
    if os.path.islink(path) or (os.path.exists(path) and os.stat(path).st_uid != 0):
        os.unlink(path) if os.path.islink(path) else shutil.rmtree(path)
    elif os.path.isdir(path):
        os.chmod(path, 0o700)
        for entry in os.listdir(path):
            if entry in ("state.json", "stdin", "container.log") and os.path.islink(os.path.join(path, entry)):
                os.unlink(os.path.join(path, entry))
    result = run_module("ns_exec", {"name": container, "state": "absent", "stop_timeout": 0})
    assert not result["failed"], result
    assert not os.path.lexists(path)
    assert find_supervisors(StateDir(container)) == []


def _start(run_module, name, rootfs, command=("/bin/sh", "-c", "echo pwned; cat; exec sleep 600")):
    return run_module("ns_exec", {"name": name, "state": "started", "rootfs": rootfs, "command": list(command)})


def _unchanged(target):
    with open(target) as handle:
        return handle.read() == SECRET


def _stopped_container(run_module, name, rootfs):
    """A container started once and stopped: its state directory stays, with its files."""
    result = _start(run_module, name, rootfs, command=["/bin/sleep", "600"])
    assert not result["failed"], result
    stopped = run_module("ns_exec", {"name": name, "state": "stopped", "stop_timeout": 0})
    assert not stopped["failed"], stopped
    return os.path.join(STATE_ROOT, name)


def test_a_planted_log_symlink_is_refused_and_its_target_untouched(run_module, rootfs, name, target):
    directory = _stopped_container(run_module, name, rootfs)
    log = os.path.join(directory, "container.log")
    os.unlink(log)
    os.symlink(target, log)
    result = _start(run_module, name, rootfs)
    assert result["failed"], result
    assert "%s is a symlink, refused: remove it" % "container.log" in result["msg"] and log in result["msg"]
    time.sleep(0.5)  # had anything been started, it would have printed by now
    assert _unchanged(target)
    assert os.path.islink(log)  # refused, not silently replaced: the admin sees what was planted


def test_a_hard_linked_log_is_refused(run_module, rootfs, name, tmp_path):
    directory = _stopped_container(run_module, name, rootfs)
    # A hard link needs the same filesystem: plant one to a file made beside it in /run.
    victim = os.path.join(STATE_ROOT, ".%s-victim" % name)
    with open(victim, "w") as handle:
        handle.write(SECRET)
    try:
        log = os.path.join(directory, "container.log")
        os.unlink(log)
        os.link(victim, log)
        result = _start(run_module, name, rootfs)
        assert result["failed"] and "container.log has 2 hard links, refused: remove it" in result["msg"], result
        time.sleep(0.5)
        assert _unchanged(victim)
        os.unlink(log)
    finally:
        os.unlink(victim)


@pytest.mark.parametrize("state", ["started", "stopped", "absent"])
def test_a_symlinked_state_dir_is_refused_and_its_target_untouched(run_module, rootfs, name, tmp_path, state):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (elsewhere / "keep").write_text("kept")
    os.symlink(str(elsewhere), os.path.join(STATE_ROOT, name))
    args = {"name": name, "state": state, "rootfs": rootfs, "command": ["/bin/sleep", "600"]}
    result = run_module("ns_exec", args)
    assert result["failed"], result
    assert "%s is a symlink (to %s), refused: remove it" % (os.path.join(STATE_ROOT, name), elsewhere) in result["msg"]
    assert sorted(os.listdir(str(elsewhere))) == ["keep"]


@pytest.mark.parametrize("mode, owner, problem", [
    (0o777, 0, "is writable by group or others (mode 0777)"),
    (0o700, 65534, "is owned by uid 65534, not by 0 (root)"),
])
def test_a_state_dir_others_can_write_is_refused(run_module, rootfs, name, mode, owner, problem):
    path = os.path.join(STATE_ROOT, name)
    os.mkdir(path)
    os.chmod(path, mode)
    os.chown(path, owner, owner)
    result = _start(run_module, name, rootfs, command=["/bin/sleep", "600"])
    assert result["failed"] and problem in result["msg"] and path in result["msg"], result
    assert os.listdir(path) == []
    os.rmdir(path)


def test_a_state_json_symlink_is_refused_and_its_target_untouched(run_module, rootfs, name, target):
    directory = _stopped_container(run_module, name, rootfs)
    record = os.path.join(directory, "state.json")
    os.unlink(record)
    os.symlink(target, record)
    for state in ("started", "stopped"):
        result = run_module("ns_exec", {"name": name, "state": state, "rootfs": rootfs, "command": ["/bin/sh"]})
        assert result["failed"] and "state.json is a symlink, refused: remove it" in result["msg"], result
    assert _unchanged(target)


def test_a_planted_temporary_record_is_not_written_through(run_module, rootfs, name, target):
    directory = _stopped_container(run_module, name, rootfs)
    planted = os.path.join(directory, "state.json.tmp")
    os.symlink(target, planted)
    result = _start(run_module, name, rootfs, command=["/bin/sleep", "600"])
    assert not result["failed"], result
    assert _unchanged(target)
    with open(os.path.join(directory, "state.json")) as handle:
        assert json.load(handle)["pid"] == result["pid"]


@pytest.mark.parametrize("replacement", ["symlink", "regular file"])
def test_a_fifo_swapped_before_it_is_opened_is_refused(rootfs, name, target, replacement):
    # The window between mkfifo and open, made wide: mkfifo itself swaps the
    # new fifo for a symlink to the target, or for a regular file.
    script = (
        "import os\n"
        "from ansible_collections.handmade.containers.plugins.module_utils._container import lifecycle\n"
        "from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError\n"
        "real = os.mkfifo\n"
        "def mkfifo(path, mode=0o666, *, dir_fd=None):\n"
        "    real(path, mode, dir_fd=dir_fd)\n"
        "    os.unlink(path, dir_fd=dir_fd)\n"
        "    if %r == 'symlink':\n"
        "        os.symlink(%r, path, dir_fd=dir_fd)\n"
        "    else:\n"
        "        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=dir_fd))\n"
        "os.mkfifo = mkfifo\n"
        "try:\n"
        "    lifecycle.ensure_state({'name': %r, 'state': 'started', 'rootfs': %r,\n"
        "                            'command': ['/bin/sh', '-c', 'cat; sleep 600']})\n"
        "    print('STARTED')\n"
        "except ContainerError as exc:\n"
        "    print('REFUSED', exc)\n" % (replacement, target, name, rootfs))
    env = dict(os.environ, PYTHONPATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", ""))
    done = subprocess.run(["/usr/bin/python3", "-c", script], env=env, stdout=subprocess.PIPE, timeout=120,
                          check=False)
    output = done.stdout.decode()
    expected = "is a symlink, refused: remove it" if replacement == "symlink" else "is not a fifo, refused: remove it"
    assert output.startswith("REFUSED") and "stdin " + expected in output, output
    time.sleep(0.5)
    assert _unchanged(target)
    os.unlink(os.path.join(STATE_ROOT, name, "stdin"))


def test_a_symlinked_state_root_is_refused(rootfs, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    root = tmp_path / "state-root"
    os.symlink(str(elsewhere), str(root))
    script = (
        "from ansible_collections.handmade.containers.plugins.module_utils._container import lifecycle\n"
        "from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError\n"
        "try:\n"
        "    lifecycle.ensure_state({'name': 'x', 'state': 'started', 'rootfs': %r, 'command': ['/bin/true']},\n"
        "                           state_root=%r)\n"
        "    print('STARTED')\n"
        "except ContainerError as exc:\n"
        "    print('REFUSED', exc)\n" % (rootfs, str(root)))
    env = dict(os.environ, PYTHONPATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", ""))
    done = subprocess.run(["/usr/bin/python3", "-c", script], env=env, stdout=subprocess.PIPE, timeout=120,
                          check=False)
    output = done.stdout.decode()
    assert output.startswith("REFUSED") and "%s is a symlink (to %s), refused: remove it" % (root, elsewhere) in output
    assert os.listdir(str(elsewhere)) == []


def test_rotated_names_planted_as_symlinks_are_replaced_not_followed(run_module, rootfs, name, target):
    directory = _stopped_container(run_module, name, rootfs)
    for index in (1, 2):
        os.symlink(target, os.path.join(directory, "container.log.%d" % index))
    # Started again with rotation every 64k, three files: both planted names are rotated onto.
    result = run_module("ns_exec", {"name": name, "state": "started", "rootfs": rootfs,
                                    "command": ["/bin/sh", "-c", "seq 1 100000; exec sleep 600"],
                                    "log_max_size": "64k", "log_max_files": 3})
    assert not result["failed"], result
    # All of seq's output through the relay: a moment here, up to minutes in a loaded TCG VM.
    deadline = time.monotonic() + 300
    while True:
        try:
            with open(os.path.join(directory, "container.log"), "rb") as handle:
                if handle.read().endswith(b"100000\n"):
                    break
        except FileNotFoundError:
            pass  # between renaming container.log to .1 and making the new one
        assert time.monotonic() < deadline, "the relay did not write seq's last line within 300 s"
        time.sleep(0.05)
    assert _unchanged(target)
    for index in (1, 2):
        rotated = os.path.join(directory, "container.log.%d" % index)
        assert not os.path.islink(rotated) and os.path.getsize(rotated) > 60000
    # absent removes the directory, following nothing.
    os.symlink(os.path.dirname(target), os.path.join(directory, "a-planted-dir-link"))
    absent = run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})
    assert not absent["failed"] and not os.path.lexists(directory), absent
    assert _unchanged(target) and process_start_time(result["pid"]) is None
