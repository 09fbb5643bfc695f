# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interface every cgroup driver implements, and what the drivers share.

A driver is one named cgroup below ``handmade`` on one kind of cgroup
filesystem. ``V1Cgroup`` (v1.py) keeps it as a directory in every v1
controller hierarchy; ``V2Cgroup`` (v2.py) as one directory of the cgroup2
tree. The manager (manager.py) picks the driver from the host's layout and
works only through this interface:

* where it lives: ``name``, ``root``, ``layout``, ``version``,
  ``hierarchies``, ``paths``, ``exists()``, ``complete()``
* its life: ``create(required_controllers)`` (undoes itself on failure),
  ``remove(kill, timeout)``
* processes: ``attach(pid)``, ``pids()``, ``kill(timeout)``
* limits: ``available(limit)``, ``read_limits()``,
  ``write_limit(limit, value, inputs)``, ``normalise(limit, value, inputs)``
* counters: ``stats()``, and ``cpuset_bounds()`` for validation
* devices: ``set_device_rules(rules)``

A driver subclass provides the version-specific hooks: ``_make``,
``available``, ``directory_of``, ``cpuset_bounds``, ``_kill_at_once`` and
``_freezer``. Another way to manage cgroups, such as a systemd driver that
asks systemd for a delegated scope over D-Bus instead of writing the files,
would implement the same interface and be chosen in manager.open_cgroup.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import signal
import time

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.files import (
    parse_flat_keyed,
    read_or_none,
    write_text,
)
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.layout import validate_name
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.limits import LIMITS, STATS


class Freezer:
    """Freezing and thawing one cgroup: a control file, its two values, and a test for "frozen"."""

    def __init__(self, control, frozen_value, thawed_value, is_frozen):
        self.control = control
        self.frozen_value, self.thawed_value = frozen_value, thawed_value
        self.is_frozen = is_frozen

    def freeze(self, deadline):
        write_text(self.control, self.frozen_value)
        # A freeze completes asynchronously; a process stuck in the kernel
        # may never freeze: then the kill loop does the rest.
        while not self.is_frozen() and time.monotonic() < deadline:
            time.sleep(0.002)

    def thaw(self):
        write_text(self.control, self.thawed_value)


