# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Linux system calls a container needs, through ctypes.

Python's ``os`` module has no unshare, setns, mount, pivot_root, capset or
prctl, so they are called here straight from libc (or ``syscall(2)`` where
glibc has no wrapper). Every wrapper raises ``OSError`` whose message names
the call and its arguments, so a failure deep inside a container set-up reads
as "mount('proc', '/x/proc', 'proc'): Operation not permitted", not as a bare
errno.

Loading is cheap on purpose (no ``ctypes.util.find_library``, which spawns
``ldconfig``): the running interpreter already links libc, so
``CDLL(None)`` finds every symbol. This is the one place libc is loaded.

Calls made by number (pivot_root, capset, openat2, ...) exist only for the
architectures in ``SYSCALL_NUMBERS``. Elsewhere importing this file still
works; the first such call raises ``UnsupportedArchitecture`` with a
sentence a module can show, instead of an import error.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ctypes
import errno
import os

# Signal numbers are the same on every Linux architecture listed below;
# spelling them here spares a fresh interpreter the `signal` module, whose
# enum classes cost more to import than a whole container launch.
SIGKILL = 9
SIGTERM = 15
SIGSTOP = 19

# Namespace flags (include/uapi/linux/sched.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# The names /proc/<pid>/ns/ uses, with the flag that unshares each. The
# order is the order setns() joins them in: the mount namespace last but
# one (after it, /proc paths change meaning) and pid last (it only applies
# to children, so it costs nothing to join it late).
NAMESPACE_FLAGS = (
    ("cgroup", CLONE_NEWCGROUP),
    ("ipc", CLONE_NEWIPC),
    ("uts", CLONE_NEWUTS),
    ("net", CLONE_NEWNET),
    ("mnt", CLONE_NEWNS),
    ("pid", CLONE_NEWPID),
)

# mount(2) flags (include/uapi/linux/mount.h).
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 0x80000
MS_STRICTATIME = 0x1000000
MNT_DETACH = 0x2

# prctl(2) options (include/uapi/linux/prctl.h).
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2

# mount_setattr(2) (Linux 5.12+): attributes and flags.
MOUNT_ATTR_RDONLY = 0x1
AT_FDCWD = -100
AT_RECURSIVE = 0x8000

# statvfs(3) f_flag bits of the mount flags a bind remount must keep.
ST_NOSUID = 0x2
ST_NODEV = 0x4
ST_NOEXEC = 0x8

# openat2(2) resolve flags (include/uapi/linux/openat2.h).
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# statfs(2) f_type of the filesystems the mount plan checks (include/uapi/linux/magic.h).
PROC_SUPER_MAGIC = 0x9FA0
SYSFS_MAGIC = 0x62656572
TMPFS_MAGIC = 0x01021994

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# Calls glibc has no wrapper for (or did not have in every version this
# collection meets), by number. Linux numbers them per architecture; aarch64
# uses the generic table that newer architectures share.
SYSCALL_NUMBERS = {
    "x86_64": {"seccomp": 317, "pivot_root": 155, "capget": 125, "capset": 126, "openat2": 437, "rt_sigaction": 13,
               "mount_setattr": 442, "bpf": 321, "keyctl": 250},
    "aarch64": {"seccomp": 277, "pivot_root": 41, "capget": 90, "capset": 91, "openat2": 437, "rt_sigaction": 134,
                "mount_setattr": 442, "bpf": 280, "keyctl": 219},
}
# Some systems spell the same architectures another way.
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


class UnsupportedArchitecture(OSError):
    """This host's architecture has no syscall number table here."""


def syscall_numbers(machine=None):
    """Return the syscall number table for ``machine`` (default: this host)."""
    machine = machine or os.uname().machine
    machine = _MACHINE_ALIASES.get(machine.lower(), machine.lower())
    try:
        return SYSCALL_NUMBERS[machine]
    except KeyError:
        raise UnsupportedArchitecture(
            errno.ENOSYS, "handmade.containers knows the syscall numbers of %s only, not of %s: run it on "
            "one of those" % (" and ".join(sorted(SYSCALL_NUMBERS)), machine))


class _SyscallNumbers:
    """The table of this host, looked up at the first call that needs it."""

    def __init__(self):
        self._table = None

    def __getitem__(self, call):
        if self._table is None:
            self._table = syscall_numbers()
        return self._table[call]


libc = ctypes.CDLL(None, use_errno=True)
_libc = libc
_NR = _SyscallNumbers()

