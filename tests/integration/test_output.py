"""ns_exec's run and exec on the real kernel: bounded output, timeouts that always hold, failures that say why.

* Output: the result carries at most ``output_limit`` bytes of each stream
  (head and tail), says when it was cut, keeps the whole in private files
  only when asked, and the module's own peak RSS stays bounded however much
  the container prints.
* Timeouts and stops: a process that left PID 1's session (setsid) and
  holds stdout, in a container without a PID namespace, neither keeps the
  task waiting past ``timeout`` nor outlives the task, ``stopped`` or
  ``absent``; the same for an exec'd command's grandchild.
* Failures: a non-zero rc or a timeout fails the task with a ``msg`` the
  controller shows; ``failed_when`` can say otherwise; bad ``timeout``
  values are refused before anything starts.

Every test removes its containers, cgroups, processes and files, also on failure.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from conftest import COLLECTIONS_PATH, HOST_PYTHON, MODULE_PACKAGE, _module_env, run_module_direct

sys.path.insert(0, COLLECTIONS_PATH)

from ansible_collections.handmade.containers.plugins.module_utils._cgroup import manager as cgroups  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container import placement  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.record import STATE_ROOT  # noqa: E402

MIB = 1024 * 1024


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def processes_with(marker):
    """Host pids (not zombies) with ``marker`` as one of their arguments (``sleep <marker>``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                arguments = handle.read().split(b"\0")
            with open("/proc/%s/stat" % entry) as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in arguments[1:] and state != "Z":
            found.append(int(entry))
    return found


def kill_marked(marker):
    for pid in processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def unique_marker():
    # A sleep duration nobody else uses: the test finds (and kills) its own processes by it.
    return "%d.%03d" % (500 + uuid.uuid4().int % 400, uuid.uuid4().int % 1000)


def own_cgroup_exists(name):
    return cgroups.open_cgroup(placement.own_cgroup_name(name)).exists()


def remove_own_cgroup(name):
    cgroup = cgroups.open_cgroup(placement.own_cgroup_name(name))
    if cgroup.exists():
        cgroup.remove(kill=True)


# Started from a small Python of its own, not from this test process: exec
# records the RSS high-water mark of the process image it replaces, so a
# module forked straight from pytest (hundreds of MB after a whole suite)
# would report pytest's size, not its own.
_RUSAGE_WRAPPER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.argv[1], sys.argv[1:])\n"
    "_pid, status, usage = os.wait4(pid, 0)\n"
    "sys.stderr.write('%d\\n' % usage.ru_maxrss)\n"
    "sys.exit(os.waitstatus_to_exitcode(status) if hasattr(os, 'waitstatus_to_exitcode') else 0)\n"
)


