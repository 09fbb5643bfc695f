"""handmade.containers.ns_exec on the real kernel.

Each test checks one of the walkthrough's claims (PID 1, own hostname, only
the rootfs visible, memory limit enforced) from inside the container and
from the host, plus the lifecycle of detached containers and bad input.
Every test cleans up its containers, cgroups and processes even on failure.
"""

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

from conftest import host_mounts, processes_with

# The tests also read the kernel through the collection's own module_utils
# (the cgroup API, capability masks), from the checkout linked by
# scripts/common.sh's ensure_collection_path.
sys.path.insert(0, os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".build", "collections")))

from ansible_collections.handmade.containers.plugins.module_utils._cgroup import manager as cgroups
from ansible_collections.handmade.containers.plugins.module_utils._capabilities import (
    DEFAULT_CAPABILITIES,
    capability_mask,
)
from ansible_collections.handmade.containers.plugins.module_utils._container import options, supervise
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (
    STATE_ROOT,
    StateDir,
    process_start_time,
)

HOST_NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "uts")

# A root process in a plain chroot escapes it: chroot into a subdirectory
# without entering it, climb with "..", chroot to where it ends up. The
# busybox `chroot` applet changes into the new root, so it cannot show this;
# a ten-line static program can.
ESCAPE_PROGRAM = r"""
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    mkdir("escape-dir", 0755);
    if (chroot("escape-dir") != 0) { perror("chroot escape-dir"); return 2; }
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") != 0) { perror("chroot ."); return 2; }
    DIR *root = opendir("/");
    struct dirent *entry;
    while ((entry = readdir(root)) != NULL)
        if (entry->d_name[0] != '.') puts(entry->d_name);
    return 0;
}
"""


def status_field(text, field):
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("%s not in /proc/self/status:\n%s" % (field, text))


@pytest.fixture
def container(run_module):
    """A unique container name; the container and its state are removed afterwards."""
    name = "test-ns_exec-%s" % uuid.uuid4().hex[:8]
    yield name
    result = run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})
    assert not result["failed"], result
    assert not os.path.exists(os.path.join(STATE_ROOT, name))


@pytest.fixture
def memory_cgroup():
    """A cgroup with a 64M memory limit and no swap, made through the cgroup manager."""
    name = "handmade/test-ns_exec-%s" % uuid.uuid4().hex[:8]
    try:
        cgroups.ensure_present(name, {"memory": "64M", "memory_swap": "64M"})
        yield name
    finally:
        cgroups.ensure_absent(name, kill=True)


# --------------------------------------------------------------------------
# state=run: the walkthrough's claims, checked inside and outside
# --------------------------------------------------------------------------

def test_pid1_is_the_command_and_no_host_process_is_visible(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "command": ["/bin/sh", "-c", "ps -o pid,args; true"]})
    assert result["rc"] == 0, result
    lines = result["stdout"].splitlines()[1:]
    pids = [int(line.split()[0]) for line in lines]
    assert pids == [1, 2], result["stdout"]
    assert lines[0].split(None, 1)[1].startswith("/bin/sh -c ps"), result["stdout"]


def test_hostname_is_the_containers_and_the_hosts_is_unchanged(run_module, rootfs):
    before = socket.gethostname()
    result = run_module("ns_exec", {"rootfs": rootfs, "hostname": "inside-box",
                                    "command": ["/bin/sh", "-c", "hostname; hostname changed-inside; hostname"]})
    # Without CAP_SYS_ADMIN (dropped by default) it cannot rename itself.
    assert result["stdout"].split() == ["inside-box", "inside-box"], result
    # With it, the rename stays inside its UTS namespace.
    renamed = run_module("ns_exec", {"rootfs": rootfs, "hostname": "inside-box", "capabilities": ["SYS_ADMIN"],
                                     "command": ["/bin/sh", "-c", "hostname changed-inside; hostname"]})
    assert renamed["stdout"].split() == ["changed-inside"], renamed
    assert socket.gethostname() == before


def test_only_the_rootfs_is_visible_and_no_mount_reaches_the_host(run_module, rootfs):
    before = host_mounts()
    result = run_module("ns_exec", {"rootfs": rootfs, "command": ["/bin/ls", "-1a", "/"]})
    assert result["rc"] == 0, result
    listed = set(result["stdout"].split()) - {".", ".."}
    assert listed == set(os.listdir(rootfs))
    assert host_mounts() == before


def test_namespace_ids_differ_from_the_hosts(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "command": ["/bin/true"]})
    assert sorted(result["namespaces"]) == sorted(HOST_NAMESPACES)
    for name in HOST_NAMESPACES:
        assert result["namespaces"][name] != os.readlink("/proc/self/ns/%s" % name), name


def test_sharing_the_host_network_keeps_its_namespace(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "namespaces": ["pid", "mount"],
                                    "command": ["/bin/sh", "-c", "readlink /proc/self/ns/net"]})
    assert result["stdout"].strip() == os.readlink("/proc/self/ns/net")
    assert "net" not in result["namespaces"] or result["namespaces"]["net"] == os.readlink("/proc/self/ns/net")