_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.unshare.argtypes = (ctypes.c_int,)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.sethostname.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
_libc.setgroups.argtypes = (ctypes.c_size_t, ctypes.c_void_p)
_libc.socket.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
_libc.ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)
_libc.sigprocmask.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_libc.statfs.argtypes = (ctypes.c_char_p, ctypes.c_void_p)


def _check(result, call):
    """Turn a -1 return into OSError naming ``call``; pass any other value on."""
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (call, os.strerror(err)))
    return result


def _encode(value):
    if value is None or isinstance(value, bytes):
        return value
    return value.encode("utf-8", "surrogateescape")


def unshare(flags):
    _check(_libc.unshare(flags), "unshare(0x%x)" % flags)


def setns(fd, nstype=0):
    _check(_libc.setns(fd, nstype), "setns(%d, 0x%x)" % (fd, nstype))


def mount(source, target, fstype=None, flags=0, data=None):
    _check(_libc.mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data)),
           "mount(%r, %r, %r, 0x%x, %r)" % (source, target, fstype, flags, data))


def umount2(target, flags=0):
    _check(_libc.umount2(_encode(target), flags), "umount2(%r, 0x%x)" % (target, flags))


def pivot_root(new_root, put_old):
    _check(_libc.syscall(_NR["pivot_root"], _encode(new_root), _encode(put_old)),
           "pivot_root(%r, %r)" % (new_root, put_old))


def sethostname(name):
    raw = _encode(name)
    _check(_libc.sethostname(raw, len(raw)), "sethostname(%r)" % name)


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5),
                  "prctl(%d, %d, %d)" % (option, arg2, arg3))


_SIG_SETMASK = 2
# The kernel's sigset_t is 64 bits; glibc's is 1024. Either way, all zero
# means no signal blocked.
_EMPTY_SIGSET = ctypes.create_string_buffer(128)


class _KernelSigaction(ctypes.Structure):
    # The kernel's struct sigaction as x86_64 lays it out. All zero means
    # SIG_DFL, no flags and an empty mask; aarch64's struct has no restorer,
    # and reads the same zeros the same way.
    _fields_ = [("handler", ctypes.c_void_p), ("flags", ctypes.c_ulong),
                ("restorer", ctypes.c_void_p), ("mask", ctypes.c_uint64)]


_DEFAULT_ACTION = _KernelSigaction()
_KERNEL_SIGSET_SIZE = 8
_LAST_SIGNAL = 64


def reset_signals():
    """Default disposition for every signal, real-time ones included, and none blocked.

    Ignored signals stay ignored across exec. Python ignores SIGPIPE and
    SIGXFSZ, so without this a program in the container would get EPIPE
    where it expects to die quietly (``yes | head``), as subprocess's
    ``restore_signals`` exists to prevent; whatever started the module may
    ignore more. The raw syscall, because glibc's wrappers refuse the
    real-time signals it keeps for itself (32 and 33).
    """
    _check(_libc.sigprocmask(_SIG_SETMASK, _EMPTY_SIGSET, None), "sigprocmask(SIG_SETMASK, {})")
    for signum in range(1, _LAST_SIGNAL + 1):
        if signum not in (SIGKILL, SIGSTOP):
            _libc.syscall(_NR["rt_sigaction"], signum, ctypes.byref(_DEFAULT_ACTION), None, _KERNEL_SIGSET_SIZE)


def setgroups(gids):
    array = (ctypes.c_uint * max(len(gids), 1))(*gids)
    _check(_libc.setgroups(len(gids), array), "setgroups(%r)" % (list(gids),))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capset(effective, permitted, inheritable):
    """Set this thread's capability sets from three 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    # Version 3 takes two 32-bit words per set: low capabilities first.
    data = (_CapData * 2)(
        _CapData(effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF),
        _CapData(effective >> 32, permitted >> 32, inheritable >> 32),
    )
    _check(_libc.syscall(_NR["capset"], ctypes.byref(header), data),
           "capset(effective=0x%x, permitted=0x%x, inheritable=0x%x)" % (effective, permitted, inheritable))


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dir_fd, path, flags, resolve, mode=0):
    """openat2(2): open ``path`` below ``dir_fd`` under ``resolve`` rules.

    Raises OSError with errno ENOSYS on kernels older than 5.6.
    """
    how = _OpenHow(flags, mode, resolve)
    return _check(_libc.syscall(_NR["openat2"], dir_fd, _encode(path), ctypes.byref(how), ctypes.sizeof(how)),
                  "openat2(%d, %r, 0x%x, resolve=0x%x)" % (dir_fd, path, flags, resolve))


_KEYCTL_JOIN_SESSION_KEYRING = 1


def join_new_session_keyring():
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL): leave the inherited session keyring for a new, empty one."""
    _check(_libc.syscall(_NR["keyctl"], _KEYCTL_JOIN_SESSION_KEYRING, None), "keyctl(JOIN_SESSION_KEYRING)")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(dir_fd, path, flags, attr_set, attr_clr=0):
    """mount_setattr(2): change the attributes of the mount at ``path`` (with AT_RECURSIVE, of all below).

    Raises OSError with errno ENOSYS on kernels older than 5.12.
    """
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    _check(_libc.syscall(_NR["mount_setattr"], dir_fd, _encode(path), flags, ctypes.byref(attr),
                         ctypes.sizeof(attr)),
           "mount_setattr(%d, %r, 0x%x, set=0x%x)" % (dir_fd, path, flags, attr_set))


