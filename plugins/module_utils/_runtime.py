# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container spec -> a running process.

The walkthrough builds its container as
``cgexec -g memory,cpu:/x unshare --pid --mount --uts --fork chroot rootfs /bin/sh``
and then ``mount -t proc proc /proc`` inside it. This file does the same, in
the order the kernel needs and with the safer step wherever the manual one
leaks or can be escaped:

1. (parent) ``unshare(CLONE_NEWPID)`` then fork, so the child is PID 1
   (the walkthrough's ``unshare --pid --fork``);
2. (parent) move the child into the cgroup (``cgexec``) before it unshares
   the cgroup namespace, so that cgroup is the root of its view and its
   limits apply from the first instruction;
3. (child) unshare mount, UTS, IPC, network and cgroup namespaces;
4. make ``/`` recursively a slave mount, so nothing below leaks to the host;
5. bind the rootfs onto itself (pivot_root needs a mount point);
6. mount ``/proc`` (``mount -t proc proc /proc``), a tmpfs ``/dev`` with
   device nodes, ``/dev/pts``, ``/dev/shm`` and the fd links, ``/sys``
   read-only, mask what runc masks, make ``/proc/sys`` and friends
   read-only, then the volumes;
7. ``pivot_root(".", ".")`` and detach the old root (``chroot`` replaced:
   chroot is escapable by root, pivot_root leaves nothing to escape to);
8. set the hostname (``hostname mycontainer``), bring ``lo`` up;
9. drop the bounding set, switch user, keep only the kept capabilities,
   set ``no_new_privs``;
10. exec the command.

Errors in the child travel back through a close-on-exec pipe as a sentence,
so a missing binary reads "rootfs /x has no /bin/foo", never "exit 127".
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import select
import stat
import time

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_
from ansible_collections.handmade.containers.plugins.module_utils._capabilities import (
    CapabilityError,
    DEFAULT_CAPABILITIES,
    capability_mask,
    last_capability,
    normalize_capability,
)


class ContainerError(Exception):
    """A container could not be set up or run; the message says why and what to do."""


# Checked by hand rather than with `re`: importing re (and enum, functools
# behind it) costs more than the whole launch in a fresh interpreter.
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARS = _ALNUM | frozenset("_.-")
# Underscores are not in RFC 1123 but the kernel takes them, and a container
# named web_1 gets hostname web_1 by default, as with Docker.
_HOSTNAME_CHARS = _ALNUM | frozenset("_.-")


def valid_name(name):
    """Container names: ``[A-Za-z0-9][A-Za-z0-9_.-]*``, at most 63 characters."""
    return (isinstance(name, str) and 0 < len(name) <= 63 and name[0] in _ALNUM
            and all(char in _NAME_CHARS for char in name))


def valid_hostname(hostname):
    return (isinstance(hostname, str) and 0 < len(hostname) <= 64 and hostname[0] in _ALNUM
            and all(char in _HOSTNAME_CHARS for char in hostname))


# The names users write, mapped to the names /proc/<pid>/ns/ uses and the
# unshare flag for each. "user" is refused for now: mapping ids needs a
# helper process and writable uid_map/gid_map, a later step.
NAMESPACES = {
    "pid": ("pid", sys_.CLONE_NEWPID),
    "mount": ("mnt", sys_.CLONE_NEWNS),
    "uts": ("uts", sys_.CLONE_NEWUTS),
    "ipc": ("ipc", sys_.CLONE_NEWIPC),
    "net": ("net", sys_.CLONE_NEWNET),
    "cgroup": ("cgroup", sys_.CLONE_NEWCGROUP),
}
DEFAULT_NAMESPACES = ("pid", "mount", "uts", "ipc", "net", "cgroup")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Character devices every program expects, as the kernel numbers them
# (Documentation/admin-guide/devices.txt).
DEVICES = (
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7),
    ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
)
DEV_LINKS = (
    ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)
# runc's default masked and read-only paths: kernel interfaces that leak
# host information (kcore, keys, timer_list) or let root reconfigure the host
# (sysrq-trigger, /proc/sys). Only those that exist are covered.
MASKED_PATHS = (
    "proc/acpi", "proc/asound", "proc/kcore", "proc/keys", "proc/latency_stats",
    "proc/timer_list", "proc/timer_stats", "proc/sched_debug", "proc/scsi",
    "sys/firmware", "sys/devices/virtual/powercap",
)
READONLY_PATHS = ("proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger")

_PROC_FLAGS = sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC
_SYMLINK_LIMIT = 40