def test_own_network_has_only_loopback_up(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "command": ["/bin/cat", "/proc/net/dev"]})
    interfaces = [line.split(":")[0].strip() for line in result["stdout"].splitlines()[2:]]
    assert interfaces == ["lo"], result["stdout"]
    flags = run_module("ns_exec", {"rootfs": rootfs, "command": ["/bin/cat", "/sys/class/net/lo/flags"]})
    assert int(flags["stdout"], 16) & 0x1, flags


def test_chroot_escape_still_sees_only_the_rootfs(run_module, rootfs, tmp_path):
    if not shutil.which("gcc"):
        pytest.skip("gcc (with a static libc) is needed to build the escape program")
    source = tmp_path / "escape.c"
    source.write_text(ESCAPE_PROGRAM)
    program = os.path.join(rootfs, "escape")
    subprocess.run(["gcc", "-static", "-O1", "-o", program, str(source)], check=True)
    try:
        # The control: under a plain chroot (the walkthrough's), it escapes.
        control = subprocess.run(["unshare", "--mount", "--fork", "chroot", rootfs, "/escape"],
                                 stdout=subprocess.PIPE, check=True, cwd="/")
        assert set(control.stdout.decode().split()) == set(name for name in os.listdir("/") if name[0] != ".")
        shutil.rmtree(os.path.join(rootfs, "escape-dir"), ignore_errors=True)

        result = run_module("ns_exec", {"rootfs": rootfs, "command": ["/escape"]})
        assert result["rc"] == 0, result
        assert set(result["stdout"].split()) == set(name for name in os.listdir(rootfs) if name[0] != ".")
        assert "escape-dir" in result["stdout"].split()
    finally:
        os.unlink(program)
        shutil.rmtree(os.path.join(rootfs, "escape-dir"), ignore_errors=True)


def test_capabilities_are_the_kept_set_and_no_new_privs_is_set(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "command": ["/bin/cat", "/proc/self/status"]})
    kept = capability_mask(DEFAULT_CAPABILITIES)
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status_field(result["stdout"], field), 16) == kept, field
    assert status_field(result["stdout"], "NoNewPrivs") == "1"


def test_a_non_root_user_keeps_exactly_the_asked_capabilities(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "user": "1000:1000", "capabilities": ["NET_BIND_SERVICE"],
                                    "no_new_privileges": False,
                                    "command": ["/bin/sh", "-c", "id -u; id -g; cat /proc/self/status"]})
    uid, gid = result["stdout"].split()[:2]
    assert (uid, gid) == ("1000", "1000"), result
    kept = capability_mask(["NET_BIND_SERVICE"])
    assert int(status_field(result["stdout"], "CapEff"), 16) == kept
    assert int(status_field(result["stdout"], "CapBnd"), 16) == kept
    assert status_field(result["stdout"], "NoNewPrivs") == "0"


def _container_mounts(run_module, rootfs, **extra):
    result = run_module("ns_exec", dict({"rootfs": rootfs, "command": ["/bin/cat", "/proc/self/mountinfo"]}, **extra))
    assert result["rc"] == 0, result
    mounts = {}
    for line in result["stdout"].splitlines():
        fields = line.split()
        separator = fields.index("-")
        mounts[fields[4]] = {"options": fields[5].split(","), "fstype": fields[separator + 1]}
    return mounts


def test_masked_paths_are_covered_and_kernel_paths_read_only(run_module, rootfs):
    mounts = _container_mounts(run_module, rootfs)
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"):
        if os.path.exists(path):
            assert path in mounts, (path, sorted(mounts))
    if os.path.isdir("/sys/firmware"):
        assert mounts["/sys/firmware"]["fstype"] == "tmpfs"
        assert "ro" in mounts["/sys/firmware"]["options"]
    assert "ro" in mounts["/sys"]["options"]
    assert "ro" in mounts["/proc/sys"]["options"]
    assert mounts["/dev"]["fstype"] == "tmpfs"
    assert mounts["/dev/pts"]["fstype"] == "devpts"


def test_dev_holds_only_the_harmless_devices(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "command": [
        "/bin/sh", "-c", "ls /dev; readlink /dev/ptmx; echo ok > /dev/null; head -c 4 /dev/zero | wc -c"]})
    listed = result["stdout"].split()
    for device in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "fd",
                   "stdin", "stdout", "stderr", "ptmx"):
        assert device in listed, result["stdout"]
    assert "pts/ptmx" in listed and listed[-1] == "4"
    assert "sda" not in listed and "vda" not in listed and "mem" not in listed


