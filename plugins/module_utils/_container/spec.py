# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container settings -> a ContainerSpec: validated and resolved before any fork.

``build_spec`` takes the settings of ``options.settings()`` (every row of
the option table, defaults applied), checks each, resolves the command,
user, workdir and volume destinations inside the rootfs, and keeps the
canonical value of every row in ``spec.settings``: that is what a running
container records and what its config digest is computed from.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import stat

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_
from ansible_collections.handmade.containers.plugins.module_utils._capabilities import (
    CapabilityError,
    capability_mask,
    last_capability,
    normalize_capability,
)
from ansible_collections.handmade.containers.plugins.module_utils import _devices
from ansible_collections.handmade.containers.plugins.module_utils._container import beneath, mounts, options, seccomp
from ansible_collections.handmade.containers.plugins.module_utils._container import init_program
from ansible_collections.handmade.containers.plugins.module_utils._container import health, logs, restarts
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.layout import (
    PROJECT_PARENT,
    validate_name as validate_cgroup_name,
)
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.paths import (
    find_executable,
    resolve_in_root,
)

# Checked by hand rather than with `re`: importing re (and enum, functools
# behind it) costs more than the whole launch in a fresh interpreter.
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARS = _ALNUM | frozenset("_.-")
# Underscores are not in RFC 1123 but the kernel takes them, and a container
# named web_1 gets hostname web_1 by default, as with Docker.
_HOSTNAME_CHARS = _ALNUM | frozenset("_.-")

# The names users write, mapped to the names /proc/<pid>/ns/ uses and the
# unshare flag for each. "user" is refused for now: mapping ids needs a
# parent-side step of the launch protocol and writable uid_map/gid_map.
NAMESPACES = {
    "pid": ("pid", sys_.CLONE_NEWPID),
    "mount": ("mnt", sys_.CLONE_NEWNS),
    "uts": ("uts", sys_.CLONE_NEWUTS),
    "ipc": ("ipc", sys_.CLONE_NEWIPC),
    "net": ("net", sys_.CLONE_NEWNET),
    "cgroup": ("cgroup", sys_.CLONE_NEWCGROUP),
}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def valid_name(name):
    """Container names: ``[A-Za-z0-9][A-Za-z0-9_.-]*``, at most 63 characters."""
    return (isinstance(name, str) and 0 < len(name) <= 63 and name[0] in _ALNUM
            and all(char in _NAME_CHARS for char in name))


def valid_hostname(hostname):
    return (isinstance(hostname, str) and 0 < len(hostname) <= 64 and hostname[0] in _ALNUM
            and all(char in _HOSTNAME_CHARS for char in hostname))


def check_name(name):
    if not valid_name(name):
        raise ContainerError("invalid container name %r: use letters, digits, '_', '.', '-' "
                             "(first a letter or digit), at most 63 characters" % (name,))


class Volume:
    """One entry of ``mounts``: ``src`` on the host (or tmpfs) at ``dest`` inside the rootfs."""

    def __init__(self, dest, target, src=None, mount_type="bind", readonly=False, options=None):
        self.dest = dest          # the path as the container sees it
        self.target = target      # the host path it resolved to, inside the rootfs
        self.src = src
        self.type = mount_type
        self.readonly = readonly
        self.options = options

    def config(self):
        return {"src": self.src, "dest": self.dest, "type": self.type,
                "readonly": self.readonly, "options": self.options}


class ContainerSpec:
    """Everything a launch needs, validated and resolved.

    ``settings`` holds the canonical value of every option row; the other
    attributes are what the launch derives from them (the path to exec, the
    full environment, numeric ids, resolved volumes, a capability mask).
    """

    def __init__(self, settings, **derived):
        self.settings = settings
        self.name = settings["name"]
        self.rootfs = settings["rootfs"]
        self.argv = settings["command"]
        self.workdir = settings["workdir"]
        self.hostname = settings["hostname"]
        self.cgroup = settings["cgroup"]
        self.cgroup_parent = settings.get("cgroup_parent")
        self.namespaces = frozenset(settings["namespaces"])
        self.readonly_rootfs = settings["readonly_rootfs"]
        self.capabilities = settings["capabilities"]
        self.no_new_privileges = settings["no_new_privileges"]
        self.executable = derived["executable"]
        self.env = derived["env"]
        self.uid = derived["uid"]
        self.gid = derived["gid"]
        self.groups = derived["groups"]
        self.volumes = derived["volumes"]
        self.device_rules = derived["device_rules"]
        self.device_nodes = derived["device_nodes"]
        self.seccomp_program = derived["seccomp_program"]
        # The built-in init's bytes with ``init``, else None (init_program.py).
        self.init_program = derived.get("init_program")
        # Whether the launch may make missing mount points in the rootfs
        # (mounts.make_mount_points, through its fd, taken back on failure).
        self.create_mount_points = derived.get("create_mount_points", True)
        self.capability_mask = capability_mask(self.capabilities)
        self.last_capability = last_capability()

    def config(self):
        """The settings that define this container, as diffs show them (options.defining)."""
        return options.defining(self.settings)

    def digest_input(self):
        """What its config digest covers (options.digest_input)."""
        return options.digest_input(self.settings)


