# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one device table: the nodes a container's /dev holds, the devices its processes may use, and ``devices``.

* ``DEVICES``: the character devices every container gets in /dev (the
  mount plan makes them).
* ``DEFAULT_RULES``: what the processes may do with device nodes when the
  container is given nothing more. It is Docker's allowlist, as Docker
  running on runc applies it: everything is denied, then mknod of any node
  is allowed (harmless while opening it is refused), and reading and
  writing only the harmless devices, the terminals and /dev/net/tun.
* ``parse_devices``: the ``devices`` option, spelled like ``docker run
  --device``, turned into extra rules and the nodes to make in the
  container.

A rule is a ``DeviceRule``: type ``c`` (character), ``b`` (block) or ``a``
(both), major and minor (None for ``*``) and an access string of ``r``
(read), ``w`` (write) and ``m`` (mknod). The cgroup drivers turn a list of
rules into the kernel's form (_cgroup/devices.py): rules only ever allow,
on top of "deny everything".
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import stat

OPTION = "devices"

# Character devices every container gets in /dev, as the kernel numbers them
# (Documentation/admin-guide/devices.txt): (name below /dev, major, minor).
DEVICES = (
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7),
    ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
)

# The kernel's dev_t holds a 12-bit major and a 20-bit minor (MINORBITS):
# larger numbers cannot name a device, they would be cut to other ones.
MAX_MAJOR = (1 << 12) - 1
MAX_MINOR = (1 << 20) - 1

ACCESS_LETTERS = "rwm"
FULL_ACCESS = "rwm"
TYPES = ("c", "b", "a")

# The keys of a ``devices`` entry given as a dict.
ENTRY_KEYS = ("path", "container_path", "type", "major", "minor", "access")


class DeviceError(ValueError):
    """A ``devices`` entry cannot be used; the message names the option, the value and the fix."""


class DeviceRule:
    """One allow rule: type ``c``/``b``/``a``, major and minor (None: any), access letters from ``rwm``."""

    __slots__ = ("type", "major", "minor", "access")

    def __init__(self, type, major, minor, access):
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access

    @property
    def key(self):
        """What the rule is about, without the access: two rules with one key are one kernel entry."""
        return (self.type, self.major, self.minor)

    def line(self):
        """The rule as devices.allow and ``--device-cgroup-rule`` spell it, e.g. ``c 136:* rwm``."""
        return "%s %s:%s %s" % (self.type, _number_text(self.major), _number_text(self.minor), self.access)

    def __eq__(self, other):
        return isinstance(other, DeviceRule) and (self.key, self.access) == (other.key, other.access)

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((self.key, self.access))

    def __repr__(self):
        return "DeviceRule(%r)" % self.line()


class DeviceNode:
    """A node to make inside the container: its path there, type ``c``/``b``, numbers, mode bits, owner."""

    __slots__ = ("path", "type", "major", "minor", "mode", "uid", "gid")

    def __init__(self, path, type, major, minor, mode=0o666, uid=0, gid=0):
        self.path = path
        self.type = type
        self.major = major
        self.minor = minor
        self.mode = mode
        self.uid = uid
        self.gid = gid

    @property
    def file_type(self):
        """The S_IFCHR or S_IFBLK bits for mknod(2)."""
        return stat.S_IFCHR if self.type == "c" else stat.S_IFBLK

    def _fields(self):
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other):
        return isinstance(other, DeviceNode) and self._fields() == other._fields()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self._fields())

    def __repr__(self):
        return "DeviceNode(%r, %s %d:%d, mode=0%o, uid=%d, gid=%d)" % (
            self.path, self.type, self.major, self.minor, self.mode, self.uid, self.gid)


def _number_text(number):
    return "*" if number is None else str(number)


def _rule(line):
    kind, numbers, access = line.split()
    major, minor = (None if part == "*" else int(part) for part in numbers.split(":"))
    return DeviceRule(kind, major, minor, access)


# Docker's default device rules, as Docker on runc applies them. Docker's
# spec denies everything and allows null, zero, urandom, random, tty and
# console (its extra deny of /dev/fuse, c 10:229, changes nothing on top of
# "deny everything"); runc then appends its AllowedDevices: mknod of any
# node, null, random, full, tty, zero, urandom, every pts, ptmx and tun.
# tun (c 10:200, /dev/net/tun) is runc's since Docker's first days; runc
# 1.2 dropped it and 1.3 took it back because workloads relied on it.
# Opening it lets CAP_NET_ADMIN make tun/tap interfaces, in the container's
# own network namespace only.
DEFAULT_RULES = tuple(_rule(line) for line in (
    "c *:* m",     # mknod of any character node: opening it is still refused
    "b *:* m",     # mknod of any block node: likewise
    "c 1:3 rwm",   # /dev/null
    "c 1:5 rwm",   # /dev/zero
    "c 1:7 rwm",   # /dev/full
    "c 1:8 rwm",   # /dev/random
    "c 1:9 rwm",   # /dev/urandom
    "c 5:0 rwm",   # /dev/tty
    "c 5:1 rwm",   # /dev/console
    "c 5:2 rwm",   # /dev/ptmx (a container's /dev/ptmx leads to its own devpts)
    "c 136:* rwm",  # /dev/pts/*
    "c 10:200 rwm",  # /dev/net/tun
))