class Mount:
    """One volume: ``src`` on the host (or tmpfs) at ``dest`` inside the rootfs."""

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
    """Everything a launch needs, validated and resolved before any fork."""

    def __init__(self, **fields):
        self.name = fields["name"]
        self.rootfs = fields["rootfs"]
        self.argv = fields["argv"]
        self.executable = fields["executable"]
        self.env = fields["env"]
        self.user_env = fields["user_env"]
        self.workdir = fields["workdir"]
        self.user = fields["user"]
        self.uid = fields["uid"]
        self.gid = fields["gid"]
        self.namespaces = fields["namespaces"]
        self.hostname = fields["hostname"]
        self.cgroup = fields["cgroup"]
        self.mounts = fields["mounts"]
        self.readonly_rootfs = fields["readonly_rootfs"]
        self.capabilities = fields["capabilities"]
        self.no_new_privileges = fields["no_new_privileges"]
        self.capability_mask = capability_mask(self.capabilities)
        self.last_capability = last_capability()

    def config(self):
        """The settings that define this container (its config digest input)."""
        return {
            "rootfs": self.rootfs, "command": self.argv, "env": self.user_env,
            "workdir": self.workdir, "user": self.user,
            "namespaces": sorted(self.namespaces), "hostname": self.hostname,
            "cgroup": self.cgroup, "mounts": [m.config() for m in self.mounts],
            "readonly_rootfs": self.readonly_rootfs,
            "capabilities": sorted(self.capabilities),
            "no_new_privileges": self.no_new_privileges,
        }


# ---------------------------------------------------------------------------
# Paths inside the rootfs, resolved the way the container will see them.
# ---------------------------------------------------------------------------

def resolve_in_root(root, path, what="path"):
    """Return ``(host_path, exists)`` for ``path`` inside ``root``.

    Symlinks are followed as the container will follow them (an absolute
    target starts again at the rootfs, not at the host's /). A ``..`` that
    climbs above the rootfs is refused rather than clamped: a volume whose
    destination tries that is a mistake or an attack, never what a user meant.
    Missing trailing components are returned joined on, with ``exists``
    False, for the caller to create.
    """
    pending = [part for part in path.split("/") if part not in ("", ".")]
    pending.reverse()
    resolved = []
    via_link = None
    links_followed = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if not resolved:
                how = " through the symlink %s" % via_link if via_link else ""
                raise ContainerError("%s %s escapes the rootfs %s%s: use a path inside the rootfs"
                                     % (what, path, root, how))
            resolved.pop()
            continue
        candidate = os.path.join(root, *(resolved + [part]))
        try:
            info = os.lstat(candidate)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise ContainerError("cannot look up %s %s in rootfs %s: %s" % (what, path, root, exc))
            rest = list(reversed(pending))
            if ".." in rest:
                raise ContainerError("%s %s climbs through the missing directory %s in rootfs %s: "
                                     "write it without '..'" % (what, path, candidate, root))
            return os.path.join(root, *(resolved + [part] + rest)), False
        if not stat.S_ISLNK(info.st_mode):
            resolved.append(part)
            continue
        links_followed += 1
        if links_followed > _SYMLINK_LIMIT:
            raise ContainerError("%s %s in rootfs %s loops through symlinks" % (what, path, root))
        target = os.readlink(candidate)
        via_link = "/%s -> %s" % ("/".join(resolved + [part]), target)
        if target.startswith("/"):
            resolved = []
        for piece in reversed([p for p in target.split("/") if p not in ("", ".")]):
            pending.append(piece)
    return os.path.join(root, *resolved) if resolved else root, True


def find_executable(root, command, env_path, workdir):
    """The path to exec (as the container sees it) for ``command``, checked."""
    if "/" in command:
        candidates = [command if command.startswith("/") else os.path.join(workdir, command)]
    else:
        candidates = [os.path.join(directory or ".", command) for directory in env_path.split(":")]
    for candidate in candidates:
        host_path, exists = resolve_in_root(root, candidate, "command")
        if not exists:
            continue
        info = os.stat(host_path)
        if stat.S_ISDIR(info.st_mode):
            raise ContainerError("command %s in rootfs %s is a directory, not a program" % (candidate, root))
        if not info.st_mode & 0o111:
            raise ContainerError("command %s in rootfs %s is not executable (mode %o): chmod +x it "
                                 "or run it through its interpreter" % (candidate, root, info.st_mode & 0o7777))
        return candidate
    if "/" in command:
        raise ContainerError("rootfs %s has no %s: check the command or the rootfs" % (root, candidates[0]))
    raise ContainerError("rootfs %s has no %s in PATH %s: check the command or give its full path"
                         % (root, command, env_path))


def _lookup_id(root, database, name):
    """uid or gid of ``name`` in the rootfs' /etc/passwd or /etc/group."""
    host_path, exists = resolve_in_root(root, "/etc/" + database, "file")
    if exists:
        with open(host_path) as handle:
            for line in handle:
                fields = line.split(":")
                if len(fields) > 3 and fields[0] == name:
                    return int(fields[2]), int(fields[3]) if database == "passwd" else None
    raise ContainerError("user %s is not in the rootfs' /etc/%s: use numeric ids (uid:gid)" % (name, database))