def module_with_rusage(args, timeout=300):
    """Run ns_exec as run_module does, in a fresh process; return (result, that process's peak RSS in KiB).

    The module runs under a small wrapper that reports wait4's rusage of
    exactly the module's process (its ru_maxrss also counts its own reaped
    children, here the container's PID 1, a fork of it whose RSS is at most
    the module's at the fork).
    """
    params = dict(args, _ansible_check_mode=False, _ansible_diff=False)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": params}, handle)
    try:
        proc = subprocess.run([sys.executable, "-I", "-S", "-c", _RUSAGE_WRAPPER, sys.executable, "-m",
                               "%s.ns_exec" % MODULE_PACKAGE, handle.name],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_module_env(), timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise AssertionError("ns_exec did not return within %d s" % timeout)
    finally:
        os.unlink(handle.name)
    result = json.loads(proc.stdout.decode())
    result.setdefault("failed", False)
    return result, int(proc.stderr.decode().strip().splitlines()[-1])


@pytest.fixture
def name():
    """A unique container name; whatever ran under it is gone afterwards (state dir, own cgroup)."""
    value = "test-output-%s" % uuid.uuid4().hex[:8]
    yield value
    result = run_module_direct("ns_exec", {"name": value, "state": "absent", "stop_timeout": 0})
    assert not result["failed"], result
    remove_own_cgroup(value)
    assert not os.path.exists(os.path.join(STATE_ROOT, value))


@pytest.fixture
def given_cgroup():
    """A cgroup made through the cgroup manager, as the `cgroup` option expects."""
    cgroup_name = "handmade/test-output-%s" % uuid.uuid4().hex[:8]
    try:
        cgroups.ensure_present(cgroup_name, {})
        yield cgroup_name
    finally:
        cgroups.ensure_absent(cgroup_name, kill=True)


@pytest.fixture
def marker():
    value = unique_marker()
    yield value
    leftover = processes_with(value)
    kill_marked(value)
    assert leftover == [], "processes left behind: %s" % leftover


@pytest.fixture
def output_dir(tmp_path):
    directory = tmp_path / "kept"
    directory.mkdir(mode=0o700)
    return str(directory)


# --------------------------------------------------------------------------
# bounded output
# --------------------------------------------------------------------------

def test_64_mib_of_output_returns_the_head_and_tail_and_the_module_stays_small(rootfs):
    # 64 MiB of "x", then a last line; stderr gets a first line, 8 MiB, a last line.
    command = ("echo FIRST; head -c %d /dev/zero | tr '\\0' x; echo; echo LAST; "
               "(echo ERR-FIRST; head -c %d /dev/zero | tr '\\0' e; echo; echo ERR-LAST) >&2" % (64 * MIB, 8 * MIB))
    result, peak_kib = module_with_rusage({"rootfs": rootfs, "command": ["/bin/sh", "-c", command]})
    assert result["rc"] == 0 and not result["failed"], result.get("msg")
    assert result["stdout_truncated"] and result["stderr_truncated"]
    for stream, first, last in (("stdout", "FIRST\n", "\nLAST\n"), ("stderr", "ERR-FIRST\n", "\nERR-LAST\n")):
        text = result[stream]
        assert text.startswith(first) and text.endswith(last)
        assert "cut here: output_limit is 1048576 bytes" in text
        assert len(text) < MIB + 400  # the default limit, plus the one marker line
    assert "stdout_path" not in result and "stdout_lines" not in result
    # Before: ~700 MB for 64 MiB (the whole output held, joined, decoded, serialised).
    assert peak_kib < 120 * 1024, "module peak RSS %d KiB for 72 MiB of output" % peak_kib


def test_output_limit_bounds_each_stream_and_short_output_is_whole(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "output_limit": "1K", "command": [
        "/bin/sh", "-c", "seq 1 100000; echo short >&2"]})
    assert not result["failed"], result
    stdout = result["stdout"]
    assert stdout.startswith("1\n2\n3\n") and stdout.endswith("99999\n100000\n")
    head, marker_and_tail = stdout.split("\n[... ", 1)
    marker, tail = marker_and_tail.split(" ...]\n", 1)
    assert len(head.encode()) == 512 and len(tail.encode()) == 512
    assert "keep_output: true keeps all of it" in marker
    assert result["stdout_truncated"] is True
    assert result["stderr"] == "short\n" and result["stderr_truncated"] is False


def test_keep_output_writes_every_byte_to_private_files(run_module, rootfs, output_dir):
    result = run_module("ns_exec", {"rootfs": rootfs, "output_limit": 100, "keep_output": True,
                                    "output_dir": output_dir,
                                    "command": ["/bin/sh", "-c", "seq 1 50000; echo oops >&2; exit 2"]})
    assert result["failed"] and result["rc"] == 2, result
    paths = (result["stdout_path"], result["stderr_path"])
    assert all(os.path.dirname(path) == output_dir for path in paths)
    with open(paths[0]) as handle:
        assert handle.read() == "".join("%d\n" % i for i in range(1, 50001))
    with open(paths[1]) as handle:
        assert handle.read() == "oops\n"
    for path in paths:
        info = os.lstat(path)
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == 0
    assert "the whole stdout is in %s" % paths[0] in result["stdout"]
    assert sorted(os.listdir(output_dir)) == sorted(os.path.basename(path) for path in paths)


@pytest.mark.parametrize("layout, expected", [
    ("symlink", "not a symlink"),
    ("world-writable", "writable by no one else"),
])
def test_an_output_dir_others_could_write_is_refused(run_module, rootfs, tmp_path, layout, expected):
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    directory = tmp_path / "kept"
    if layout == "symlink":
        directory.symlink_to(target)
    else:
        directory.mkdir()
        directory.chmod(0o1777)
    result = run_module("ns_exec", {"rootfs": rootfs, "keep_output": True, "output_dir": str(directory),
                                    "command": ["/bin/true"]})
    assert result["failed"] and "output_dir" in result["msg"], result
    if layout == "world-writable":
        assert "only root can write" in result["msg"]
    else:
        assert "symlink" in result["msg"]
    assert os.listdir(str(target)) == []


def test_invalid_utf8_is_replaced_not_fatal(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "command": ["/bin/sh", "-c", "printf 'a\\377b\\n'"]})
    assert result["stdout"] == u"a\ufffdb\n", result


# --------------------------------------------------------------------------
# timeout honoured in every case; stop/absent kill by cgroup
# --------------------------------------------------------------------------