# The most of a rootfs' /etc/passwd or /etc/group read: far above any real
# one, and a bound on what a hostile image makes the module hold.
MAX_DATABASE_BYTES = 4 * 1024 * 1024


def _read_database(root, database):
    """The rows of the rootfs' /etc/passwd or /etc/group, as lists of fields ([] when there is none).

    A running container can change the file while it is read (for exec, and
    when a container on the same rootfs is recreated): it is opened through
    the root's fd, a symlink resolved as the container sees it, never
    through a host path; only a regular file is read (not a fifo, a device
    or /dev/zero behind a link), and at most MAX_DATABASE_BYTES of it.
    """
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = beneath.open_beneath(root_fd, "etc/" + database, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY,
                                  sys_.RESOLVE_IN_ROOT | sys_.RESOLVE_NO_MAGICLINKS)
    except OSError:
        return []
    finally:
        os.close(root_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        chunks, size = [], 0
        while size <= MAX_DATABASE_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > MAX_DATABASE_BYTES:
        raise ContainerError("/etc/%s in rootfs %s is larger than %d MiB: that is no %s file; fix the image, or "
                             "give user as numeric ids (uid:gid)" % (database, root, MAX_DATABASE_BYTES >> 20, database))
    text = b"".join(chunks).decode("utf-8", "replace")
    return [line.split(":") for line in text.splitlines() if line.count(":") >= 3]


def _lookup_id(root, database, name):
    """uid and gid of ``name`` in /etc/passwd, or (gid, None) of a group in /etc/group."""
    for fields in _read_database(root, database):
        if fields[0] == name and fields[2].isdigit():
            return int(fields[2]), int(fields[3]) if database == "passwd" and fields[3].isdigit() else None
    raise ContainerError("user %s is not in the rootfs' /etc/%s: use numeric ids (uid:gid)" % (name, database))


# The kernel's ids are 32-bit, and (uid_t)-1 means "no change" to setuid(2).
MAX_ID = 4294967294


def _checked_id(user, kind, value):
    if value > MAX_ID:
        raise ContainerError("user %s: %s %d is out of range: ids go from 0 to %d" % (user, kind, value, MAX_ID))
    return value


def parse_user(root, user):
    """``"1000"``, ``"1000:100"``, ``"nobody"``, ``"nobody:users"`` -> (uid, gid)."""
    if user in (None, ""):
        return 0, 0
    if not isinstance(user, (str, int)) or isinstance(user, bool):
        raise ContainerError("user must be uid[:gid] or name[:group] as a string, got %r" % (user,))
    text = str(user)
    user_part, _sep, group_part = text.partition(":")
    if user_part.isdigit():
        uid, gid = int(user_part), int(user_part)
    else:
        uid, gid = _lookup_id(root, "passwd", user_part)
    if group_part:
        gid = int(group_part) if group_part.isdigit() else _lookup_id(root, "group", group_part)[0]
    return _checked_id(text, "uid", uid), _checked_id(text, "gid", gid)


def supplementary_groups(root, uid, gid):
    """The primary group and every group of the rootfs' /etc/group that lists the user, as runc sets them.

    Root in an Alpine rootfs gets ``0(root) 1(bin) 2(daemon) ...``, as with
    ``docker run``; a uid without a name in /etc/passwd gets its gid alone.
    """
    names = [fields[0] for fields in _read_database(root, "passwd") if fields[2] == str(uid)]
    groups = [gid]
    if names:
        for fields in _read_database(root, "group"):
            members = fields[3].split(",") if len(fields) > 3 else []
            if names[0] in members and fields[2].isdigit() and int(fields[2]) not in groups:
                groups.append(int(fields[2]))
    return groups


def _prepare_volume(root, entry):
    if not isinstance(entry, dict) or not entry.get("dest"):
        raise ContainerError("each mount needs at least a dest, got %r" % (entry,))
    mount_type = entry.get("type") or "bind"
    dest = entry["dest"]
    if not str(dest).startswith("/"):
        raise ContainerError("mount dest %s must be an absolute path inside the container" % dest)
    src = entry.get("src")
    if mount_type == "bind":
        if not src:
            raise ContainerError("bind mount to %s needs a src on the host" % dest)
        src = os.path.abspath(src)
        if not os.path.exists(src):
            raise ContainerError("bind mount src %s does not exist on the host: create it first" % src)
    elif mount_type != "tmpfs":
        raise ContainerError("mount type %r for %s is not supported: use bind or tmpfs" % (mount_type, dest))
    target, exists = resolve_in_root(root, dest, "mount dest")
    if target == root:
        raise ContainerError("mount dest / would hide the whole rootfs: mount below it")
    return Volume(dest, target, src, mount_type, bool(entry.get("readonly")), entry.get("options")), exists


def check_mount_points(root):
    """Refuse an image whose /proc, /dev, /sys (or another of the plan's mount points) is a symlink or no directory.

    Before anything is made or mounted, so that such an image fails with
    the path named instead of starting a container without procfs, without
    /dev or without its masks. A missing one is fine: the launch makes it.
    """
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for path in mounts.IMAGE_MOUNT_POINTS:
            try:
                info = os.stat(path, dir_fd=root_fd, follow_symlinks=False)
            except OSError:
                continue  # missing: made at launch (or covered by the fresh /dev)
            if stat.S_ISDIR(info.st_mode):
                continue
            if stat.S_ISLNK(info.st_mode):
                what = "a symlink to %s" % os.readlink(path, dir_fd=root_fd)
            else:
                what = "not a directory"
            raise ContainerError("rootfs %s has /%s %s: ns_exec mounts its own filesystem there and follows no "
                                 "symlink to do it; make /%s an empty directory in the image" % (root, path, what, path))
    finally:
        os.close(root_fd)


def _is_directory_in(root, path):
    """Whether ``path`` is a directory inside ``root``, resolved as the container will, through the root's fd."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.close(beneath.open_beneath(root_fd, path, os.O_PATH | os.O_DIRECTORY,
                                      sys_.RESOLVE_IN_ROOT | sys_.RESOLVE_NO_MAGICLINKS))
        return True
    except OSError:
        return False
    finally:
        os.close(root_fd)


_SCALARS = (str, int, float)


def _text(value, what, fix):
    """A scalar as the string execve gets; anything else (a dict, a list, a NUL byte) is refused."""
    if not isinstance(value, _SCALARS):
        raise ContainerError("%s is a %s (%r): %s" % (what, type(value).__name__, value, fix))
    text = str(value)
    if "\0" in text:
        raise ContainerError("%s holds a NUL byte, which no program can receive: remove it" % what)
    return text


def _argv(command):
    if command is None or command == "" or command == []:
        return ["/bin/sh"]
    if isinstance(command, (list, tuple)):
        return [_text(arg, "command argument %d" % index, "give each argument as a string")
                for index, arg in enumerate(command)]
    if not isinstance(command, str):
        raise ContainerError("command must be a list of strings or a string, got a %s (%r): write it as "
                             "command: [program, arg, ...]" % (type(command).__name__, command))
    import shlex  # only a string command needs splitting
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ContainerError("command %r cannot be split like a shell would (%s): give it as a list" % (command, exc))
    return [_text(arg, "command argument %d" % index, "") for index, arg in enumerate(argv)] or ["/bin/sh"]


def _environment(env):
    """``env`` as execve takes it: string names without '=' and string values."""
    if not isinstance(env, dict):
        raise ContainerError("env must be a mapping of names to values, got %r" % (env,))
    checked = {}
    for key, value in env.items():
        name = _text(key, "env name %r" % (key,), "names are strings")
        if not name or "=" in name:
            raise ContainerError("env name %r is not a variable name: it must be non-empty and hold no '='" % name)
        fix = "give it as a string (quote it in YAML), or serialize it first (to_json)"
        checked[name] = _text(value, "env %s" % name, fix)
    return checked


def _namespaces(wanted):
    for namespace in wanted:
        if namespace == "user":
            raise ContainerError("the user namespace is not supported yet: remove 'user' from namespaces")
        if namespace not in NAMESPACES:
            raise ContainerError("unknown namespace %r: choose from %s"
                                 % (namespace, ", ".join(options.DEFAULT_NAMESPACES)))
    if "mount" not in wanted:
        raise ContainerError("namespaces must include 'mount': the rootfs is pivot_root'ed in the "
                             "container's own mount namespace")
    return sorted(set(wanted))


def _capabilities(names):
    try:
        return sorted(set(normalize_capability(cap) for cap in names))
    except CapabilityError as exc:
        raise ContainerError(str(exc))


def _seconds(name, value, example):
    """A setting of ``name`` as finite seconds, 0 or more, or the ContainerError naming the fix."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = None
    # NaN compares false with everything: "not 0 <= seconds" refuses it too.
    if seconds is None or not 0 <= seconds < float("inf"):
        raise ContainerError("%s %r is not a number of seconds: give a finite number, 0 or more, for example %s"
                             % (name, value, example))
    return seconds


def _stop_timeout(value):
    return _seconds("stop_timeout", value, 10)


def wait_healthy_timeout(value):
    """``wait_healthy_timeout`` in seconds; None is its default."""
    if value is None:
        value = options.OPTIONS_BY_NAME["wait_healthy_timeout"].default
    return _seconds("wait_healthy_timeout", value, 300)


def exec_spec(name, config, params, pid):
    """The spec of a command run in running container ``name`` (PID 1 ``pid``), started with ``config``.

    The container's volumes are already mounted in its namespace and its
    devices made and allowed in its cgroup: an exec neither mounts nor
    re-checks them (the record holds the devices as kernel rules, not as
    the option). Its command, workdir and user are looked up through
    ``/proc/<pid>/root``, which raises OSError once PID 1 is gone.
    """
    started_with = dict(config or {}, name=name, mounts=[], devices=[])
    return build_spec(options.settings(params, started_with=started_with), create_mount_points=False,
                      lookup_root="/proc/%d/root" % pid)


def check_cgroup_parent(cgroup, parent):
    """The checked ``cgroup_parent`` (None: the default); it excludes ``cgroup``."""
    if parent in (None, ""):
        return None
    if cgroup:
        raise ContainerError("cgroup %s and cgroup_parent %s both say where the container runs: give one of "
                             "them (cgroup joins a cgroup that exists; cgroup_parent makes one of its own below it)"
                             % (cgroup, parent))
    try:
        validate_cgroup_name(parent.rstrip("/") + "/container")
    except CgroupError:
        raise ContainerError("cgroup_parent %r must be %s or a cgroup below it, such as %s/web: the containers' "
                             "cgroups are made only below the project's parent" % (parent, PROJECT_PARENT,
                                                                                   PROJECT_PARENT))
    return parent.rstrip("/")


def build_spec(settings, create_mount_points=True, lookup_root=None):
    """Validate the settings and resolve them against the rootfs.

    Nothing is written in the rootfs here: the launch makes the missing
    mount points (unless ``create_mount_points`` is False) and takes them
    back if the start fails.

    ``lookup_root`` is where the command, workdir and user are looked up
    when that differs from the rootfs on disk: for ``exec`` it is the
    running container's ``/proc/<pid>/root``, volumes included.
    """
    # What the container is started again from (a restart, the boot unit):
    # the settings as given, before they are resolved into the spec.
    launch_settings = json.loads(json.dumps(settings))
    settings = dict(settings)
    name = settings.get("name")
    if name is not None:
        check_name(name)
    rootfs = settings.get("rootfs")
    if not rootfs:
        raise ContainerError("rootfs is required: the path of a root filesystem (see rootfs_fetch)")
    root = os.path.realpath(rootfs)
    if not os.path.isdir(root):
        raise ContainerError("rootfs %s does not exist or is not a directory: fetch it first with "
                             "handmade.containers.rootfs_fetch" % rootfs)
    if root == "/":
        raise ContainerError("rootfs / is the host's own root: give a separate root filesystem")
    settings["rootfs"] = root
    view = lookup_root or root

    settings["namespaces"] = _namespaces(list(settings["namespaces"]))
    settings["command"] = argv = _argv(settings.get("command"))
    settings["env"] = user_env = _environment(settings.get("env") or {})
    user = settings.get("user")
    settings["user"] = None if user in (None, "") else str(user)
    uid, gid = parse_user(view, user)
    hostname = settings.get("hostname")
    if hostname is not None and not valid_hostname(hostname):
        raise ContainerError("invalid hostname %r: letters, digits, '_', '.' and '-' (first a letter or "
                             "digit), at most 64" % (hostname,))
    settings["hostname"] = hostname or name
    full_env = {"PATH": DEFAULT_PATH, "HOME": "/root" if uid == 0 else "/"}
    if settings["hostname"]:
        full_env["HOSTNAME"] = settings["hostname"]
    full_env.update(user_env)

    workdir = settings["workdir"] = settings.get("workdir") or "/"
    if not workdir.startswith("/"):
        raise ContainerError("workdir %s must be an absolute path inside the container" % workdir)
    resolve_in_root(view, workdir, "workdir")  # for its message, when the path leads out
    if not _is_directory_in(view, workdir):
        raise ContainerError("workdir %s does not exist in rootfs %s: create it or choose another" % (workdir, root))
    executable = find_executable(view, argv[0], full_env["PATH"], workdir)

    settings["capabilities"] = _capabilities(settings["capabilities"])
    settings["readonly_rootfs"] = bool(settings.get("readonly_rootfs"))
    settings["init"] = bool(settings.get("init"))
    init_bytes = _init_program() if settings["init"] else None
    settings["no_new_privileges"] = bool(settings.get("no_new_privileges"))
    settings["stop_timeout"] = _stop_timeout(settings.get("stop_timeout"))
    try:  # kept as bytes and a count, so 5m and 5M are the same container
        settings["log_max_size"], settings["log_max_files"] = logs.check_limits(
            settings.get("log_max_size"), settings.get("log_max_files"))
    except ValueError as exc:
        raise ContainerError(str(exc))

    settings["cgroup_parent"] = check_cgroup_parent(settings.get("cgroup"), settings.get("cgroup_parent"))

    if lookup_root is None:
        check_mount_points(root)
    volumes = [_prepare_volume(root, entry)[0] for entry in settings.get("mounts") or []]
    settings["mounts"] = [volume.config() for volume in volumes]

    try:
        extra_rules, device_nodes = _devices.parse_devices(settings.get("devices") or [])
    except _devices.DeviceError as exc:
        raise ContainerError(str(exc))
    # Recorded as the rules and nodes they became: a device renumbered on
    # the host recreates the container, another spelling of the same does not.
    settings["devices"] = [rule.line() for rule in extra_rules] + ["node %s %s %s:%s" % (
        node.path, node.type, node.major, node.minor) for node in device_nodes]
    settings["seccomp"] = settings.get("seccomp") or "default"
    capability_bits = capability_mask(settings["capabilities"])
    seccomp_program = seccomp.prepare(settings["seccomp"], capability_bits)

    try:
        settings["restart_policy"], settings["restart_retries"] = restarts.check(
            settings.get("restart_policy") or "no", settings.get("restart_retries") or 0)
    except ValueError as exc:
        raise ContainerError(str(exc))

    try:
        settings["healthcheck"] = health.check(settings.get("healthcheck"))
    except ValueError as exc:
        raise ContainerError(str(exc))
    settings["wait_healthy"] = bool(settings.get("wait_healthy"))
    settings["wait_healthy_timeout"] = wait_healthy_timeout(settings.get("wait_healthy_timeout"))
    if settings["wait_healthy"] and settings["healthcheck"] is None:
        raise ContainerError("wait_healthy needs a healthcheck: give healthcheck.test, the command that exits 0 "
                             "once the container is healthy, or leave wait_healthy out")

    spec = ContainerSpec(settings, executable=executable, env=full_env, uid=uid, gid=gid,
                         groups=supplementary_groups(view, uid, gid), volumes=volumes,
                         device_rules=_devices.allowed_rules(extra_rules), device_nodes=device_nodes,
                         seccomp_program=seccomp_program, create_mount_points=create_mount_points,
                         init_program=init_bytes)
    spec.launch_settings = launch_settings
    return spec


def _init_program():
    """The built-in init for this host's machine, or the error that says there is none."""
    machine = os.uname()[4]
    program = init_program.program_for(machine)
    if program is None:
        raise ContainerError(
            "init: the built-in init exists for %s, and this host is %s: leave init out, or put an init "
            "such as tini in the image and make it the command"
            % (" and ".join(sorted(init_program.PROGRAMS)), machine))
    return program