def parse_user(root, user):
    """``"1000"``, ``"1000:100"``, ``"nobody"``, ``"nobody:users"`` -> (uid, gid)."""
    if user in (None, ""):
        return 0, 0
    text = str(user)
    user_part, _sep, group_part = text.partition(":")
    if user_part.isdigit():
        uid, gid = int(user_part), int(user_part)
    else:
        uid, gid = _lookup_id(root, "passwd", user_part)
    if group_part:
        gid = int(group_part) if group_part.isdigit() else _lookup_id(root, "group", group_part)[0]
    return uid, gid


def _prepare_mount(root, entry):
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
    return Mount(dest, target, src, mount_type, bool(entry.get("readonly")), entry.get("options")), exists


def _create_mount_point(mount_point):
    """Create a missing volume target inside the rootfs (a file for a file src)."""
    try:
        if mount_point.type == "bind" and not os.path.isdir(mount_point.src):
            os.makedirs(os.path.dirname(mount_point.target), exist_ok=True)
            os.close(os.open(mount_point.target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        else:
            os.makedirs(mount_point.target, exist_ok=True)
    except OSError as exc:
        raise ContainerError("cannot create mount point %s in the rootfs: %s" % (mount_point.dest, exc))


def build_spec(name=None, rootfs=None, command=None, env=None, workdir=None, user=None,
               namespaces=None, hostname=None, cgroup=None, mounts=None, readonly_rootfs=False,
               capabilities=None, no_new_privileges=True, create_mount_points=True, lookup_root=None):
    """Validate plain settings and resolve them against the rootfs.

    ``lookup_root`` is where the command, workdir and user are looked up
    when that differs from the rootfs on disk: for ``exec`` it is the
    running container's ``/proc/<pid>/root``, volumes included.
    """
    if name is not None and not valid_name(name):
        raise ContainerError("invalid container name %r: use letters, digits, '_', '.', '-' "
                             "(first a letter or digit), at most 63 characters" % (name,))
    if not rootfs:
        raise ContainerError("rootfs is required: the path of a root filesystem (see rootfs_fetch)")
    root = os.path.realpath(rootfs)
    if not os.path.isdir(root):
        raise ContainerError("rootfs %s does not exist or is not a directory: fetch it first with "
                             "handmade.containers.rootfs_fetch" % rootfs)
    if root == "/":
        raise ContainerError("rootfs / is the host's own root: give a separate root filesystem")
    view = lookup_root or root

    wanted = list(DEFAULT_NAMESPACES if namespaces is None else namespaces)
    for namespace in wanted:
        if namespace == "user":
            raise ContainerError("the user namespace is not supported yet: remove 'user' from namespaces")
        if namespace not in NAMESPACES:
            raise ContainerError("unknown namespace %r: choose from %s" % (namespace, ", ".join(DEFAULT_NAMESPACES)))
    if "mount" not in wanted:
        raise ContainerError("namespaces must include 'mount': the rootfs is pivot_root'ed in the "
                             "container's own mount namespace")

    if command is None or command == "" or command == []:
        argv = ["/bin/sh"]
    elif isinstance(command, (list, tuple)):
        argv = [str(arg) for arg in command]
    else:
        import shlex  # only a string command needs splitting
        argv = shlex.split(command)

    user_env = dict((str(key), str(value)) for key, value in (env or {}).items())
    uid, gid = parse_user(view, user)
    full_env = {"PATH": DEFAULT_PATH, "HOME": "/root" if uid == 0 else "/"}
    if name or hostname:
        full_env["HOSTNAME"] = hostname or name
    full_env.update(user_env)
    workdir = workdir or "/"
    if not workdir.startswith("/"):
        raise ContainerError("workdir %s must be an absolute path inside the container" % workdir)
    workdir_host, workdir_exists = resolve_in_root(view, workdir, "workdir")
    if not workdir_exists or not os.path.isdir(workdir_host):
        raise ContainerError("workdir %s does not exist in rootfs %s: create it or choose another" % (workdir, root))
    executable = find_executable(view, argv[0], full_env["PATH"], workdir)

    try:
        kept = sorted(set(normalize_capability(cap) for cap in
                          (DEFAULT_CAPABILITIES if capabilities is None else capabilities)))
    except CapabilityError as exc:
        raise ContainerError(str(exc))

    prepared = []
    for entry in mounts or []:
        mount_point, exists = _prepare_mount(root, entry)
        if not exists and create_mount_points:
            _create_mount_point(mount_point)
        prepared.append(mount_point)

    if hostname is not None and not valid_hostname(hostname):
        raise ContainerError("invalid hostname %r: letters, digits, '_', '.' and '-' (first a letter or "
                             "digit), at most 64" % (hostname,))

    return ContainerSpec(
        name=name, rootfs=root, argv=argv, executable=executable, env=full_env, user_env=user_env,
        workdir=workdir, user=None if user in (None, "") else str(user), uid=uid, gid=gid,
        namespaces=frozenset(wanted), hostname=hostname or name, cgroup=cgroup, mounts=prepared,
        readonly_rootfs=bool(readonly_rootfs), capabilities=kept,
        no_new_privileges=bool(no_new_privileges),
    )


# ---------------------------------------------------------------------------
# The child: everything below runs after fork, in the new namespaces. It
# imports nothing and starts no thread; each function is one step of the
# sequence and raises OSError (named by _syscalls) on failure.
# ---------------------------------------------------------------------------

def _make_root_slave():
    # rslave rather than rprivate: unmounts on the host still propagate in
    # (so the container never pins a host filesystem busy), while nothing
    # mounted here propagates back out to the host's mount table.
    sys_.mount(None, "/", None, sys_.MS_REC | sys_.MS_SLAVE)


def _bind_rootfs(spec):
    # pivot_root needs the new root to be a mount point; binding the rootfs
    # onto itself makes it one without touching the host's mount table.
    sys_.mount(spec.rootfs, spec.rootfs, None, sys_.MS_BIND | sys_.MS_REC)
    os.chdir(spec.rootfs)


def _ensure_dir(path):
    try:
        os.mkdir(path, 0o755)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise


def _mount_proc():
    # The walkthrough's `mount -t proc proc /proc`, done before pivot_root:
    # this proc belongs to the new PID namespace, so `ps` sees only the
    # container. (Without a new PID namespace it shows the host's processes.)
    _ensure_dir("proc")
    sys_.mount("proc", "proc", "proc", _PROC_FLAGS)


def _mount_dev():
    # A fresh tmpfs rather than the host's /dev: the container gets the few
    # harmless character devices and nothing that reaches host hardware.
    _ensure_dir("dev")
    sys_.mount("tmpfs", "dev", "tmpfs", sys_.MS_NOSUID | sys_.MS_STRICTATIME, "mode=755,size=65536k")
    for device, major, minor in DEVICES:
        path = "dev/" + device
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.chmod(path, 0o666)  # mknod's mode goes through the umask
    # newinstance: the container's ptys are its own, numbered from 0, and it
    # cannot open the host's through /dev/pts.
    os.mkdir("dev/pts", 0o755)
    sys_.mount("devpts", "dev/pts", "devpts", sys_.MS_NOSUID | sys_.MS_NOEXEC,
               "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.mkdir("dev/shm", 0o1777)
    sys_.mount("shm", "dev/shm", "tmpfs", sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC,
               "mode=1777,size=65536k")
    for link, target in DEV_LINKS:
        os.symlink(target, "dev/" + link)


def _mount_sys(own_network):
    _ensure_dir("sys")
    flags = sys_.MS_RDONLY | sys_.MS_NOSUID | sys_.MS_NODEV | sys_.MS_NOEXEC
    if own_network:
        # A sysfs mount shows the network devices of the mounter's network
        # namespace, so it may be mounted fresh only with a new one.
        sys_.mount("sysfs", "sys", "sysfs", flags)
    else:
        # Sharing the host's network: show the host's /sys, read-only.
        sys_.mount("/sys", "sys", None, sys_.MS_BIND | sys_.MS_REC)
        sys_.mount(None, "sys", None, sys_.MS_BIND | sys_.MS_REMOUNT | flags)


def _mask_paths():
    for path in MASKED_PATHS:
        try:
            info = os.lstat(path)
        except OSError:
            continue  # absent on this kernel: nothing to hide
        if stat.S_ISDIR(info.st_mode):
            # An empty read-only tmpfs hides a directory, as runc does.
            sys_.mount("tmpfs", path, "tmpfs", sys_.MS_RDONLY, "size=0")
        else:
            sys_.mount("dev/null", path, None, sys_.MS_BIND)


def _readonly_paths():
    for path in READONLY_PATHS:
        try:
            os.lstat(path)
        except OSError:
            continue
        # A bind mount's flags change only through a remount of the bind.
        sys_.mount(path, path, None, sys_.MS_BIND | sys_.MS_REC)
        sys_.mount(None, path, None, sys_.MS_BIND | sys_.MS_REMOUNT | sys_.MS_RDONLY | _PROC_FLAGS)


def _open_volume_target(rootfs_fd, volume):
    """The path to mount ``volume`` on, resolved again at mount time.

    build_spec checked the destination, but the rootfs may change between
    that check and the mount (another container sharing it could plant a
    symlink). openat2(RESOLVE_IN_ROOT) resolves the path again under the
    kernel's rules, where no symlink or ``..`` leads out of the rootfs, and
    the mount goes onto the opened file through /proc/self/fd, as runc does.
    Returns (path, fd or None); kernels before 5.6 have no openat2 and get
    the path build_spec checked.
    """
    try:
        fd = sys_.openat2(rootfs_fd, volume.dest, os.O_PATH | os.O_CLOEXEC,
                          sys_.RESOLVE_IN_ROOT | sys_.RESOLVE_NO_MAGICLINKS)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        return volume.target, None
    return "/proc/self/fd/%d" % fd, fd


def _mount_volumes(mounts):
    if not mounts:
        return
    # The cwd is the rootfs bind mount: resolve below it, not below the
    # rootfs directory underneath the bind.
    rootfs_fd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    for volume in mounts:
        target, fd = _open_volume_target(rootfs_fd, volume)
        if volume.type == "tmpfs":
            flags = sys_.MS_NOSUID | sys_.MS_NODEV | (sys_.MS_RDONLY if volume.readonly else 0)
            sys_.mount("tmpfs", target, "tmpfs", flags, volume.options)
        else:
            sys_.mount(volume.src, target, None, sys_.MS_BIND | sys_.MS_REC)
        if fd is not None:
            os.close(fd)
        if volume.readonly and volume.type == "bind":
            # A bind mount's flags change only by remounting it; open the
            # destination again so the remount hits the new mount, not the
            # directory it now covers.
            target, fd = _open_volume_target(rootfs_fd, volume)
            sys_.mount(None, target, None, sys_.MS_BIND | sys_.MS_REMOUNT | sys_.MS_RDONLY)
            if fd is not None:
                os.close(fd)
    os.close(rootfs_fd)


def _pivot_root(readonly_rootfs):
    # pivot_root(".", ".") stacks the old root on top of the new one; the
    # lazy unmount then drops it. Unlike chroot, no path leads back out:
    # the host's root is no longer in this mount namespace at all.
    sys_.pivot_root(".", ".")
    sys_.umount2(".", sys_.MNT_DETACH)
    os.chdir("/")
    if readonly_rootfs:
        sys_.mount(None, "/", None, sys_.MS_BIND | sys_.MS_REMOUNT | sys_.MS_RDONLY)


def _drop_privileges(spec):
    kept = spec.capability_mask
    # The bounding set first, while CAP_SETPCAP is still held: afterwards
    # no setuid binary or file capability can grant what was dropped.
    for number in range(spec.last_capability + 1):
        if not kept & (1 << number):
            sys_.prctl(sys_.PR_CAPBSET_DROP, number)
    if spec.uid != 0:
        # Keep the permitted set across setuid so the kept set survives.
        sys_.prctl(sys_.PR_SET_KEEPCAPS, 1)
    sys_.setgroups([spec.gid] if spec.gid != 0 else [])
    os.setgid(spec.gid)
    os.setuid(spec.uid)
    sys_.capset(kept, kept, kept)
    if spec.uid != 0:
        # A non-root program gets capabilities across exec only as ambient
        # ones; without this, the kept set would be empty after exec.
        for number in range(spec.last_capability + 1):
            if kept & (1 << number):
                sys_.prctl(sys_.PR_CAP_AMBIENT, sys_.PR_CAP_AMBIENT_RAISE, number)
    if spec.no_new_privileges:
        # setuid binaries and file capabilities can no longer raise privileges.
        sys_.prctl(sys_.PR_SET_NO_NEW_PRIVS, 1)


def _namespace_ids(pid="self"):
    ids = {}
    for proc_name, _flag in sys_.NAMESPACE_FLAGS:
        try:
            ids[proc_name] = os.readlink("/proc/%s/ns/%s" % (pid, proc_name))
        except OSError:
            pass
    return ids


def _report(channel, kind, text):
    os.write(channel, ("%s %s\n" % (kind, text.replace("\n", " "))).encode("utf-8", "replace"))


def _redirect_stdio(stdio, keep):
    for target, fd in enumerate(stdio):
        if fd != target:
            os.dup2(fd, target)
    # The container must hold none of the caller's descriptors: Ansible
    # waits for EOF on the module's pipes, and a leaked fd is a leaked host
    # resource. The two pipes below are close-on-exec.
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)


def _container_child(spec, stdio, report_w, go_r, die_with_parent):
    """PID 1 of the new container: set everything up, then exec."""
    step = "start"
    try:
        step = "redirect stdio"
        _redirect_stdio(stdio, (report_w, go_r) if go_r is not None else (report_w,))
        os.setsid()
        if die_with_parent:
            sys_.prctl(sys_.PR_SET_PDEATHSIG, sys_.SIGKILL)
        if go_r is not None:
            step = "wait for the cgroup"
            # The parent moves us into the cgroup (cgexec) and records us,
            # then says go. EOF instead means it died: leave nothing behind.
            if os.read(go_r, 1) != b"g":
                os._exit(125)
            os.close(go_r)
        step = "unshare namespaces"
        flags = 0
        for namespace in spec.namespaces:
            if namespace != "pid":  # already unshared by the parent, for us
                flags |= NAMESPACES[namespace][1]
        sys_.unshare(flags)
        step = "make / a slave mount"
        _make_root_slave()
        step = "bind the rootfs %s onto itself" % spec.rootfs
        _bind_rootfs(spec)
        step = "mount /proc"
        _mount_proc()
        step = "populate /dev"
        _mount_dev()
        step = "mount /sys"
        _mount_sys("net" in spec.namespaces)
        step = "mask host paths"
        _mask_paths()
        step = "make kernel paths read-only"
        _readonly_paths()
        step = "mount volumes"
        _mount_volumes(spec.mounts)
        step = "pivot_root into %s" % spec.rootfs
        _pivot_root(spec.readonly_rootfs)
        if "uts" in spec.namespaces and spec.hostname:
            step = "set the hostname"
            sys_.sethostname(spec.hostname)
        if "net" in spec.namespaces:
            step = "bring lo up"
            sys_.set_loopback_up()
        # No cgroup step here, where cgexec would come: the parent moved us
        # into the cgroup before the unshare above, so the cgroup namespace
        # is rooted at it and the limits already hold.
        step = "drop privileges"
        _drop_privileges(spec)
        step = "change to workdir %s" % spec.workdir
        os.chdir(spec.workdir)
        os.umask(0o022)
        _report(report_w, "N", " ".join(sorted(_namespace_ids().values())))
        step = "exec %s in rootfs %s" % (spec.executable, spec.rootfs)
        sys_.reset_signals()
        os.execve(spec.executable, spec.argv, spec.env)
    except BaseException as exc:  # noqa: B902 - the child must never return into the caller's code
        try:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if step.startswith("exec") and isinstance(exc, OSError) and exc.errno == errno.ENOENT:
                detail += " (its interpreter or a shared library is missing from the rootfs)"
            _report(report_w, "E", "%s: %s" % (step, detail))
        finally:
            os._exit(127)
    os._exit(127)


# ---------------------------------------------------------------------------
# The parent side: fork, cgroup, and the reply from the child.
# ---------------------------------------------------------------------------

class Launched:
    """A started container: host pid of its PID 1 and its namespace ids."""

    def __init__(self, pid, namespaces):
        self.pid = pid
        self.namespaces = namespaces


def _read_reports(report_r):
    chunks = []
    while True:
        chunk = os.read(report_r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    namespaces, error = {}, None
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        kind, _sep, text = line.partition(" ")
        if kind == "N":
            # "net:[4026532300] pid:[4026532301] ...", as readlink shows them.
            namespaces = dict((ns_id.split(":", 1)[0], ns_id) for ns_id in text.split())
        elif kind == "E":
            error = text
    return namespaces, error


def launch(spec, stdio, cgroup=None, die_with_parent=True, before_start=None):
    """Start ``spec`` as a new container; return once its command is exec'd.

    ``stdio`` is three fds for the container's stdin, stdout and stderr.
    ``cgroup`` is a _cgroupfs.Cgroup to join before anything runs.
    ``before_start(pid)`` runs after the fork and before the child may go
    on (the lifecycle records the pid there, so a crash leaves no stray).
    """
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    go_r = go_w = None
    if cgroup is not None or before_start is not None:
        go_r, go_w = os.pipe2(os.O_CLOEXEC)
    own_pid_ns = None
    try:
        if "pid" in spec.namespaces:
            # A PID namespace applies to the children of the caller, not to
            # the caller: unshare here, fork, and the child is PID 1.
            own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            sys_.unshare(sys_.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            _container_child(spec, stdio, report_w, go_r, die_with_parent)
    except OSError as exc:
        for fd in (report_r, report_w, go_r, go_w):
            if fd is not None:
                os.close(fd)
        raise ContainerError("cannot start the container: %s" % exc)
    finally:
        if own_pid_ns is not None:
            # Back to our own PID namespace for any later child of ours.
            sys_.setns(own_pid_ns, sys_.CLONE_NEWPID)
            os.close(own_pid_ns)
    os.close(report_w)
    try:
        if go_w is not None:
            os.close(go_r)
            try:
                if cgroup is not None:
                    cgroup.attach(pid)
                if before_start is not None:
                    before_start(pid)
                os.write(go_w, b"g")
            finally:
                os.close(go_w)
        namespaces, error = _read_reports(report_r)
    except BaseException:
        _kill_and_reap(pid)
        raise
    finally:
        os.close(report_r)
    if error is not None:
        _kill_and_reap(pid)
        raise ContainerError(error)
    return Launched(pid, namespaces)


def _kill_and_reap(pid):
    try:
        os.kill(pid, sys_.SIGKILL)
    except OSError:
        pass
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass


def exit_code(wait_status):
    """A wait status -> the shell's convention: the code, or 128 + signal."""
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def _exited(pid):
    """True once ``pid`` has exited, without reaping it (its pid stays ours)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _collect(pid, stdin_data, pipes, timeout, kill):
    """Feed stdin, gather stdout/stderr, wait for ``pid``; enforce ``timeout``.

    ``pipes`` is (stdin_w or None, stdout_r, stderr_r). ``kill()`` ends the
    whole container; it is called while ``pid`` is still unreaped, so it can
    never hit a process that reused the pid. Returns
    (wait_status, stdout, stderr, timed_out).
    """
    stdin_w, stdout_r, stderr_r = pipes
    output = {stdout_r: [], stderr_r: []}
    pending = memoryview(stdin_data or b"")
    deadline = None if not timeout else time.monotonic() + timeout
    poller = select.poll()
    for fd in output:
        poller.register(fd, select.POLLIN)
    if stdin_w is not None and not pending:
        os.close(stdin_w)
        stdin_w = None
    if stdin_w is not None:
        poller.register(stdin_w, select.POLLOUT)
    # A pidfd turns "PID 1 exited" into a poll event; kernels before 5.3
    # (or Python before 3.9) get a short tick instead.
    pidfd = None
    tick_ms = None
    try:
        pidfd = os.pidfd_open(pid)
        poller.register(pidfd, select.POLLIN)
    except (AttributeError, OSError):
        tick_ms = 50
    streams_open = len(output)
    exited = timed_out = False
    try:
        while streams_open or not exited:
            wait_ms = tick_ms
            if deadline is not None and not timed_out:
                left_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
                wait_ms = left_ms if wait_ms is None else min(wait_ms, left_ms)
            events = poller.poll(wait_ms)
            for fd, _event in events:
                if fd == pidfd:
                    continue
                if fd == stdin_w:
                    try:
                        written = os.write(fd, pending[:65536])
                    except OSError:  # EPIPE: the command stopped reading
                        written = len(pending)
                    pending = pending[written:]
                    if not pending:
                        poller.unregister(fd)
                        os.close(fd)
                        stdin_w = None
                    continue
                chunk = os.read(fd, 65536)
                if chunk:
                    output[fd].append(chunk)
                else:
                    poller.unregister(fd)
                    streams_open -= 1
            if not exited and _exited(pid):
                exited = True
                if pidfd is not None:
                    poller.unregister(pidfd)
                # PID 1 is gone; whatever still holds the pipes (possible
                # only without a PID namespace) goes with it.
                kill()
            if deadline is not None and not timed_out and time.monotonic() >= deadline and not exited:
                timed_out = True
                kill()
    finally:
        _close_all([stdin_w, pidfd])
    status = os.waitpid(pid, 0)[1]
    return status, b"".join(output[stdout_r]), b"".join(output[stderr_r]), timed_out


def _open_stdio(with_stdin):
    """Pipes for a run: (child's fds, parent's fds)."""
    if with_stdin:
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    else:
        stdin_r, stdin_w = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), None
    stdout_r, stdout_w = os.pipe2(os.O_CLOEXEC)
    stderr_r, stderr_w = os.pipe2(os.O_CLOEXEC)
    return (stdin_r, stdout_w, stderr_w), (stdin_w, stdout_r, stderr_r)


def _close_all(fds):
    for fd in fds:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _oom_kills(cgroup):
    # A host without the counter reports None: no OOM kill can be seen then.
    return (cgroup.stats().get("oom_kill") or 0) if cgroup is not None else 0


def _decode(data):
    return data.decode("utf-8", "replace")


def run_container(spec, stdin_data=None, timeout=None, cgroup=None):
    """Run ``spec`` to completion, like ``docker run --rm``; return its results.

    The container's PID 1 is killed with the caller (PR_SET_PDEATHSIG), at
    ``timeout``, and when it exits every process of its PID namespace goes
    with it, so nothing is left behind.
    """
    started = time.monotonic()
    child_fds, parent_fds = _open_stdio(stdin_data is not None)
    oom_before = _oom_kills(cgroup)
    try:
        launched = launch(spec, child_fds, cgroup=cgroup, die_with_parent=True)
    except BaseException:
        _close_all(parent_fds)
        raise
    finally:
        _close_all(child_fds)
    pid = launched.pid

    def kill_container():
        # PID 1 dying takes its whole PID namespace with it; without one, its
        # process group (it called setsid) is the container.
        for sender in (os.kill, os.killpg):
            try:
                sender(pid, sys_.SIGKILL)
            except OSError:
                pass

    data = stdin_data.encode("utf-8") if isinstance(stdin_data, str) else stdin_data
    status, stdout, stderr, timed_out = _collect(pid, data, parent_fds, timeout, kill_container)
    rc = exit_code(status)
    return {
        "rc": rc, "stdout": _decode(stdout), "stderr": _decode(stderr),
        "oom_killed": _oom_kills(cgroup) > oom_before,
        "timed_out": timed_out,
        "elapsed": round(time.monotonic() - started, 6),
        "pid": pid, "namespaces": launched.namespaces,
    }


def start_detached(spec, stdin_fd, log_fd, cgroup=None, before_start=None):
    """Start ``spec`` in the background (``docker run -d``); return Launched.

    Its stdin is ``stdin_fd`` (the state dir's fifo), stdout and stderr go
    to ``log_fd``; it holds no other descriptor of ours and has its own
    session, so Ansible's pipes reach EOF and an SSH logout does not touch
    it. Our process exits with the module; the kernel then hands PID 1's
    parenthood to init (or the nearest subreaper): no helper stays beside it.
    """
    return launch(spec, (stdin_fd, log_fd, log_fd), cgroup=cgroup,
                  die_with_parent=False, before_start=before_start)


# ---------------------------------------------------------------------------
# exec: a new process inside a running container (``docker exec``).
# ---------------------------------------------------------------------------

def _open_namespaces(pid):
    """fds of the namespaces of ``pid`` that differ from ours, in join order."""
    opened = []
    for proc_name, flag in sys_.NAMESPACE_FLAGS:
        theirs = "/proc/%d/ns/%s" % (pid, proc_name)
        try:
            if os.stat(theirs).st_ino == os.stat("/proc/self/ns/" + proc_name).st_ino:
                continue
            opened.append((os.open(theirs, os.O_RDONLY | os.O_CLOEXEC), flag))
        except OSError as exc:
            _close_all(fd for fd, _flag in opened)
            raise ContainerError("cannot open the namespaces of container process %d: %s" % (pid, exc))
    return opened


def _exec_child(spec, namespace_fds, root_fd, stdio, report_w, go_r):
    """Join the container, fork into its PID namespace, exec; relay the exit."""
    step = "start"
    try:
        _redirect_stdio(stdio, [report_w, go_r, root_fd] + [fd for fd, _flag in namespace_fds])
        os.setpgid(0, 0)  # one group, so a timeout kills this process and its child
        sys_.prctl(sys_.PR_SET_PDEATHSIG, sys_.SIGKILL)
        step = "wait for the cgroup"
        if os.read(go_r, 1) != b"g":
            os._exit(125)
        os.close(go_r)
        for fd, flag in namespace_fds:
            step = "join namespace 0x%x" % flag
            sys_.setns(fd, flag)
            os.close(fd)
        step = "enter the container's root"
        # setns into a mount namespace leaves us at its original root; the
        # container pivoted away from that, so go to PID 1's root instead.
        os.fchdir(root_fd)
        os.chroot(".")
        os.close(root_fd)
        step = "change to workdir %s" % spec.workdir
        os.chdir(spec.workdir)
        # Joining a PID namespace applies to children only: fork once more.
        child = os.fork()
        if child == 0:
            step = "drop privileges"
            _drop_privileges(spec)
            os.umask(0o022)
            step = "exec %s" % spec.executable
            sys_.reset_signals()
            os.execve(spec.executable, spec.argv, spec.env)
        os.close(report_w)
        status = os.waitpid(child, 0)[1]
        os._exit(exit_code(status))
    except BaseException as exc:  # noqa: B902 - the child must never return into the caller's code
        try:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            _report(report_w, "E", "%s: %s" % (step, detail))
        finally:
            os._exit(127)


def exec_in_container(pid, spec, stdin_data=None, timeout=None, cgroup=None, is_same_process=None):
    """Run ``spec``'s command inside the running container whose PID 1 is ``pid``.

    ``is_same_process()`` is checked after the namespace fds are open, so a
    pid reused by another process is never entered.
    """
    started = time.monotonic()
    namespace_fds = _open_namespaces(pid)
    try:
        root_fd = os.open("/proc/%d/root" % pid, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        _close_all(fd for fd, _flag in namespace_fds)
        raise ContainerError("cannot open the root of container process %d: %s" % (pid, exc))
    held = [root_fd] + [fd for fd, _flag in namespace_fds]
    oom_before = _oom_kills(cgroup)
    if is_same_process is not None and not is_same_process():
        _close_all(held)
        raise ContainerError("container process %d exited while exec started: start the container again" % pid)
    child_fds, parent_fds = _open_stdio(stdin_data is not None)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    try:
        helper = os.fork()
        if helper == 0:
            _exec_child(spec, namespace_fds, root_fd, child_fds, report_w, go_r)
    finally:
        _close_all(held + list(child_fds) + [report_w, go_r])
    try:
        if cgroup is not None:
            cgroup.attach(helper)
        os.write(go_w, b"g")
        os.close(go_w)
        go_w = None
        _namespaces, error = _read_reports(report_r)
    except BaseException:
        _close_all(parent_fds + (go_w,))
        _kill_and_reap(helper)
        raise
    finally:
        os.close(report_r)
    if error is not None:
        _close_all(parent_fds)
        _kill_and_reap(helper)
        raise ContainerError(error)

    def kill_exec():
        try:
            os.killpg(helper, sys_.SIGKILL)
        except OSError:
            pass

    data = stdin_data.encode("utf-8") if isinstance(stdin_data, str) else stdin_data
    status, stdout, stderr, timed_out = _collect(helper, data, parent_fds, timeout, kill_exec)
    return {
        "rc": exit_code(status), "stdout": _decode(stdout), "stderr": _decode(stderr),
        "oom_killed": _oom_kills(cgroup) > oom_before,
        "timed_out": timed_out, "elapsed": round(time.monotonic() - started, 6),
    }


def namespace_ids(pid):
    """``{"net": "net:[4026532...]", ...}`` as /proc/<pid>/ns/ shows them."""
    return _namespace_ids(pid)


def enter_command(pid, namespaces, shell="/bin/sh"):
    """The nsenter line that opens an interactive shell inside the container."""
    options = ["--%s" % name for name in ("mount", "uts", "ipc", "net", "pid", "cgroup") if name in namespaces]
    return "nsenter --target %d %s --root --wd -- %s" % (pid, " ".join(options), shell)