def test_run_timeout_kills_a_grandchild_that_left_the_session_without_a_pid_namespace(
        run_module, rootfs, name, marker):
    # Before: PID 1 and its group were killed, the setsid'd sleep kept
    # stdout open, and the task hung until killed by hand.
    started = time.monotonic()
    result = run_module("ns_exec", {"rootfs": rootfs, "name": name, "namespaces": ["mount", "uts"], "timeout": 1,
                                    "command": ["/bin/sh", "-c", "setsid sleep %s & sleep %s" % (marker, marker)]},
                        timeout=60)
    assert result["timed_out"] and result["rc"] == 137, result
    assert time.monotonic() - started < 15
    assert result["failed"] and result["msg"].startswith("command timed out after 1 s"), result
    assert processes_with(marker) == []
    assert not own_cgroup_exists(name)


def test_run_timeout_in_a_given_cgroup_kills_only_the_containers_processes(
        run_module, rootfs, given_cgroup, marker):
    bystander = subprocess.Popen(["sleep", "%s1" % marker])
    try:
        cgroups.open_existing(given_cgroup).attach(bystander.pid)
        result = run_module("ns_exec", {"rootfs": rootfs, "cgroup": given_cgroup, "namespaces": ["mount"],
                                        "timeout": 1, "command": [
                                            "/bin/sh", "-c", "setsid sleep %s & sleep %s" % (marker, marker)]},
                            timeout=60)
        assert result["timed_out"] and result["rc"] == 137, result
        assert processes_with(marker) == []
        assert bystander.poll() is None, "a process of the given cgroup that is not the container's was killed"
    finally:
        bystander.kill()
        bystander.wait()


def test_run_returns_when_pid1_exits_even_if_a_grandchild_left_the_session(run_module, rootfs, name, marker):
    result = run_module("ns_exec", {"rootfs": rootfs, "name": name, "namespaces": ["mount"],
                                    "command": ["/bin/sh", "-c", "setsid sleep %s & sleep 0.5; echo done" % marker]},
                        timeout=60)
    assert result["rc"] == 0 and result["stdout"] == "done\n", result
    assert processes_with(marker) == []


def test_exec_timeout_kills_a_grandchild_that_left_the_session(run_module, rootfs, name, marker):
    started = run_module("ns_exec", {"name": name, "state": "started", "rootfs": rootfs,
                                     "command": ["/bin/sleep", "1000"]})
    assert not started["failed"], started
    result = run_module("ns_exec", {"name": name, "state": "exec", "timeout": 1, "command": [
        "/bin/sh", "-c", "setsid sleep %s & sleep %s" % (marker, marker)]}, timeout=60)
    assert result["timed_out"] and result["rc"] == 137, result
    assert result["failed"] and "timed out after 1 s" in result["msg"]
    assert processes_with(marker) == []
    assert os.path.exists("/proc/%d" % started["pid"]), "exec's timeout killed the container"


def test_exec_returns_when_the_command_exits_even_if_a_grandchild_holds_stdout(run_module, rootfs, name, marker):
    started = run_module("ns_exec", {"name": name, "state": "started", "rootfs": rootfs,
                                     "command": ["/bin/sleep", "1000"]})
    assert not started["failed"], started
    result = run_module("ns_exec", {"name": name, "state": "exec", "command": [
        "/bin/sh", "-c", "setsid sleep %s & sleep 0.5; echo done" % marker]}, timeout=60)
    assert result["rc"] == 0 and result["stdout"] == "done\n", result
    assert processes_with(marker) == []


ESCAPING = "setsid sleep %s </dev/null >/dev/null 2>&1 & exec sleep 1000"


def _start_escaping(run_module, name, rootfs, marker, **options):
    """Start a container without a pid namespace whose child leaves its session; wait until that child runs."""
    started = run_module("ns_exec", dict({"name": name, "state": "started", "rootfs": rootfs,
                                          "namespaces": ["mount", "uts"],
                                          "command": ["/bin/sh", "-c", ESCAPING % marker]}, **options))
    assert not started["failed"], started
    deadline = time.monotonic() + 60
    while not processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker)


def test_stopped_kills_a_process_that_left_the_session_without_a_pid_namespace(run_module, rootfs, name, marker):
    # Its stdin is /dev/null, not the state dir's fifo, so only its cgroup
    # tells that it is the container's.
    _start_escaping(run_module, name, rootfs, marker)
    stopped = run_module("ns_exec", {"name": name, "state": "stopped", "stop_timeout": 0})
    assert stopped["changed"] and not stopped["failed"], stopped
    assert processes_with(marker) == []