def test_volumes_bind_and_tmpfs_and_read_only(run_module, rootfs, tmp_path):
    (tmp_path / "data.txt").write_text("from the host\n")
    before = host_mounts()
    result = run_module("ns_exec", {"rootfs": rootfs, "mounts": [
        {"src": str(tmp_path), "dest": "/srv/data", "readonly": True},
        {"dest": "/scratch", "type": "tmpfs", "options": "size=1m"},
    ], "command": ["/bin/sh", "-c",
                   "cat /srv/data/data.txt; touch /srv/data/new 2>/dev/null && echo writable; "
                   "touch /scratch/x && echo scratch-ok; grep -c ' /scratch ' /proc/self/mountinfo"]})
    assert result["stdout"].split("\n")[0] == "from the host", result
    assert "writable" not in result["stdout"]
    assert "scratch-ok" in result["stdout"]
    assert not (tmp_path / "new").exists()
    assert host_mounts() == before


def test_readonly_rootfs(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "readonly_rootfs": True,
                                    "command": ["/bin/sh", "-c", "touch /should-fail"]})
    assert result["rc"] != 0
    assert "Read-only" in result["stderr"], result
    assert not os.path.exists(os.path.join(rootfs, "should-fail"))


def test_stdin_env_workdir_and_exit_code(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "stdin": "line one\n", "env": {"GREETING": "hi"},
                                    "workdir": "/etc",
                                    "command": "/bin/sh -c 'read x; echo \"$x\" $GREETING $(pwd); exit 3'"})
    assert result["rc"] == 3
    assert result["stdout"] == "line one hi /etc\n"


def test_timeout_kills_the_whole_container(run_module, rootfs):
    marker = "31.%d" % (uuid.uuid4().int % 1000)
    started = time.monotonic()
    result = run_module("ns_exec", {"rootfs": rootfs, "timeout": 1,
                                    "command": ["/bin/sh", "-c", "sleep %s & sleep %s" % (marker, marker)]})
    assert result["timed_out"] and result["rc"] == 137, result
    assert time.monotonic() - started < 20
    assert processes_with("sleep %s" % marker) == []


