# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host runs: ``docker inspect`` plus ``docker stats`` for named containers.

Everything here reads and nothing writes. A container is what its state
directory records (record.py), believed only while the kernel agrees (the
recorded pid with the same start time); its usage comes from its cgroup's
counters (the cgroup driver's ``stats``), its namespaces from
/proc/<pid>/ns, its log from the state directory's files, each opened by fd
without following a symlink. The ``container_info`` module is one call of
``inspect_containers``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import stat
import time

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import open_cgroup
from ansible_collections.handmade.containers.plugins.module_utils._container import health, launch, logs, options, supervise
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (
    STATE_ROOT,
    StateDir,
    open_state_dir,
)
from ansible_collections.handmade.containers.plugins.module_utils._container.spec import valid_name

# The most log lines one call returns, and the most bytes read to find them:
# a container writes what it likes into its log, and the module's result
# must stay a size Ansible can carry.
MAX_TAIL_LINES = 10000
MAX_TAIL_BYTES = 4 * 1024 * 1024
# A line longer than this is cut, with a note of how much was left out.
MAX_LINE_BYTES = 16 * 1024
READ_CHUNK = 64 * 1024
# How often to open the log's files again when a rotation came in between.
ROTATION_RETRIES = 20

# The counters of STATS the result carries, as ``docker stats`` shows them.
STAT_NAMES = ("memory_current", "memory_peak", "cpu_usage_usec", "pids_current", "oom_kill")


def check_logs_tail(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TAIL_LINES:
        raise ContainerError("logs_tail must be a number of lines from 1 to %d, not %r: leave it out for no log"
                             % (MAX_TAIL_LINES, value))
    return value


def inspect_containers(name=None, logs_tail=None, state_root=STATE_ROOT):
    """``[facts]`` of the container ``name``, or of every container of the host (sorted by name)."""
    logs_tail = check_logs_tail(logs_tail)
    if name is not None:
        if not valid_name(name):
            raise ContainerError("invalid container name %r: use letters, digits, _ . and -, starting with a "
                                 "letter or digit" % name)
        names = [name]
    else:
        names = container_names(state_root)
    found = []
    for each in names:
        try:
            facts = inspect_container(StateDir(each, state_root), logs_tail)
        except ContainerError as exc:
            if name is not None:
                raise
            # One container's directory that cannot be read (a planted
            # symlink, say) must not hide every other container of the host.
            facts = {"name": each, "state": "unknown", "running": None, "error": str(exc)}
        if facts is not None:
            found.append(facts)
    return found


def container_names(state_root=STATE_ROOT):
    """The names of the state directories under ``state_root`` (none when it does not exist yet)."""
    root_fd = open_state_dir(state_root)
    if root_fd is None:
        return []
    try:
        return sorted(entry for entry in os.listdir(root_fd) if valid_name(entry))
    finally:
        os.close(root_fd)


def inspect_container(state_dir, logs_tail=None):
    """One container's facts, or None when it has no record."""
    record = state_dir.read()
    if record is None:
        return None
    running = record.is_running()
    config = record.config or {}
    # What the supervisor recorded of the last exit and the restarts; {} for
    # a container started by a collection without supervisors.
    status = supervise.read_status(state_dir)
    facts = {
        "name": state_dir.name,
        "state": _state(running, status, state_dir),
        "running": running,
        "pid": record.pid if running else None,
        "exit_code": None if running else status.get("exit_code"),
        "created_at": _iso(record.created),
        "started_at": _iso(started_at(record.start_time) if running else status.get("started_at")),
        "finished_at": _iso(status.get("finished_at")),
        "restart_count": status.get("restart_count", 0),
        "restart_policy": config.get("restart_policy") or "no",
        "config": options.recorded(config),
        "cgroup": record.cgroup,
        "cgroup_owned": bool(record.cgroup_owned),
        "namespaces": launch.namespace_ids(record.pid) if running else {},
        "log_path": state_dir.log_path,
    }
    facts["stats"], facts["oom_killed"] = _usage(record)
    if not running and status.get("finished_at") is not None:
        # The supervisor compared the cgroup's OOM kills before and after this run.
        facts["oom_killed"] = bool(status.get("oom_killed"))
    facts["health"] = _health(status, config)
    if logs_tail is not None:
        facts["logs"] = tail_log(state_dir, logs_tail)
    return facts


def _health(status, config):
    """What the health check found; None for a container without a check."""
    return health.shown(status.get("health")) if config.get("healthcheck") else None


def _state(running, status, state_dir):
    """running, restarting (its supervisor waits out the back-off or starts it) or exited."""
    if running:
        return "running"
    if status.get("state") == "restarting" and supervise.find_supervisors(state_dir):
        return "restarting"
    return "exited"


def _usage(record):
    """The cgroup's counters, and whether the OOM killer struck in it (None when that is not the container's alone)."""
    empty = dict((stat, None) for stat in STAT_NAMES)
    if not record.cgroup:
        return empty, None
    try:
        cgroup = open_cgroup(record.cgroup)
        if not cgroup.exists():
            return empty, None
        counters = cgroup.stats()
    except CgroupError:
        return empty, None
    stats = dict((stat, counters.get(stat)) for stat in STAT_NAMES)
    # A cgroup of its own counts this container's kills only; a shared one
    # counts its neighbours' too.
    oom_killed = (stats["oom_kill"] or 0) > 0 if record.cgroup_owned and stats["oom_kill"] is not None else None
    return stats, oom_killed


def started_at(start_time, proc="/proc"):
    """Seconds since the epoch of a start time in clock ticks since boot (/proc/<pid>/stat).

    The boot's moment is now less /proc/uptime (to 10 ms), not /proc/stat's
    btime, which is rounded to the second.
    """
    if start_time is None:
        return None
    with open(os.path.join(proc, "uptime")) as handle:
        boot = time.time() - float(handle.read().split()[0])
    return boot + float(start_time) / os.sysconf("SC_CLK_TCK")


def _iso(seconds):
    return health.iso8601(seconds)


def tail_log(state_dir, lines):
    """The last ``lines`` lines of the container's log, the rotated copies included, oldest first.

    Read from the end, at most MAX_TAIL_BYTES in all, and at most
    MAX_TAIL_BYTES returned as JSON escapes them (an invalid byte costs six);
    a line longer than MAX_LINE_BYTES is cut. Every file is opened first,
    then read, so that a rotation while this runs neither repeats a file
    (the same inode under its next name) nor fails: a file rotated away
    since is skipped. Files are opened in the state directory's fd, never
    through a symlink.
    """
    dir_fd = state_dir.open()
    if dir_fd is None:
        return []
    opened = []
    try:
        # A set of files whose names still hold them once all are open: no
        # rotation renamed one in between (a container that logs fast
        # rotates often; a few tries find a quiet moment).
        for _attempt in range(ROTATION_RETRIES):
            for fd in opened:
                os.close(fd)
            opened = []
            named = _open_logs(state_dir, dir_fd)
            opened = [fd for _name, fd, _identity in named]
            if all(_identity_of(dir_fd, name) == identity for name, _fd, identity in named):
                break
        found = []  # newest first
        budget = MAX_TAIL_BYTES
        for fd in opened:
            if len(found) >= lines or budget <= 0:
                break
            newest, used = _last_lines(fd, lines - len(found), budget)
            found.extend(newest)
            budget -= used
        return _within(list(reversed(found)), MAX_TAIL_BYTES)
    finally:
        for fd in opened:
            os.close(fd)
        os.close(dir_fd)


def _open_logs(state_dir, dir_fd):
    """[(name, fd, identity)] of container.log and its rotated copies, newest first, each file once."""
    named = []
    seen = set()
    names = [logs.LOG_NAME] + ["%s.%d" % (logs.LOG_NAME, index) for index in range(1, logs.MAX_FILES)]
    try:
        for name in names:
            fd = _open_log_for_reading(state_dir, dir_fd, name)
            if fd is False:
                break  # no such file: the copies end here
            if fd is None:
                continue  # rotated away and removed since the listing
            identity = tuple(os.fstat(fd)[1:3])
            if identity in seen:
                os.close(fd)  # the same file, renamed by a rotation meanwhile
                continue
            seen.add(identity)
            named.append((name, fd, identity))
    except BaseException:
        for _name, fd, _identity in named:
            os.close(fd)
        raise
    return named


def _identity_of(dir_fd, name):
    try:
        return tuple(os.stat(name, dir_fd=dir_fd, follow_symlinks=False)[1:3])
    except OSError:
        return None


def _open_log_for_reading(state_dir, dir_fd, name):
    """An fd of log file ``name``; False when there is none, None when it was just rotated away.

    A symlink, another kind of file or a hard link planted in the state
    directory is refused (ContainerError), never read through.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        if exc.errno == errno.ELOOP:
            raise ContainerError("%s: %s is a symlink, refused: remove it" % (state_dir.path, name))
        raise ContainerError("%s: cannot open %s: %s" % (state_dir.path, name, exc.strerror))
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file"
    elif info.st_nlink > 1:
        problem = "has %d hard links" % info.st_nlink
    if problem is not None or info.st_nlink == 0:
        os.close(fd)
        if problem is None:
            return None
        raise ContainerError("%s: %s %s, refused: remove it" % (state_dir.path, name, problem))
    return fd


def _within(lines, budget):
    """The newest of ``lines`` whose JSON text fits in ``budget`` bytes, a note in place of the rest."""
    kept = []
    for line in reversed(lines):
        budget -= len(json.dumps(line)) + 2
        if budget < 0:
            kept.append("[%d older lines left out: the result holds at most %d bytes of log]"
                        % (len(lines) - len(kept), MAX_TAIL_BYTES))
            break
        kept.append(line)
    return list(reversed(kept))


def _last_lines(fd, count, budget):
    """Up to ``count`` complete lines from the end of ``fd`` (newest first), and the bytes read."""
    end = os.fstat(fd).st_size
    chunks = []
    newlines = 0
    position = end
    # One newline more than lines wanted: the line before the first one kept
    # must have ended, or the first one kept would be only its tail.
    while position > 0 and newlines <= count and end - position < budget:
        size = min(READ_CHUNK, position, budget - (end - position))
        position -= size
        chunk = os.pread(fd, size, position)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
    data = b"".join(reversed(chunks))
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()  # the file ends with a newline
    if position > 0 and len(pieces) > 1:
        pieces.pop(0)  # the end of a line whose start was not read
    elif position > 0 and pieces:
        # One line longer than the whole budget: its end, marked as cut.
        pieces = [b"[cut] " + pieces[0][-(MAX_LINE_BYTES - 6):]]
    newest = []
    for piece in reversed(pieces[-count:]):
        if len(piece) > MAX_LINE_BYTES:
            piece = piece[:MAX_LINE_BYTES] + b" [%d more bytes]" % (len(piece) - MAX_LINE_BYTES)
        newest.append(piece.decode("utf-8", "replace"))
    return newest, end - position