def test_absent_kills_a_process_that_left_the_session_in_a_given_cgroup(
        run_module, rootfs, name, given_cgroup, marker):
    _start_escaping(run_module, name, rootfs, marker, cgroup=given_cgroup)
    absent = run_module("ns_exec", {"name": name, "state": "absent", "stop_timeout": 0})
    assert absent["changed"] and not absent["failed"], absent
    assert processes_with(marker) == []
    assert cgroups.open_existing(given_cgroup).pids() == set()


def test_stopped_again_after_pid1_died_still_kills_what_is_left_in_its_own_cgroup(
        run_module, rootfs, name, marker):
    started = run_module("ns_exec", {"name": name, "state": "started", "rootfs": rootfs, "namespaces": ["mount"],
                                     "command": ["/bin/sh", "-c",
                                                 "setsid sleep %s </dev/null >/dev/null 2>&1 & sleep 0.3" % marker]})
    assert not started["failed"], started
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % started["pid"]) as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except OSError:
            break  # gone (reaped) since the last look
        time.sleep(0.05)
    assert processes_with(marker)
    stopped = run_module("ns_exec", {"name": name, "state": "stopped", "stop_timeout": 0})
    assert stopped["changed"], stopped
    assert processes_with(marker) == []


# --------------------------------------------------------------------------
# failures that say why, as the controller shows them
# --------------------------------------------------------------------------

@pytest.mark.parametrize("value", [-1, "nan", 1e309, "-inf"])
def test_a_timeout_that_is_no_deadline_is_refused_before_anything_starts(run_module, rootfs, name, value):
    result = run_module("ns_exec", {"rootfs": rootfs, "name": name, "timeout": value,
                                    "command": ["/bin/sh", "-c", "echo ran"]})
    assert result["failed"], result
    assert result["msg"].startswith("timeout must be a finite number of seconds >= 0"), result["msg"]
    assert "0 (or leave timeout out)" in result["msg"]
    assert "rc" not in result and not own_cgroup_exists(name)


def test_a_bad_output_limit_is_refused(run_module, rootfs):
    result = run_module("ns_exec", {"rootfs": rootfs, "output_limit": "-1", "command": ["/bin/true"]})
    assert result["failed"] and "output_limit" in result["msg"], result


def test_a_failing_run_shows_the_rc_and_the_end_of_stderr_through_ansible(ansible_module, rootfs):
    result = ansible_module("ns_exec", {"rootfs": rootfs, "command": [
        "/bin/sh", "-c", "echo some output; echo first >&2; echo 'cat: /nope: No such file' >&2; exit 3"]})
    assert result["failed"] is True, result
    assert result["msg"] == "command exited with rc 3: first | cat: /nope: No such file", result
    assert result["rc"] == 3 and result["stdout"] == "some output\n"
    assert result["stdout_lines"] == ["some output"]  # the controller adds them, from the bounded stdout


def test_a_failing_exec_says_why_through_ansible(ansible_module, run_module, rootfs, name):
    started = run_module("ns_exec", {"name": name, "state": "started", "rootfs": rootfs,
                                     "command": ["/bin/sleep", "1000"]})
    assert not started["failed"], started
    result = ansible_module("ns_exec", {"name": name, "state": "exec", "command": ["/bin/cat", "/nope"]})
    assert result["failed"] is True and result["rc"] == 1, result
    assert result["msg"].startswith("command exited with rc 1: cat: can't open '/nope'"), result


def _playbook(tmp_path, tasks):
    path = tmp_path / "play.yml"
    path.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_PYTHON_INTERPRETER=HOST_PYTHON,
               ANSIBLE_NOCOLOR="1")
    return subprocess.run(["ansible-playbook", "-c", "local", "-i", "localhost,", str(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=300, check=False)


def test_failed_when_decides_and_the_results_stay_readable(tmp_path, rootfs):
    run = {"handmade.containers.ns_exec": {"rootfs": rootfs, "command": ["/bin/sh", "-c", "echo out; exit 3"]},
           "register": "ran"}
    tasks = [
        dict(run, name="rc 3, not failed", failed_when=False),
        {"name": "the results are there", "ansible.builtin.assert": {"that": [
            "ran is not failed", "ran.rc == 3", "ran.stdout == 'out\\n'",
            "ran.msg == 'command exited with rc 3 (stderr is empty)'"]}},
        dict(run, name="rc 3 is an answer here", failed_when="ran.rc not in [0, 3]"),
        {"name": "still readable", "ansible.builtin.assert": {"that": ["ran is not failed"]}},
    ]
    passed = _playbook(tmp_path, tasks)
    assert passed.returncode == 0, passed.stdout.decode(errors="replace")
    failed = _playbook(tmp_path, [dict(run, name="rc 3 fails")])
    output = failed.stdout.decode(errors="replace")
    assert failed.returncode == 2 and "command exited with rc 3 (stderr is empty)" in output, output