_AF_INET = 2
_SOCK_DGRAM = 2
_SOCK_CLOEXEC = 0o2000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def set_loopback_up():
    """Bring ``lo`` up in this network namespace (a fresh one has it down)."""
    # struct ifreq: 16 bytes of interface name, then a union whose first
    # member for these two ioctls is the short ifr_flags.
    ifreq = ctypes.create_string_buffer(b"lo", 40)
    sock = _check(_libc.socket(_AF_INET, _SOCK_DGRAM | _SOCK_CLOEXEC, 0), "socket(AF_INET, SOCK_DGRAM)")
    try:
        _check(_libc.ioctl(sock, _SIOCGIFFLAGS, ifreq), "ioctl(lo, SIOCGIFFLAGS)")
        flags = ctypes.c_short.from_buffer(ifreq, 16)
        flags.value |= _IFF_UP
        _check(_libc.ioctl(sock, _SIOCSIFFLAGS, ifreq), "ioctl(lo, SIOCSIFFLAGS)")
    finally:
        os.close(sock)


class _StatFs(ctypes.Structure):
    # f_type is the first member of struct statfs on every Linux ABI; the
    # padding covers the rest of the structure (120 bytes on x86_64).
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 256)]


def statfs_type(path):
    """statfs(2) f_type of ``path``: the magic number of the filesystem it is on."""
    buf = _StatFs()
    _check(_libc.statfs(_encode(path), ctypes.byref(buf)), "statfs(%r)" % (path,))
    return buf.f_type & 0xFFFFFFFF


# bpf(2): the calls that load a cgroup device program and attach it to a
# cgroup (include/uapi/linux/bpf.h). Device programs exist since Linux 4.15.
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 0x2
BPF_INSTRUCTION_SIZE = 8
_BPF_OBJ_NAME_LEN = 16


class _BpfProgLoadAttr(ctypes.Structure):
    # union bpf_attr as BPF_PROG_LOAD reads it, up to expected_attach_type
    # (Linux 4.17); the kernel takes a shorter union from older callers.
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * _BPF_OBJ_NAME_LEN), ("prog_ifindex", ctypes.c_uint32),
                ("expected_attach_type", ctypes.c_uint32)]


class _BpfAttachAttr(ctypes.Structure):
    # BPF_PROG_ATTACH and BPF_PROG_DETACH.
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32)]


class _BpfQueryAttr(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_type", ctypes.c_uint32), ("query_flags", ctypes.c_uint32),
                ("attach_flags", ctypes.c_uint32), ("prog_ids", ctypes.c_uint64), ("prog_cnt", ctypes.c_uint32),
                ("_pad", ctypes.c_uint32)]


