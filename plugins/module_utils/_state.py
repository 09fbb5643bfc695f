# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named containers: what runs, as the host shows it, and how to converge it.

A detached container is tracked in ``/run/handmade-containers/<name>/``:
``state.json`` (host pid of PID 1, its start time from /proc/<pid>/stat,
the config and its digest), ``stdin`` (a fifo) and ``container.log``. A
record is believed only while the kernel agrees: the pid must exist with
the same start time, so a reused pid is never taken for the container.

Everything else (PID 1 died, a reboot cleared /run, the directory was
removed by hand, the module was killed mid-start) converges on the next
run: the state is read from the kernel, never remembered.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import time

from ansible_collections.handmade.containers.plugins.module_utils import _runtime as runtime
from ansible_collections.handmade.containers.plugins.module_utils._cgroupfs import open_existing

STATE_ROOT = "/run/handmade-containers"
RECORD_FILE = "state.json"
FIFO_NAME = "stdin"
LOG_NAME = "container.log"


class StateError(Exception):
    """A named container's state cannot be read or changed; the message says what to do."""


def process_start_time(pid, proc="/proc"):
    """Start time of ``pid`` in clock ticks since boot, or None if it is gone.

    A zombie counts as gone: it runs nothing and its pid is about to be freed.
    """
    try:
        with open("%s/%d/stat" % (proc, pid), "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    return parse_start_time(text)


def parse_start_time(stat_text):
    """The starttime field (22nd) of a /proc/<pid>/stat line; None for zombies."""
    # The command name (field 2) may hold spaces and parentheses: split
    # after the last ')' instead of on spaces from the start.
    fields = stat_text[stat_text.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def config_digest(config):
    """A stable digest of a container's settings (sorted JSON, sha256)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ContainerRecord:
    """What state.json holds about one detached container."""

    FIELDS = ("name", "pid", "start_time", "config_digest", "config", "namespaces", "log_path", "created")

    def __init__(self, **fields):
        for field in self.FIELDS:
            setattr(self, field, fields.get(field))

    def to_dict(self):
        return dict((field, getattr(self, field)) for field in self.FIELDS)

    def is_running(self, proc="/proc"):
        """True while the recorded pid is alive and still the same process."""
        if not self.pid or self.start_time is None:
            return False
        return process_start_time(self.pid, proc) == self.start_time


class StateDir:
    """The directory ``<root>/<name>`` of one named container."""

    def __init__(self, name, root=STATE_ROOT):
        self.name = name
        self.path = os.path.join(root, name)
        self.record_path = os.path.join(self.path, RECORD_FILE)
        self.fifo_path = os.path.join(self.path, FIFO_NAME)
        self.log_path = os.path.join(self.path, LOG_NAME)

    def exists(self):
        return os.path.isdir(self.path)

    def read(self):
        """The record, or None when there is none or it is unreadable."""
        try:
            with open(self.record_path) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        return ContainerRecord(**dict((key, data.get(key)) for key in ContainerRecord.FIELDS))

    def write(self, record):
        # Write then rename: a crash leaves the old record or the new one,
        # never half of one.
        temporary = self.record_path + ".tmp"
        with open(temporary, "w") as handle:
            json.dump(record.to_dict(), handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, self.record_path)

    def prepare(self):
        """Create the directory, a fresh stdin fifo and the log; return (stdin_fd, log_fd)."""
        try:
            os.makedirs(self.path, 0o700, exist_ok=True)
            try:
                os.unlink(self.fifo_path)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
            os.mkfifo(self.fifo_path, 0o600)
            # Read-write, so the container's stdin always has a writer and a
            # shell reading it blocks instead of seeing EOF and exiting.
            stdin_fd = os.open(self.fifo_path, os.O_RDWR | os.O_CLOEXEC)
            log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise StateError("cannot prepare the state directory %s: %s (is /run writable by root?)"
                             % (self.path, exc))
        return stdin_fd, log_fd

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


def lock_state_root(root=STATE_ROOT):
    """An exclusive lock over all named containers; returns the fd to close.

    Held while one run converges a container, so two runs never start the
    same name twice. It locks the state root itself, so it leaves no file.
    """
    try:
        os.makedirs(root, 0o755, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise StateError("cannot create the state root %s: %s (is /run writable by root?)" % (root, exc))
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def find_strays(state_dir, proc="/proc"):
    """Processes whose stdin is this name's fifo but that no record knows.

    Every detached container reads its stdin from its state dir's fifo, so
    even with the record lost (the directory removed by hand, the module
    killed between launch and record) the kernel still tells which
    processes are that container: /proc/<pid>/fd/0 names the fifo, with
    " (deleted)" once the directory is gone.
    """
    wanted = (state_dir.fifo_path, state_dir.fifo_path + " (deleted)")
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            if os.readlink("%s/%s/fd/0" % (proc, entry)) in wanted:
                found.append(int(entry))
        except OSError:
            continue
    return found


def _wait_gone(pid, start_time, timeout):
    deadline = time.monotonic() + timeout
    while True:
        if process_start_time(pid) != start_time:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _signal(pid, signum):
    try:
        os.kill(pid, signum)
    except OSError:
        pass


def stop_process_tree(pid, start_time, stop_timeout):
    """SIGTERM PID 1, then SIGKILL after ``stop_timeout`` seconds.

    SIGKILL of a PID namespace's init takes every process of the namespace
    with it, and the kernel reaps them before init is gone. Without a PID
    namespace, the container's process group gets the same signals.
    """
    for signum, wait in ((signal.SIGTERM, stop_timeout), (signal.SIGKILL, 10.0)):
        if process_start_time(pid) != start_time:
            return
        _signal(pid, signum)
        try:
            os.killpg(pid, signum)
        except OSError:
            pass
        if _wait_gone(pid, start_time, wait):
            return
    raise StateError("container process %d survived SIGKILL for 10 s: it is stuck in the kernel "
                     "(D state); check `cat /proc/%d/stack`" % (pid, pid))


def _kill_strays(state_dir):
    strays = find_strays(state_dir)
    for pid in strays:
        start_time = process_start_time(pid)
        if start_time is not None:
            stop_process_tree(pid, start_time, 0)
    return strays


def _open_cgroup(name):
    return open_existing(name) if name else None


def _describe(record):
    if record is None:
        return {"state": "absent"}
    running = record.is_running()
    return {"state": "started" if running else "stopped", "pid": record.pid if running else None,
            "config": record.config}


def _container_facts(record, state_dir, state):
    running = record is not None and record.is_running()
    config = record.config if record is not None else {}
    facts = {"state": state, "name": state_dir.name, "log_path": state_dir.log_path if record else None,
             "cgroup": config.get("cgroup"), "hostname": config.get("hostname")}
    if running:
        namespaces = runtime.namespace_ids(record.pid)
        facts.update(pid=record.pid, namespaces=namespaces,
                     enter_command=runtime.enter_command(record.pid, _namespace_names(config)))
    else:
        facts.update(pid=None, namespaces={}, enter_command=None)
    return facts


def _namespace_names(config):
    return config.get("namespaces") or list(runtime.DEFAULT_NAMESPACES)


def _start(spec, state_dir):
    stdin_fd, log_fd = state_dir.prepare()
    cgroup = _open_cgroup(spec.cgroup)
    config = spec.config()

    def record_before_start(pid):
        # Recorded before the child may run anything: if this process dies
        # now, the child reads EOF instead of "go" and exits untouched.
        try:
            state_dir.write(ContainerRecord(
                name=spec.name, pid=pid, start_time=process_start_time(pid),
                config_digest=config_digest(config), config=config,
                log_path=state_dir.log_path, created=time.time()))
        except OSError as exc:
            raise StateError("cannot record container %s in %s: %s (is /run full or read-only?)"
                             % (spec.name, state_dir.record_path, exc))

    try:
        launched = runtime.start_detached(spec, stdin_fd, log_fd, cgroup=cgroup,
                                          before_start=record_before_start)
    except BaseException:
        # A container that never ran leaves no state behind.
        state_dir.remove()
        raise
    finally:
        os.close(stdin_fd)
        os.close(log_fd)
    return launched


def _spec_params(params):
    keys = ("name", "rootfs", "command", "env", "workdir", "user", "namespaces", "hostname",
            "cgroup", "mounts", "readonly_rootfs", "capabilities", "no_new_privileges")
    return dict((key, params.get(key)) for key in keys if params.get(key) is not None)


def ensure_state(params, check_mode=False, state_root=STATE_ROOT):
    """Bring container ``params['name']`` to ``params['state']``; return the result dict."""
    state = params.get("state") or "run"
    if state == "run":
        return _run(params, check_mode)
    name = params.get("name")
    if not name:
        raise StateError("state=%s needs a name: the container is tracked by it" % state)
    if not runtime.valid_name(name):
        raise StateError("invalid container name %r: use letters, digits, '_', '.', '-' "
                         "(first a letter or digit), at most 63 characters" % (name,))
    state_dir = StateDir(name, state_root)
    if state == "exec":
        return _exec(params, state_dir, check_mode)
    if check_mode:
        # Check mode changes nothing, so it takes no lock and creates no directory.
        return _converge(params, state, state_dir, check_mode)
    lock_fd = lock_state_root(state_root)
    try:
        return _converge(params, state, state_dir, check_mode)
    finally:
        os.close(lock_fd)


def _converge(params, state, state_dir, check_mode):
    record = state_dir.read()
    running = record is not None and record.is_running()
    before = _describe(record)
    stop_timeout = params.get("stop_timeout")
    stop_timeout = 10.0 if stop_timeout is None else float(stop_timeout)

    if state == "started":
        spec = runtime.build_spec(create_mount_points=not check_mode, **_spec_params(params))
        digest = config_digest(spec.config())
        if running and record.config_digest == digest:
            return dict(_container_facts(record, state_dir, "started"), changed=False,
                        diff={"before": before, "after": before})
        after = {"state": "started", "pid": None, "config": spec.config()}
        if check_mode:
            return {"changed": True, "state": "started", "name": state_dir.name,
                    "diff": {"before": before, "after": after}}
        if running:
            # Another config: recreate, as docker_container does.
            stop_process_tree(record.pid, record.start_time, stop_timeout)
        _kill_strays(state_dir)
        _start(spec, state_dir)
        record = state_dir.read()
        result = dict(_container_facts(record, state_dir, "started"), changed=True,
                      recreated=running)
        result["diff"] = {"before": before, "after": _describe(record)}
        return result

    if state in ("stopped", "absent"):
        strays = [pid for pid in find_strays(state_dir) if not (running and pid == record.pid)]
        changed = running or bool(strays) or (state == "absent" and state_dir.exists())
        if state == "absent" or record is None:
            after = {"state": "absent"}
        else:
            after = dict(before, state="stopped", pid=None)
        if check_mode or not changed:
            facts = _container_facts(record, state_dir, after["state"])
            facts.update(changed=changed, diff={"before": before, "after": after})
            return facts
        if running:
            stop_process_tree(record.pid, record.start_time, stop_timeout)
        _kill_strays(state_dir)
        if state == "absent":
            state_dir.remove()
            record = None
        facts = _container_facts(record, state_dir, after["state"])
        facts.update(changed=True, diff={"before": before, "after": after})
        return facts

    raise StateError("unknown state %r: use run, started, stopped, absent or exec" % state)


def _run(params, check_mode):
    spec = runtime.build_spec(create_mount_points=not check_mode, **_spec_params(params))
    cgroup = _open_cgroup(spec.cgroup)
    facts = {"state": "run", "name": spec.name, "hostname": spec.hostname, "cgroup": spec.cgroup,
             "log_path": None, "enter_command": None}
    if check_mode:
        # Running the command is the change; its results cannot be predicted.
        return dict(facts, changed=True, rc=None, stdout="", stderr="", oom_killed=False,
                    elapsed=0.0, pid=None, namespaces={})
    result = runtime.run_container(spec, stdin_data=params.get("stdin"), timeout=params.get("timeout"),
                                   cgroup=cgroup)
    return dict(facts, changed=True, **result)


def _exec(params, state_dir, check_mode):
    record = state_dir.read()
    if record is None or not record.is_running():
        raise StateError("container %s is not running: start it with state=started before exec"
                         % state_dir.name)
    if check_mode:
        return dict(_container_facts(record, state_dir, "exec"), changed=True, rc=None, stdout="",
                    stderr="", oom_killed=False, timed_out=False, elapsed=0.0)
    config = record.config
    env = dict(config.get("env") or {})
    env.update(params.get("env") or {})
    spec = runtime.build_spec(
        name=state_dir.name, rootfs=config["rootfs"], command=params.get("command"), env=env,
        workdir=params.get("workdir") or config.get("workdir"),
        user=params.get("user") or config.get("user"),
        namespaces=config.get("namespaces"), hostname=config.get("hostname"),
        capabilities=config.get("capabilities"), no_new_privileges=config.get("no_new_privileges", True),
        lookup_root="/proc/%d/root" % record.pid)
    cgroup = _open_cgroup(config.get("cgroup"))
    result = runtime.exec_in_container(record.pid, spec, stdin_data=params.get("stdin"),
                                       timeout=params.get("timeout"), cgroup=cgroup,
                                       is_same_process=record.is_running)
    facts = _container_facts(record, state_dir, "started")
    facts.update(result)
    facts.update(changed=True, state="exec")
    return facts