def test_memory_limit_oom_kills_a_400m_allocation(run_module, rootfs, memory_cgroup):
    result = run_module("ns_exec", {"rootfs": rootfs, "cgroup": memory_cgroup,
                                    "command": ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=400M", "count=1"]})
    assert result["oom_killed"] is True, result
    assert result["rc"] == 137, result
    assert cgroups.open_existing(memory_cgroup).stats()["oom_kill"] >= 1
    small = run_module("ns_exec", {"rootfs": rootfs, "cgroup": memory_cgroup,
                                   "command": ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=1"]})
    assert small["rc"] == 0 and small["oom_killed"] is False, small


def test_the_cgroup_is_joined_before_the_cgroup_namespace(run_module, rootfs, memory_cgroup):
    result = run_module("ns_exec", {"rootfs": rootfs, "cgroup": memory_cgroup,
                                    "command": ["/bin/cat", "/proc/self/cgroup"]})
    # Its own cgroup is the root of its view: it was in the cgroup when the
    # namespace was made, so nothing of the host's tree shows.
    for line in result["stdout"].splitlines():
        assert line.rsplit(":", 1)[1] == "/", result["stdout"]
    assert cgroups.open_existing(memory_cgroup).pids() == set()


# --------------------------------------------------------------------------
# Detached containers: started, exec, stopped, absent
# --------------------------------------------------------------------------

def _started(run_module, name, rootfs, **extra):
    args = dict({"name": name, "state": "started", "rootfs": rootfs, "command": ["/bin/sh"]}, **extra)
    result = run_module("ns_exec", args)
    assert not result["failed"], result
    return result


def test_started_is_idempotent_and_recreates_on_change(run_module, rootfs, container):
    mounts_before = host_mounts()
    first = _started(run_module, container, rootfs)
    assert host_mounts() == mounts_before
    assert first["changed"] and process_start_time(first["pid"]) is not None
    again = _started(run_module, container, rootfs)
    assert not again["changed"] and again["pid"] == first["pid"]
    check = run_module("ns_exec", {"name": container, "state": "started", "rootfs": rootfs,
                                   "command": ["/bin/sh"], "hostname": "other"}, check_mode=True)
    assert check["changed"] and process_start_time(first["pid"]) is not None
    changed = _started(run_module, container, rootfs, hostname="other")
    assert changed["changed"] and changed["recreated"] and changed["pid"] != first["pid"]
    assert process_start_time(first["pid"]) is None


def test_detached_shell_is_driven_through_its_fifo_and_logs(run_module, rootfs, container):
    result = _started(run_module, container, rootfs)
    fifo = os.path.join(STATE_ROOT, container, "stdin")
    with open(fifo, "w") as handle:
        handle.write("echo written-through-fifo; hostname\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(result["log_path"]) as handle:
            log = handle.read()
        if container in log:
            break
        time.sleep(0.05)
    assert log.split() == ["written-through-fifo", container]
    # Closing our writer did not end the shell: the fifo is held open.
    assert process_start_time(result["pid"]) is not None


def test_detached_container_keeps_no_descriptor_of_ours(run_module, rootfs, container):
    result = _started(run_module, container, rootfs)
    pid = result["pid"]
    fds = sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))
    assert fds == [0, 1, 2]
    assert os.readlink("/proc/%d/fd/0" % pid) == os.path.join(STATE_ROOT, container, "stdin")
    # stdout and stderr: the pipe to its supervisor (test_logs.py checks the supervisor).
    assert os.readlink("/proc/%d/fd/1" % pid).startswith("pipe:")
    # No process of the module stays beside it: its parent is its supervisor.
    with open("/proc/%d/stat" % pid) as handle:
        parent = int(handle.read().rsplit(")", 1)[1].split()[1])
    # (The supervisor execs its program a moment after the task returns: seconds on a slow VM.)
    deadline = time.monotonic() + 120
    while not supervise.find_supervisors(StateDir(container)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [supervisor for supervisor, _start in supervise.find_supervisors(StateDir(container))] == [parent]
    with open("/proc/%d/cmdline" % parent, "rb") as handle:
        assert handle.read().split(b"\0")[5] == supervise.program.MARK.encode()


def test_started_through_ansible_returns_promptly(ansible_module, rootfs, container):
    result = ansible_module("ns_exec", {"name": container, "state": "started", "rootfs": rootfs,
                                        "command": ["/bin/sleep", "86400"]})
    assert not result["failed"], result
    # Had the container kept one of the module's pipes, ansible would have
    # waited for EOF until `sleep` ended (or the call's own timeout): it
    # returned with PID 1 alive, however slow the host.
    assert process_start_time(result["pid"]) is not None


def test_exec_joins_the_containers_namespaces_root_and_cgroup(run_module, rootfs, container, memory_cgroup):
    result = _started(run_module, container, rootfs, cgroup=memory_cgroup, hostname="exec-box")
    hog = run_module("ns_exec", {"name": container, "state": "exec",
                                 "command": ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=400M", "count=1"]})
    assert hog["oom_killed"] is True and hog["rc"] == 137, hog
    assert process_start_time(result["pid"]) is not None
    executed = run_module("ns_exec", {"name": container, "state": "exec", "command": [
        "/bin/sh", "-c", "for ns in pid mnt net; do readlink /proc/self/ns/$ns; done; hostname; "
        "ps -o pid,args | sed -n 2p; ls /; cat /proc/self/status; cat /proc/self/cgroup"]})
    assert executed["rc"] == 0, executed
    lines = executed["stdout"].splitlines()
    namespaces = result["namespaces"]
    assert lines[:3] == [namespaces["pid"], namespaces["mnt"], namespaces["net"]]
    assert lines[3] == "exec-box"
    assert lines[4].split() == ["1", "/bin/sh"]
    assert "CapEff:\t%016x" % capability_mask(DEFAULT_CAPABILITIES) in executed["stdout"]
    assert set(os.listdir(rootfs)) <= set(lines[5:])
    # In the container's cgroup namespace and in its cgroup: the root of its
    # view. The memory controller's line is "N:memory:/" on v1, "0::/" on v2.
    cgroup_lines = [line for line in lines if line.count(":") >= 2 and line.split(":")[0].isdigit()]
    memory_lines = [line for line in cgroup_lines if ":memory:" in line] or \
        [line for line in cgroup_lines if line.startswith("0::")]
    assert memory_lines and all(line.endswith(":/") for line in memory_lines), cgroup_lines


def test_enter_command_opens_a_shell_inside(run_module, rootfs, container):
    result = _started(run_module, container, rootfs)
    shell = subprocess.run(shlex.split(result["enter_command"]), input=b"hostname; echo $$; exit\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=False)
    assert shell.returncode == 0, shell.stderr
    hostname, pid = shell.stdout.decode().split()
    assert hostname == container
    assert int(pid) > 1  # a pid of the container's own PID namespace


def test_stopped_and_absent_leave_no_process_in_the_cgroup(run_module, rootfs, container, memory_cgroup):
    result = _started(run_module, container, rootfs, cgroup=memory_cgroup,
                      command=["/bin/sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    cgroup = cgroups.open_existing(memory_cgroup)
    # sh and two sleeps (the supervisor runs outside the container's cgroup)
    assert result["pid"] in cgroup.pids() and len(cgroup.pids()) == 3
    stopped = run_module("ns_exec", {"name": container, "state": "stopped", "stop_timeout": 0.5})
    assert stopped["changed"] and stopped["state"] == "stopped", stopped
    assert cgroup.pids() == set()
    again = run_module("ns_exec", {"name": container, "state": "stopped"})
    assert not again["changed"]
    absent = run_module("ns_exec", {"name": container, "state": "absent"})
    assert absent["changed"] and not os.path.exists(os.path.join(STATE_ROOT, container))
    assert not run_module("ns_exec", {"name": container, "state": "absent"})["changed"]


def test_exec_on_a_stopped_container_fails_clearly(run_module, rootfs, container):
    _started(run_module, container, rootfs)
    run_module("ns_exec", {"name": container, "state": "stopped", "stop_timeout": 0})
    result = run_module("ns_exec", {"name": container, "state": "exec", "command": ["/bin/true"]})
    assert result["failed"] and "is not running" in result["msg"] and "state=started" in result["msg"]


# --------------------------------------------------------------------------
# Faults: the next run converges
# --------------------------------------------------------------------------

def test_dead_pid1_is_restarted(run_module, rootfs, container):
    first = _started(run_module, container, rootfs)
    os.kill(first["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_start_time(first["pid"]) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    second = _started(run_module, container, rootfs)
    assert second["changed"] and second["pid"] != first["pid"]


def test_a_pid_with_another_start_time_is_not_the_container(run_module, rootfs, container):
    first = _started(run_module, container, rootfs)
    record_path = os.path.join(STATE_ROOT, container, "state.json")
    with open(record_path) as handle:
        record = json.load(handle)
    # Point the record at a live process that is not the container (pid reuse).
    record["pid"], record["start_time"] = os.getpid(), record["start_time"] - 1
    with open(record_path, "w") as handle:
        json.dump(record, handle)
    second = _started(run_module, container, rootfs)
    assert second["changed"] and second["pid"] not in (os.getpid(), first["pid"])
    # The old container was found by its stdin fifo and stopped, not left running.
    assert process_start_time(first["pid"]) is None


def test_state_dir_removed_by_hand_converges(run_module, rootfs, container):
    first = _started(run_module, container, rootfs)
    shutil.rmtree(os.path.join(STATE_ROOT, container))
    second = _started(run_module, container, rootfs)
    assert second["changed"] and second["pid"] != first["pid"]
    assert process_start_time(first["pid"]) is None


def test_a_start_killed_mid_way_leaves_nothing_and_the_next_run_converges(rootfs, container, run_module):
    # The process that launches (the supervisor-to-be) dies right after the
    # record is written, before the child may go on.
    script = (
        "import os, signal, sys\n"
        "from ansible_collections.handmade.containers.plugins.module_utils._container import lifecycle, record\n"
        "from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError\n"
        "write = record.StateDir.write\n"
        "def write_then_die(self, record):\n"
        "    write(self, record)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "record.StateDir.write = write_then_die\n"
        "try:\n"
        "    lifecycle.ensure_state({'name': %r, 'state': 'started', 'rootfs': %r, 'command': ['/bin/sh']})\n"
        "except ContainerError as exc:\n"
        "    sys.exit(str(exc))\n"
        % (container, rootfs))
    env = dict(os.environ, PYTHONPATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", ""))
    killed = subprocess.run(["/usr/bin/python3", "-c", script], env=env, timeout=60, check=False,
                            stderr=subprocess.PIPE)
    assert killed.returncode == 1 and b"died before the container ran" in killed.stderr, killed.stderr
    fifo = os.path.join(STATE_ROOT, container, "stdin")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        holders = [pid for pid in os.listdir("/proc") if pid.isdigit() and _reads(pid, fifo)]
        if not holders:
            break
        time.sleep(0.05)
    assert holders == [], "the half-started child did not exit"
    assert not os.path.exists(os.path.join(STATE_ROOT, container))
    result = _started(run_module, container, rootfs)
    assert result["changed"] and process_start_time(result["pid"]) is not None


def _reads(pid, fifo):
    try:
        return os.readlink("/proc/%s/fd/0" % pid) == fifo
    except OSError:
        return False


# --------------------------------------------------------------------------
# Bad input: a clear message, nothing left behind
# --------------------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    ({"rootfs": "/nonexistent/rootfs"}, ["/nonexistent/rootfs", "does not exist", "rootfs_fetch"]),
    ({"command": ["/bin/no-such-program"]}, ["has no /bin/no-such-program", "rootfs"]),
    ({"command": "no-such-program"}, ["has no no-such-program in PATH"]),
    ({"command": ["/etc/passwd"]}, ["/etc/passwd", "not executable", "chmod +x"]),
    ({"name": "bad/name"}, ["invalid container name"]),
    ({"namespaces": ["pid", "mount", "time"]}, ["unknown namespace 'time'"]),
    ({"namespaces": ["pid", "mount", "user"]}, ["user namespace is not supported"]),
    ({"namespaces": ["pid", "uts"]}, ["must include 'mount'"]),
    ({"cgroup": "handmade/test-ns_exec-missing"}, ["does not exist", "handmade.containers.cgroup"]),
    ({"capabilities": ["CAP_FLY"]}, ["unknown capability"]),
    ({"user": "nosuchuser"}, ["nosuchuser", "/etc/passwd"]),
    ({"workdir": "/no/such/dir"}, ["workdir /no/such/dir does not exist"]),
])
def test_bad_input_fails_clearly(run_module, rootfs, args, expected):
    before = host_mounts()
    base = {"rootfs": rootfs, "command": ["/bin/true"]}
    result = run_module("ns_exec", dict(base, **args))
    assert result["failed"], result
    for text in expected:
        assert text in result["msg"], result["msg"]
    assert host_mounts() == before


def test_mount_dest_escaping_through_a_symlink_is_refused(run_module, rootfs, tmp_path):
    link = os.path.join(rootfs, "mnt", "outside")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink("../../../../../../../" + str(tmp_path).lstrip("/"), link)
    try:
        result = run_module("ns_exec", {"rootfs": rootfs, "command": ["/bin/true"],
                                        "mounts": [{"dest": "/mnt/outside/x", "type": "tmpfs"}]})
        assert result["failed"]
        assert "escapes the rootfs" in result["msg"] and "/mnt/outside" in result["msg"], result["msg"]
        assert os.listdir(str(tmp_path)) == []
    finally:
        os.unlink(link)


def test_started_with_a_bad_command_leaves_nothing(run_module, rootfs, container):
    result = run_module("ns_exec", {"name": container, "state": "started", "rootfs": rootfs,
                                    "command": ["/bin/no-such-program"]})
    assert result["failed"] and "has no /bin/no-such-program" in result["msg"]
    assert not os.path.exists(os.path.join(STATE_ROOT, container))


def test_check_mode_changes_nothing_and_diff_shows_the_change(run_module, rootfs, container):
    args = {"name": container, "state": "started", "rootfs": rootfs, "command": ["/bin/sh"]}
    planned = run_module("ns_exec", args, check_mode=True, diff=True)
    assert planned["changed"], planned
    assert planned["diff"]["before"] == {"state": "absent"}
    assert planned["diff"]["after"]["state"] == "started"
    assert not os.path.exists(os.path.join(STATE_ROOT, container))
    started = _started(run_module, container, rootfs)
    removal = run_module("ns_exec", {"name": container, "state": "absent"}, check_mode=True, diff=True)
    assert removal["changed"] and removal["diff"]["after"] == {"state": "absent"}
    assert process_start_time(started["pid"]) is not None
    assert "diff" not in run_module("ns_exec", dict(args))


def test_check_mode_of_run_and_exec_passes_through_the_task_executor(ansible_module, run_module, rootfs, container):
    # Ansible's task executor fails any result whose "rc" is present and not
    # 0: a check-mode run that cannot know the rc must not return one.
    planned = ansible_module("ns_exec", {"rootfs": rootfs, "command": ["/bin/true"]}, check_mode=True)
    assert not planned["failed"] and planned["changed"], planned
    assert "rc" not in planned and "stdout" not in planned, planned
    _started(run_module, container, rootfs)
    planned = ansible_module("ns_exec", {"name": container, "state": "exec", "command": ["/bin/false"]},
                             check_mode=True)
    assert not planned["failed"] and planned["changed"], planned
    assert "rc" not in planned, planned


def test_exec_timeout_kills_the_exec_process_only(run_module, rootfs, container):
    started = _started(run_module, container, rootfs)
    marker = "32.%d" % (uuid.uuid4().int % 1000)
    result = run_module("ns_exec", {"name": container, "state": "exec", "timeout": 1,
                                    "command": ["/bin/sh", "-c", "sleep %s & sleep %s" % (marker, marker)]})
    assert result["failed"] and result["msg"].startswith("command timed out after 1 s"), result
    assert result["timed_out"] and result["rc"] == 137, result
    assert processes_with("sleep %s" % marker) == []
    assert process_start_time(started["pid"]) is not None


def test_the_claims_hold_seen_from_the_host(run_module, rootfs, container):
    result = _started(run_module, container, rootfs, hostname="seen-from-host")
    pid = result["pid"]
    with open("/proc/%d/status" % pid) as handle:
        status = handle.read()
    # PID 1 inside, an ordinary pid outside.
    assert status_field(status, "NSpid").split() == [str(pid), "1"]
    assert int(status_field(status, "CapEff"), 16) == capability_mask(DEFAULT_CAPABILITIES)
    assert status_field(status, "NoNewPrivs") == "1"
    uts = subprocess.run(["nsenter", "--target", str(pid), "--uts", "hostname"], stdout=subprocess.PIPE, check=True)
    assert uts.stdout.decode().strip() == "seen-from-host" != socket.gethostname()
    assert sorted(os.listdir("/proc/%d/root" % pid)) == sorted(os.listdir(rootfs))
    with open("/proc/%d/mountinfo" % pid) as handle:
        mounts = dict((line.split()[4], line.split()[5].split(",")) for line in handle)
    assert "ro" in mounts["/sys"] and "ro" in mounts["/proc/sys"]
    assert not any(point.startswith(rootfs) for point in mounts), "host paths leaked into the container"


def test_signals_start_at_their_defaults(run_module, rootfs, container):
    # Python ignores SIGPIPE and SIGXFSZ; the container must not inherit that.
    ran = run_module("ns_exec", {"rootfs": rootfs, "command": ["/bin/grep", "^Sig[IB]", "/proc/self/status"]})
    assert ran["stdout"].split() == ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16], ran
    piped = run_module("ns_exec", {"rootfs": rootfs, "command": ["/bin/sh", "-c", "yes | head -n 1"]})
    assert piped["stdout"] == "y\n" and piped["stderr"] == "", piped
    _started(run_module, container, rootfs)
    executed = run_module("ns_exec", {"name": container, "state": "exec",
                                      "command": ["/bin/grep", "^SigIgn", "/proc/self/status"]})
    assert executed["stdout"].split() == ["SigIgn:", "0" * 16], executed


def test_without_a_pid_namespace_nothing_outlives_the_command(run_module, rootfs):
    marker = "33.%d" % (uuid.uuid4().int % 1000)
    result = run_module("ns_exec", {"rootfs": rootfs, "namespaces": ["mount", "uts"],
                                    "command": ["/bin/sh", "-c", "sleep %s & echo started" % marker]})
    assert result["rc"] == 0 and result["stdout"] == "started\n", result
    assert processes_with("sleep %s" % marker) == []
    timed = run_module("ns_exec", {"rootfs": rootfs, "namespaces": ["mount"], "timeout": 1,
                                   "command": ["/bin/sh", "-c", "sleep %s & sleep %s" % (marker, marker)]})
    assert timed["timed_out"] and timed["rc"] == 137, timed
    assert processes_with("sleep %s" % marker) == []


def test_exec_as_another_user_in_another_directory(run_module, rootfs, container):
    _started(run_module, container, rootfs)
    executed = run_module("ns_exec", {"name": container, "state": "exec", "user": "1000:1000", "workdir": "/tmp",
                                      "env": {"FROM_EXEC": "yes"},
                                      "command": ["/bin/sh", "-c", "id -u; pwd; echo $FROM_EXEC $HOSTNAME"]})
    assert executed["stdout"].split("\n")[:3] == ["1000", "/tmp", "yes %s" % container], executed


# --------------------------------------------------------------------------
# Read-only all the way down, and exec's inherited settings
# --------------------------------------------------------------------------

# Every mount of a subtree, as the container's own mountinfo lists it, with
# its per-mount options; then one write attempt per given directory.
READONLY_PROBE = r"""
top=$1; shift
awk -v top="$top" '$5 == top || index($5, top "/") == 1 { print $5, $6 }' /proc/self/mountinfo
for dir in "$@"; do mkdir "$dir/handmade-probe" 2>/dev/null && echo "WROTE $dir"; done
true
"""


def _mounts_and_writes(stdout):
    mounts, writes = {}, []
    for line in stdout.splitlines():
        if line.startswith("WROTE "):
            writes.append(line[6:])
        elif line:
            point, options = line.split(" ", 1)
            mounts[point] = options.split(",")
    return mounts, writes


@pytest.fixture
def submount(tmp_path):
    """A directory with a tmpfs mounted inside it, on the host: (directory, name of the submount)."""
    outer = tmp_path / "outer"
    (outer / "inner").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "handmade-test", str(outer / "inner")], check=True)
    try:
        yield str(outer), "inner"
    finally:
        subprocess.run(["umount", "-l", str(outer / "inner")], check=False)


def test_without_a_network_namespace_nothing_under_sys_is_writable(run_module, rootfs):
    # The host's /sys is bound in: its cgroup mounts below must be read-only
    # too, or the container's root rewrites the host's cgroups.
    with open("/proc/self/mountinfo") as handle:
        host_cgroup_mounts = [line.split()[4] for line in handle if " /sys/fs/cgroup/" in line or
                              line.split()[4] == "/sys/fs/cgroup"]
    assert host_cgroup_mounts, "the host has no cgroup mounts under /sys/fs/cgroup"
    targets = sorted(set(host_cgroup_mounts + ["/sys", "/sys/fs/cgroup"]))
    try:
        result = run_module("ns_exec", {"rootfs": rootfs, "namespaces": ["pid", "mount", "uts", "ipc", "cgroup"],
                                        "command": ["/bin/sh", "-c", READONLY_PROBE, "probe", "/sys"] + targets})
    finally:
        # Should the probe get through, its directories are host cgroups: remove them.
        leaked = [target for target in targets if os.path.isdir(os.path.join(target, "handmade-probe"))]
        for target in leaked:
            os.rmdir(os.path.join(target, "handmade-probe"))
    assert result["rc"] == 0, result
    mounts, writes = _mounts_and_writes(result["stdout"])
    assert writes == [] and leaked == [], result["stdout"]
    assert set(host_cgroup_mounts) <= set(mounts), result["stdout"]
    assert all("ro" in options for options in mounts.values()), mounts


def test_a_read_only_volume_with_a_submount_is_read_only_all_the_way_down(run_module, rootfs, submount):
    source, inner = submount
    result = run_module("ns_exec", {"rootfs": rootfs, "mounts": [{"src": source, "dest": "/data", "readonly": True}],
                                    "command": ["/bin/sh", "-c", READONLY_PROBE, "probe", "/data",
                                                "/data", "/data/" + inner]})
    assert result["rc"] == 0, result
    mounts, writes = _mounts_and_writes(result["stdout"])
    assert writes == [], result["stdout"]
    assert set(mounts) == {"/data", "/data/" + inner}, result["stdout"]
    assert all("ro" in options for options in mounts.values()), mounts
    assert os.listdir(os.path.join(source, inner)) == []


def test_readonly_rootfs_is_read_only_all_the_way_down(run_module, rootfs):
    inner = os.path.join(rootfs, "mnt", "handmade-inner")
    os.makedirs(inner, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "handmade-test", inner], check=True)
    try:
        result = run_module("ns_exec", {
            "rootfs": rootfs, "readonly_rootfs": True, "mounts": [{"dest": "/scratch", "type": "tmpfs"}],
            "command": ["/bin/sh", "-c", READONLY_PROBE + "touch /dev/shm/x /scratch/x && echo tmpfs-writable",
                        "probe", "/mnt", "/", "/mnt", "/mnt/handmade-inner"]})
        assert result["rc"] == 0, result
        mounts, writes = _mounts_and_writes(result["stdout"].replace("tmpfs-writable\n", ""))
        assert writes == [], result["stdout"]
        assert "/mnt/handmade-inner" in mounts and "ro" in mounts["/mnt/handmade-inner"], result["stdout"]
        assert "tmpfs-writable" in result["stdout"], result
        assert os.listdir(inner) == []
    finally:
        subprocess.run(["umount", "-l", inner], check=False)
        os.rmdir(inner)


def test_the_fallback_remounts_every_submount_read_only(submount):
    # Kernels before 5.12 have no mount_setattr: the plan then remounts each
    # mount below the target on its own. Run it in a mount namespace of its own.
    source, inner = submount
    script = (
        "import os, sys\n"
        "from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_\n"
        "from ansible_collections.handmade.containers.plugins.module_utils._container import mounts\n"
        "sys_.unshare(sys_.CLONE_NEWNS)\n"
        "sys_.mount(None, '/', None, sys_.MS_REC | 0x40000)  # MS_PRIVATE\n"
        "sys_.mount(sys.argv[1], sys.argv[1], None, sys_.MS_BIND | sys_.MS_REC)\n"
        "mounts.remount_each_readonly(sys.argv[1])\n"
        "for path in (sys.argv[1], os.path.join(sys.argv[1], sys.argv[2])):\n"
        "    try:\n"
        "        os.mkdir(os.path.join(path, 'probe'))\n"
        "        print('WROTE', path)\n"
        "    except OSError as exc:\n"
        "        print(exc.strerror)\n")
    env = dict(os.environ, PYTHONPATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", ""))
    proc = subprocess.run(["/usr/bin/python3", "-c", script, source, inner], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().splitlines() == ["Read-only file system"] * 2, proc.stdout.decode()
    assert not os.path.exists(os.path.join(source, "probe"))


def test_exec_runs_in_the_workdir_and_as_the_user_the_container_was_started_with(run_module, rootfs, container):
    started = run_module("ns_exec", {"name": container, "state": "started", "rootfs": rootfs,
                                     "workdir": "/etc", "user": "1000:1000", "env": {"FROM_START": "kept"}})
    assert started["changed"], started
    executed = run_module("ns_exec", {"name": container, "state": "exec", "env": {"FROM_EXEC": "added"},
                                      "command": ["/bin/sh", "-c", "pwd; id -u; echo $FROM_START $FROM_EXEC"]})
    assert executed["rc"] == 0, executed
    assert executed["stdout"].splitlines() == ["/etc", "1000", "kept added"], executed


def test_stopped_uses_the_stop_timeout_the_container_was_started_with(run_module, rootfs, container):
    # A shell as PID 1 ignores SIGTERM: stopping waits the whole stop_timeout,
    # 10 s by default. The module's own run costs a few seconds in a TCG VM.
    run_module("ns_exec", {"name": container, "state": "started", "rootfs": rootfs, "stop_timeout": 0.2})
    started = time.monotonic()
    stopped = run_module("ns_exec", {"name": container, "state": "stopped"})
    assert stopped["changed"] and stopped["pid"] is None, stopped
    assert time.monotonic() - started < options.DEFAULT_STOP_TIMEOUT - 1


def test_moving_to_a_given_cgroup_removes_the_one_of_its_own(run_module, rootfs, container, memory_cgroup):
    own = os.path.join("/sys/fs/cgroup/pids" if os.path.isdir("/sys/fs/cgroup/pids") else "/sys/fs/cgroup",
                       "handmade/containers", container)
    first = _started(run_module, container, rootfs)
    assert first["cgroup"] == "handmade/containers/" + container and os.path.isdir(own), first
    moved = _started(run_module, container, rootfs, cgroup=memory_cgroup)
    assert moved["changed"] and moved["cgroup"] == memory_cgroup, moved
    assert not os.path.exists(own)