class _BpfGetIdAttr(ctypes.Structure):
    _fields_ = [("prog_id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


class BpfLoadError(OSError):
    """BPF_PROG_LOAD refused a program; ``log`` holds the verifier's explanation (may be empty)."""

    log = ""


def _bpf(command, attr, call):
    return _check(_libc.syscall(_NR["bpf"], command, ctypes.byref(attr), ctypes.sizeof(attr)), call)


def bpf_prog_load(prog_type, instructions, license, expected_attach_type=0, name="", log_size=0):
    """bpf(BPF_PROG_LOAD): load ``instructions`` (bytes, 8 per instruction); returns the program's fd.

    With ``log_size``, the verifier writes its log into a buffer of that
    size; a refusal then raises BpfLoadError carrying it. The fd is
    close-on-exec (the kernel makes it so).
    """
    program = ctypes.create_string_buffer(bytes(instructions), len(instructions))
    license_text = ctypes.create_string_buffer(_encode(license))
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = _BpfProgLoadAttr(prog_type=prog_type, insn_cnt=len(instructions) // BPF_INSTRUCTION_SIZE,
                            insns=ctypes.addressof(program), license=ctypes.addressof(license_text),
                            log_level=1 if log else 0, log_size=log_size,
                            log_buf=ctypes.addressof(log) if log else 0,
                            prog_name=_encode(name)[:_BPF_OBJ_NAME_LEN - 1],
                            expected_attach_type=expected_attach_type)
    result = _libc.syscall(_NR["bpf"], BPF_PROG_LOAD, ctypes.byref(attr), ctypes.sizeof(attr))
    if result == -1:
        err = ctypes.get_errno()
        error = BpfLoadError(err, "bpf(BPF_PROG_LOAD, type %d, %d instructions): %s"
                             % (prog_type, attr.insn_cnt, os.strerror(err)))
        error.log = log.value.decode("utf-8", "replace").strip() if log else ""
        raise error
    return result


def bpf_prog_attach(target_fd, prog_fd, attach_type, flags=0):
    """bpf(BPF_PROG_ATTACH): attach program ``prog_fd`` to ``target_fd`` (for cgroups, the directory's fd)."""
    _bpf(BPF_PROG_ATTACH, _BpfAttachAttr(target_fd, prog_fd, attach_type, flags),
         "bpf(BPF_PROG_ATTACH, target %d, program %d, type %d, flags 0x%x)" % (target_fd, prog_fd, attach_type, flags))


def bpf_prog_detach(target_fd, prog_fd, attach_type):
    """bpf(BPF_PROG_DETACH): detach program ``prog_fd`` from ``target_fd``."""
    _bpf(BPF_PROG_DETACH, _BpfAttachAttr(target_fd, prog_fd, attach_type, 0),
         "bpf(BPF_PROG_DETACH, target %d, program %d, type %d)" % (target_fd, prog_fd, attach_type))


def bpf_prog_query(target_fd, attach_type):
    """bpf(BPF_PROG_QUERY): ids of the programs of ``attach_type`` attached to ``target_fd`` itself."""
    capacity = 64
    while True:
        ids = (ctypes.c_uint32 * capacity)()
        attr = _BpfQueryAttr(target_fd=target_fd, attach_type=attach_type, prog_ids=ctypes.addressof(ids),
                             prog_cnt=capacity)
        result = _libc.syscall(_NR["bpf"], BPF_PROG_QUERY, ctypes.byref(attr), ctypes.sizeof(attr))
        if result == -1 and ctypes.get_errno() == errno.ENOSPC and attr.prog_cnt > capacity:
            capacity = attr.prog_cnt  # more were attached than fit: the kernel said how many
            continue
        _check(result, "bpf(BPF_PROG_QUERY, target %d, type %d)" % (target_fd, attach_type))
        return list(ids[:attr.prog_cnt])


def bpf_prog_get_fd_by_id(prog_id):
    """bpf(BPF_PROG_GET_FD_BY_ID): an fd of the loaded program ``prog_id``."""
    return _bpf(BPF_PROG_GET_FD_BY_ID, _BpfGetIdAttr(prog_id, 0, 0), "bpf(BPF_PROG_GET_FD_BY_ID, %d)" % prog_id)


# seccomp(2) (include/uapi/linux/seccomp.h) and its older prctl(2) spelling.
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_MODE_FILTER = 2
PR_SET_SECCOMP = 22
_ENOSYS = 38  # errno.ENOSYS, the same on every Linux architecture


class _SockFprog(ctypes.Structure):
    # struct sock_fprog: the number of instructions, then where they are.
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def seccomp_set_mode_filter(program, flags=0):
    """Install ``program``, a packed ``struct sock_filter`` array, as a seccomp filter of this thread.

    seccomp(2) where the kernel has it (3.17+), else prctl(PR_SET_SECCOMP).
    The kernel wants no_new_privs set, or CAP_SYS_ADMIN (EACCES otherwise).
    """
    fprog = _SockFprog(len(program) // 8, program)
    call = "seccomp(SECCOMP_SET_MODE_FILTER, 0x%x, <%d instructions>)" % (flags, fprog.len)
    result = _libc.syscall(ctypes.c_long(_NR["seccomp"]), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                           ctypes.c_long(flags), ctypes.byref(fprog))
    if result == -1 and ctypes.get_errno() == _ENOSYS and not flags:
        result = _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0)
        call = "prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, <%d instructions>)" % fprog.len
    _check(result, call)