def merge_rules(rules):
    """``rules`` with one entry per key, in first-seen order, the access of repeated keys joined.

    The v1 kernel list keeps one entry per (type, major, minor) and joins
    the access of a rule added twice ("c 7:0 r" then "c 7:0 w" is "c 7:0
    rw", which opens read-write). A request is matched against one entry at
    a time, so the BPF program is built from this merged list too: then both
    kernels answer every request alike.
    """
    merged = []
    position = {}
    for rule in rules:
        if rule.key in position:
            index = position[rule.key]
            joined = merged[index].access + rule.access
            merged[index] = DeviceRule(rule.type, rule.major, rule.minor,
                                       "".join(letter for letter in ACCESS_LETTERS if letter in joined))
        else:
            position[rule.key] = len(merged)
            merged.append(rule)
    return merged


def allowed_rules(extra_rules=()):
    """The whole allowlist for a container: ``DEFAULT_RULES``, then ``extra_rules``, merged."""
    return merge_rules(tuple(DEFAULT_RULES) + tuple(extra_rules))


# --------------------------------------------------------------------------
# The ``devices`` option
# --------------------------------------------------------------------------

def parse_devices(entries, lookup=os.stat):
    """The ``devices`` option -> (rules, nodes): extra allow rules and the nodes to make in the container.

    Each entry is one of:

    * ``"/dev/fuse"``: the host's node, at the same path in the container,
      with ``rwm``;
    * ``"/dev/loop7:rw"``: the same, with the access given;
    * ``"/dev/sdb:/dev/xvdb"`` or ``"/dev/sdb:/dev/xvdb:rwm"``: the host's
      node at another path in the container;
    * a dict with ``path`` (host node), ``container_path`` and ``access``,
      or, instead of ``path``, ``type`` (``c``, ``b`` or ``a``), ``major``
      and ``minor`` (a number, or ``*``/None for any): a rule alone, like
      ``docker run --device-cgroup-rule``, or with ``container_path`` (and
      numbers) also a node made there.

    A host node given by path is looked up with ``lookup`` (os.stat, so a
    symlink such as /dev/disk/by-id/... leads to its device) for its type,
    numbers, mode bits and owner, as Docker copies them. Raises DeviceError.
    """
    if entries is None:
        return [], []
    if not isinstance(entries, (list, tuple)):
        raise DeviceError("%s must be a list of devices, such as ['/dev/fuse', '/dev/loop7:rw'], not %r"
                          % (OPTION, entries))
    rules, nodes, node_paths = [], [], {}
    for entry in entries:
        rule, node = parse_device(entry, lookup)
        rules.append(rule)
        if node is not None:
            if node.path in node_paths:
                raise DeviceError("%s: %r and %r both make %s in the container: give each device its own "
                                  "container path" % (OPTION, node_paths[node.path], entry, node.path))
            node_paths[node.path] = entry
            nodes.append(node)
    return rules, nodes


def parse_device(entry, lookup=os.stat):
    """One ``devices`` entry -> (DeviceRule, DeviceNode or None). See parse_devices."""
    if isinstance(entry, str):
        host_path, container_path, access = _split_string(entry)
        return _from_host_node(entry, host_path, container_path, access, lookup)
    if isinstance(entry, dict):
        return _from_dict(entry, lookup)
    raise DeviceError("%s: %r is neither a string nor a dict: use a string like '/dev/fuse' or "
                      "'/dev/sdb:/dev/xvdb:rw', or a dict with path, container_path, type, major, minor and access"
                      % (OPTION, entry))


def _split_string(entry):
    """``HOST[:CONTAINER][:ACCESS]`` -> (host, container or None, access)."""
    parts = entry.split(":")
    if len(parts) > 3 or not parts[0]:
        raise DeviceError("%s: %r is not HOST_PATH[:CONTAINER_PATH][:ACCESS]: write for example '/dev/fuse', "
                          "'/dev/loop7:rw' or '/dev/sdb:/dev/xvdb:rwm'" % (OPTION, entry))
    host_path, container_path, access = parts[0], None, FULL_ACCESS
    if len(parts) == 3:
        container_path, access = parts[1], parts[2]
    elif len(parts) == 2:
        # Paths are absolute and access strings are letters, so the middle
        # part tells itself which one it is.
        if parts[1].startswith("/"):
            container_path = parts[1]
        else:
            access = parts[1]
    return host_path, container_path, _access(access, entry)