class CgroupDriver:
    """A named cgroup below ``handmade``; see the module docstring for the interface."""

    version = None  # "v1" or "v2": which files of a LIMITS or STATS row this driver uses

    def __init__(self, name, root, layout, hierarchies):
        self.name = validate_name(name)
        self.root = root
        self.layout = layout
        # controller (or "unified") -> mount point of the hierarchy holding it.
        self.hierarchies = hierarchies
        self.page_size = os.sysconf("SC_PAGE_SIZE")

    # -- where it lives -----------------------------------------------------

    @property
    def paths(self):
        """controller -> absolute directory (v1), or {"unified": directory} (v2)."""
        return dict((controller, os.path.join(mount, self.name)) for controller, mount in self.hierarchies.items())

    def directories(self):
        """The distinct directories of this cgroup (co-mounted v1 controllers share one)."""
        return unique(self.paths.values())

    def directory_of(self, controller):
        """Directory holding ``controller``'s files, or None when the host lacks the controller."""
        raise NotImplementedError

    def exists(self):
        """True when the cgroup's directory exists in at least one hierarchy."""
        return any(os.path.isdir(directory) for directory in self.directories())

    def complete(self):
        """True when it exists in every hierarchy this host has for it."""
        return all(os.path.isdir(directory) for directory in self.directories())

    # -- create and remove --------------------------------------------------

    def create(self, required_controllers=()):
        """Make the cgroup (and the project's parent) where missing; returns the directories made.

        ``required_controllers`` are the v2 controllers the asked limits
        need: failing to enable one of them fails the call. If anything
        fails, the directories made by this call are removed again before
        raising.
        """
        created = []
        try:
            self._make(required_controllers, created)
        except BaseException:
            remove_directories(created)
            raise
        return created

    def _make(self, required_controllers, created):
        """Make the directories (appending each one made to ``created``) and whatever they need to work."""
        raise NotImplementedError

    def _make_directory(self, directory, created):
        """mkdir unless it exists; True when this call made it."""
        if os.path.isdir(directory):
            return False
        try:
            os.mkdir(directory)
        except OSError as exc:
            if exc.errno == errno.EEXIST and not os.path.isdir(directory):
                raise CgroupError("cannot create cgroup %r: %s is a control file of the cgroup above, not a "
                                  "cgroup; pick another name" % (self.name, directory))
            if exc.errno != errno.EEXIST:
                raise CgroupError("cannot create %s: %s" % (directory, exc.strerror))
            return False
        created.append(directory)
        return True

    def remove(self, kill=True, timeout=10.0):
        """Kill what runs inside (when ``kill``), then remove child cgroups bottom-up and the cgroup itself.

        Returns False when there was nothing to remove.
        """
        if not self.exists():
            return False
        if kill:
            self.kill(timeout=timeout)
        elif self.pids():
            raise CgroupError("cgroup %r still holds processes %s: stop them first, or use kill: true"
                              % (self.name, sorted(self.pids())))
        deadline = time.monotonic() + timeout
        for directory in self.directories():
            if not os.path.isdir(directory):
                continue
            nested = [current for current, _subdirs, _files in os.walk(directory)]
            for current in reversed(nested):
                _rmdir_when_empty(current, deadline)
        return True

    # -- processes ----------------------------------------------------------

    def attach(self, pid):
        """Move process ``pid`` (and so its future children) into this cgroup, in every hierarchy."""
        directories = [directory for directory in self.directories() if os.path.isdir(directory)]
        if not directories:
            raise CgroupError("cgroup %r does not exist on this host: create it first with "
                              "handmade.containers.cgroup" % self.name)
        for directory in directories:
            try:
                write_text(os.path.join(directory, "cgroup.procs"), str(pid))
            except (IOError, OSError) as exc:
                hint = ""
                if exc.errno == errno.EBUSY:
                    hint = ": it has child cgroups with controllers enabled (v2 puts processes only in leaves)"
                elif exc.errno == errno.ESRCH:
                    hint = ": the process has exited"
                raise CgroupError("cannot move process %d into %s: %s%s" % (pid, directory, exc.strerror, hint))

    def pids(self):
        """Every process in this cgroup and its descendants, in any of its hierarchies."""
        found = set()
        for directory in self.directories():
            for current, _subdirs, files in os.walk(directory):
                if "cgroup.procs" in files:
                    text = read_or_none(os.path.join(current, "cgroup.procs")) or ""
                    found.update(int(pid) for pid in text.split())
        return found

    def kill(self, timeout=10.0):
        """SIGKILL every process in it (and its descendants) and wait until none is left.

        A process that forks while being killed could escape a plain kill
        loop, so the whole cgroup is killed at once where the kernel can
        (``_kill_at_once``), or else frozen first where it can
        (``_freezer``): the frozen processes get SIGKILL, and thawing lets
        them die.
        """
        if not self.exists():
            return
        inside = self.pids()
        if not inside:
            return  # the common case after a container's PID 1 took its namespace with it
        if os.getpid() in inside:
            raise CgroupError("refusing to kill cgroup %r: this very process (%d) runs inside it; run the task "
                              "from outside the cgroup" % (self.name, os.getpid()))
        deadline = time.monotonic() + timeout
        if not self._kill_at_once():
            freezer = self._freezer()
            if freezer:
                freezer.freeze(deadline)
                try:
                    self._signal_all(signal.SIGKILL)
                finally:
                    freezer.thaw()
        # Whatever was not frozen (no freezer, or moved in meanwhile) is
        # killed in a loop until the cgroup is empty.
        while True:
            remaining = self.pids()
            if not remaining:
                return
            if time.monotonic() > deadline:
                raise CgroupError("processes %s in cgroup %r survived SIGKILL for %.0f s (stuck in the kernel, "
                                  "e.g. on I/O): wait and run again" % (sorted(remaining), self.name, timeout))
            self._signal_all(signal.SIGKILL)
            time.sleep(0.01)

    def _kill_at_once(self):
        """SIGKILL the whole cgroup in one step if the kernel can; True when it did."""
        raise NotImplementedError

    def _freezer(self):
        """A Freezer for this cgroup, or None when the host cannot freeze it."""
        raise NotImplementedError

    def _signal_all(self, signum):
        for pid in self.pids():
            try:
                os.kill(pid, signum)
            except OSError as exc:
                if exc.errno != errno.ESRCH:
                    raise

    # -- limits -------------------------------------------------------------

    def available(self, limit):
        """None when the host can hold ``limit`` in this version, else why not."""
        raise NotImplementedError

    def read_limits(self):
        """Canonical value of every limit the cgroup's files hold; limits it cannot read are left out."""
        values = {}
        for limit in LIMITS:
            kernel_files = limit.kernel_files(self.version)
            directory = self.directory_of(kernel_files.controller)
            if directory is None:
                continue
            names = self._written_files(kernel_files, directory) + kernel_files.also_reads
            texts = tuple(read_or_none(os.path.join(directory, filename)) for filename in names)
            if any(text is None for text in texts):
                continue
            values[limit.key] = limit.decode(texts, self.version)
        return values

    def normalise(self, limit, value, inputs=None):
        """``value`` as this cgroup's files will hold it once written."""
        return limit.normalise(value, self.version, self.page_size, inputs)

    def write_limit(self, limit, value, inputs=None):
        """Write one limit's canonical value into its files.

        ``inputs`` holds the values of the limits named by
        ``limit.inputs(version)``, as they are being set.
        """
        kernel_files = limit.kernel_files(self.version)
        directory = self.directory_of(kernel_files.controller)
        files = self._written_files(kernel_files, directory)
        for filename, text in zip(files, limit.encode(value, self.version, self.page_size, inputs)):
            path = os.path.join(directory, filename)
            if not os.path.exists(path):
                missing = ("neither " + " nor ".join(kernel_files.names) if kernel_files.alternatives
                           else "no " + filename)
                raise CgroupError("%s: %s has %s, so this kernel cannot hold this limit%s" % (
                    limit.key, directory, missing, kernel_files.missing_hint))
            try:
                write_text(path, text)
            except (IOError, OSError) as exc:
                raise CgroupError("%s: the kernel refused %r in %s: %s%s" % (
                    limit.key, text, path, exc.strerror, limit.refused_hints.get(exc.errno, "")))

    @staticmethod
    def _written_files(kernel_files, directory):
        """The files a limit writes in ``directory``, in order: of alternatives, the first present."""
        if kernel_files.alternatives:
            present = [name for name in kernel_files.names if os.path.exists(os.path.join(directory, name))]
            return tuple(present[:1]) or kernel_files.names[:1]
        return kernel_files.names

    def cpuset_bounds(self):
        """(cpus, mems) texts the project's cgroups may use, None for each the driver cannot tell."""
        raise NotImplementedError

    # -- counters -----------------------------------------------------------

    def stats(self, names=None):
        """Usage counters from the kernel's files (STATS), None where the host does not provide one.

        ``names`` picks some counters (the launch reads only ``oom_kill``);
        without it every counter and ``procs``, the processes inside.
        """
        result = {}
        for stat in STATS:
            if names is not None and stat.name not in names:
                continue
            source = stat.kernel_files(self.version)
            directory = self.directory_of(source.controller)
            values = []
            for filename in source.names:
                text = read_or_none(os.path.join(directory, filename)) if directory else None
                value = None if text is None else int(text) if source.key is None else \
                    parse_flat_keyed(text).get(source.key)
                if value is not None:
                    values.append(value)
            result[stat.name] = sum(values) // source.divisor if values else None
        if names is None:
            result["procs"] = sorted(self.pids())
        return result

    def counter_files(self, name):
        """[path, key] of the files whose values add up to counter ``name`` of STATS (key None: the whole file).

        For a process that reads the counter without the driver (the
        supervisor reads ``oom_kill`` at each exit of the container).
        """
        for stat in STATS:
            if stat.name == name:
                source = stat.kernel_files(self.version)
                directory = self.directory_of(source.controller)
                return [[os.path.join(directory, filename), source.key] for filename in source.names] \
                    if directory else []
        raise KeyError(name)

    # -- devices ------------------------------------------------------------

    def set_device_rules(self, rules):
        """Make ``rules`` (_devices.DeviceRule, allow rules) the only devices the processes may use.

        Whatever no rule allows is refused: opening a node of it (EPERM) and,
        unless a rule allows ``m``, mknod of one. Calling again replaces the
        rules. The cgroup must exist. v1 writes the devices hierarchy's
        ``devices.deny`` and ``devices.allow`` (v1.py); v2 attaches a
        BPF_PROG_TYPE_CGROUP_DEVICE program to the cgroup's directory
        (v2.py). Both are built in devices.py; _devices.allowed_rules gives
        Docker's default list. Raises CgroupError.
        """
        raise NotImplementedError("device rules are not implemented for cgroup %s" % self.version)


def unique(items):
    """``items`` without repeats, in their first order."""
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def remove_directories(created):
    """rmdir each directory of ``created``, deepest (last made) first; quietly leaves non-empty ones."""
    for directory in reversed(created):
        try:
            os.rmdir(directory)
        except OSError:
            pass  # the project's parent may have gained a sibling meanwhile: leave it


def _rmdir_when_empty(directory, deadline):
    # Killed processes leave a cgroup asynchronously: rmdir answers EBUSY
    # until the last one has finished exiting.
    while True:
        try:
            os.rmdir(directory)
            return
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError("cannot remove %s: %s: processes may still be inside; run again with kill: true"
                                  % (directory, exc.strerror))
            time.sleep(0.01)