def _from_dict(entry, lookup):
    unknown = sorted(set(entry) - set(ENTRY_KEYS), key=str)
    if unknown:
        raise DeviceError("%s: %r has unknown keys %s: use %s" % (
            OPTION, entry, ", ".join(map(repr, unknown)), ", ".join(ENTRY_KEYS)))
    access = _access(FULL_ACCESS if entry.get("access") is None else entry["access"], entry)
    container_path = entry.get("container_path")
    numbers_given = [key for key in ("type", "major", "minor") if entry.get(key) is not None]
    if entry.get("path") is not None:
        if numbers_given:
            raise DeviceError("%s: %r gives both path and %s: give either path (the host's node is looked up) "
                              "or type, major and minor" % (OPTION, entry, ", ".join(numbers_given)))
        return _from_host_node(entry, entry["path"], container_path, access, lookup)
    if "type" not in numbers_given:
        raise DeviceError("%s: %r names no device: give path (a device node on the host, e.g. /dev/fuse) or "
                          "type (c, b or a) with major and minor" % (OPTION, entry))
    kind = entry["type"]
    if kind not in TYPES:
        raise DeviceError("%s: type %r of %r is not a device type: use c (character), b (block) or a (both)"
                          % (OPTION, kind, entry))
    major = _number(entry.get("major"), "major", MAX_MAJOR, entry)
    minor = _number(entry.get("minor"), "minor", MAX_MINOR, entry)
    if kind == "a" and (major is not None or minor is not None):
        raise DeviceError("%s: %r: type a means every device, so major and minor must be '*' (or left out); "
                          "use type c or b for particular numbers" % (OPTION, entry))
    rule = DeviceRule(kind, major, minor, access)
    if container_path is None:
        return rule, None
    if kind == "a" or major is None or minor is None:
        raise DeviceError("%s: %r asks for a node at %s but does not name one device: give type c or b and a "
                          "number for major and minor, or leave container_path out for a rule alone"
                          % (OPTION, entry, container_path))
    return rule, DeviceNode(_container_path(container_path, entry), kind, major, minor)


def _from_host_node(entry, host_path, container_path, access, lookup):
    if not isinstance(host_path, str) or not host_path.startswith("/"):
        raise DeviceError("%s: host path %r of %r is not absolute: give the node's full path, e.g. /dev/fuse"
                          % (OPTION, host_path, entry))
    try:
        status = lookup(host_path)
    except OSError as exc:
        problem = "does not exist on this host" if exc.errno == errno.ENOENT else "cannot be looked up: %s" % (
            exc.strerror,)
        raise DeviceError("%s: %s (in %r) %s: give a device node that exists on the managed host (ls -l /dev "
                          "lists them)" % (OPTION, host_path, entry, problem))
    if stat.S_ISCHR(status.st_mode):
        kind = "c"
    elif stat.S_ISBLK(status.st_mode):
        kind = "b"
    else:
        raise DeviceError("%s: %s (in %r) is not a device node but a %s: give a character or block device, "
                          "such as /dev/fuse or /dev/loop0" % (OPTION, host_path, entry, _file_kind(status.st_mode)))
    major, minor = os.major(status.st_rdev), os.minor(status.st_rdev)
    node = DeviceNode(_container_path(host_path if container_path is None else container_path, entry),
                      kind, major, minor, stat.S_IMODE(status.st_mode), status.st_uid, status.st_gid)
    return DeviceRule(kind, major, minor, access), node


def _container_path(path, entry):
    if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/") or path.rstrip("/") == "":
        raise DeviceError("%s: container path %r of %r must be an absolute path below / without '..' "
                          "components, e.g. /dev/xvdb" % (OPTION, path, entry))
    return os.path.normpath(path)


def _access(access, entry):
    if (not isinstance(access, str) or not access or any(letter not in ACCESS_LETTERS for letter in access)
            or len(set(access)) != len(access)):
        raise DeviceError("%s: access %r of %r must be made of the letters r (read), w (write) and m (mknod), "
                          "each at most once, e.g. rw or rwm" % (OPTION, access, entry))
    # Canonical order, so equal rules compare equal and print alike.
    return "".join(letter for letter in ACCESS_LETTERS if letter in access)


def _number(value, name, maximum, entry):
    if value is None or value == "*":
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise DeviceError("%s: %s %r of %r is not a device number: use a number from 0 to %d (the largest the "
                          "kernel holds), or '*' for any" % (OPTION, name, value, entry, maximum))
    return value


def _file_kind(mode):
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISREG, "regular file"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISLNK, "symlink")):
        if test(mode):
            return name
    return "file of mode 0%o" % stat.S_IFMT(mode)
