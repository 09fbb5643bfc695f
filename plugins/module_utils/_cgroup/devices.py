# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A device allowlist in the kernel's two forms: v1 devices.allow lines, and a v2 BPF program.

The rules are _devices.DeviceRule objects: each one allows, and whatever no
rule allows is refused. Both forms are built from ``kernel_rules``: type
``a`` split into ``c`` and ``b`` and rules with one key merged, so both
answer every request alike.

* v1 (legacy and hybrid hosts): ``write_v1_rules`` writes "a" to
  devices.deny (deny everything, forget earlier rules), then each rule in
  its own write to devices.allow: the kernel reads only the first rule of
  a write and drops the rest without an error.
* v2: cgroup2 has no devices files; a BPF_PROG_TYPE_CGROUP_DEVICE program
  attached to the cgroup's directory decides each open and mknod of a
  device node. ``device_filter_program`` assembles it (no compiler, no
  library), ``attach_device_filter`` loads it, attaches it to any cgroup2
  directory with BPF_F_ALLOW_MULTI and then detaches the program it
  replaces, so the cgroup is never left without one. On a hybrid host the
  drivers use v1 as runc does; the functions here still work on a cgroup2
  directory under /sys/fs/cgroup/unified, and the kernel enforces both
  there (a program's denial is final, then the v1 list is asked).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import struct
import sys

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.files import write_text
from ansible_collections.handmade.containers.plugins.module_utils._devices import (
    ACCESS_LETTERS,
    MAX_MAJOR,
    MAX_MINOR,
    TYPES,
    DeviceRule,
    merge_rules,
)

# --------------------------------------------------------------------------
# v1: devices.deny and devices.allow
# --------------------------------------------------------------------------


def v1_writes(rules):
    """The (file, text) writes that make ``rules`` a v1 devices cgroup's whole list, in order."""
    return [("devices.deny", "a")] + [("devices.allow", rule.line()) for rule in kernel_rules(rules)]


def write_v1_rules(directory, rules):
    """Make ``rules`` the only devices the processes of the v1 devices cgroup ``directory`` may use.

    The deny comes first: it drops the rules a previous call allowed, so
    calling again with fewer rules takes devices away. Between the two the
    processes inside may use no device; set the rules before the container's
    program starts.
    """
    for filename, text in v1_writes(rules):
        path = os.path.join(directory, filename)
        try:
            write_text(path, text)
        except (IOError, OSError) as exc:
            raise CgroupError("devices: the kernel refused %r in %s: %s%s" % (
                text, path, exc.strerror, _V1_HINTS.get(exc.errno, "")))


_V1_HINTS = {
    errno.EINVAL: " (a whole-list change such as 'a' is refused while the cgroup has child cgroups: remove them "
                  "first)",
    errno.EPERM: " (a cgroup may allow only what its parent allows: check devices.list of the cgroups above)",
}


def v1_devices_hierarchy(mounts, root):
    """{"devices": mount point} for the v1 devices hierarchy under ``root``, or {} when none is mounted.

    ``mounts`` is layout.parse_mountinfo's list.
    """
    prefix = root.rstrip("/") + "/"
    for mount in mounts:
        if (mount["fstype"] == "cgroup" and mount["mount_point"].startswith(prefix)
                and "devices" in mount["super_options"]):
            return {"devices": mount["mount_point"]}
    return {}


# --------------------------------------------------------------------------
# v2: a BPF_PROG_TYPE_CGROUP_DEVICE program
# --------------------------------------------------------------------------

# struct bpf_cgroup_dev_ctx (include/uapi/linux/bpf.h), the program's input
# at r1: u32 access_type (access << 16 | type), u32 major, u32 minor.
CTX_ACCESS_TYPE, CTX_MAJOR, CTX_MINOR = 0, 4, 8
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2
BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4
DEVICE_TYPE_BITS = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}
ACCESS_BITS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
ALL_ACCESS_BITS = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE

# The opcodes the program uses (include/uapi/linux/bpf_common.h, bpf.h):
# class | operation | source.
LDX_MEM_W = 0x61     # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
ALU32_AND_K = 0x54   # BPF_ALU | BPF_AND | BPF_K: dst = (u32)dst & imm
ALU32_RSH_K = 0x74   # BPF_ALU | BPF_RSH | BPF_K: dst = (u32)dst >> imm
ALU32_MOV_K = 0xb4   # BPF_ALU | BPF_MOV | BPF_K: dst = (u32)imm
JMP_JNE_K = 0x55     # BPF_JMP | BPF_JNE | BPF_K: if dst != imm: pc += off
JMP_JSET_K = 0x45    # BPF_JMP | BPF_JSET | BPF_K: if dst & imm: pc += off
JMP_EXIT = 0x95      # BPF_JMP | BPF_EXIT: return r0
OPCODE_NAMES = {LDX_MEM_W: "ldxw", ALU32_AND_K: "and32", ALU32_RSH_K: "rsh32", ALU32_MOV_K: "mov32",
                JMP_JNE_K: "jne", JMP_JSET_K: "jset", JMP_EXIT: "exit"}

# Registers: r0 the answer (1 allow, 0 deny), r1 the context; the program
# keeps the request's parts in r2 to r5.
R0, R1, R_TYPE, R_ACCESS, R_MAJOR, R_MINOR = 0, 1, 2, 3, 4, 5

PROGRAM_NAME = "handmade_dev"
LOG_SIZE = 1 << 20


def _insn(code, dst=0, src=0, off=0, imm=0):
    return (code, dst, src, off, imm)


def device_filter_program(rules):
    """The BPF program for ``rules``, as (opcode, dst, src, off, imm) tuples; see encode_program.

    It reads the request's type, access, major and minor into r2..r5, then
    tries each of ``kernel_rules`` in turn: a block of tests, each jumping
    past the block when the request does not fit, and "return 1" at its
    end. A request no block takes falls through to "return 0". Every block
    tests the type, so none is taken always and no instruction after it is
    unreachable (the verifier refuses a program with one).
    """
    program = [
        _insn(LDX_MEM_W, R_TYPE, R1, CTX_ACCESS_TYPE),
        _insn(ALU32_AND_K, R_TYPE, imm=0xFFFF),
        _insn(LDX_MEM_W, R_ACCESS, R1, CTX_ACCESS_TYPE),
        _insn(ALU32_RSH_K, R_ACCESS, imm=16),
        _insn(LDX_MEM_W, R_MAJOR, R1, CTX_MAJOR),
        _insn(LDX_MEM_W, R_MINOR, R1, CTX_MINOR),
    ]
    for rule in kernel_rules(rules):
        tests = [(JMP_JNE_K, R_TYPE, DEVICE_TYPE_BITS[rule.type])]
        refused_bits = ALL_ACCESS_BITS & ~sum(ACCESS_BITS[letter] for letter in rule.access)
        if refused_bits:
            # Any asked bit the rule does not give means "not this rule".
            tests.append((JMP_JSET_K, R_ACCESS, refused_bits))
        if rule.major is not None:
            tests.append((JMP_JNE_K, R_MAJOR, rule.major))
        if rule.minor is not None:
            tests.append((JMP_JNE_K, R_MINOR, rule.minor))
        for index, (code, register, imm) in enumerate(tests):
            # Past the remaining tests and the two instructions of "return 1".
            program.append(_insn(code, register, off=len(tests) - index - 1 + 2, imm=imm))
        program.extend(_return(1))
    program.extend(_return(0))
    return program


def _return(value):
    return [_insn(ALU32_MOV_K, R0, imm=value), _insn(JMP_EXIT)]


def encode_program(program):
    """The program as the kernel reads it: struct bpf_insn {u8 code; u8 dst:4, src:4; s16 off; s32 imm}."""
    little = sys.byteorder == "little"
    # The register nibbles are a C bitfield: dst in the low half on
    # little-endian machines, in the high half on big-endian ones.
    return b"".join(struct.pack("=BBhi", code, (src << 4 | dst) if little else (dst << 4 | src), off, imm)
                    for code, dst, src, off, imm in program)


def describe_program(program):
    """One line per instruction, for error messages and tests."""
    lines = []
    for index, (code, dst, src, off, imm) in enumerate(program):
        name = OPCODE_NAMES.get(code, "op 0x%02x" % code)
        if code == LDX_MEM_W:
            lines.append("%d: %s r%d, [r%d%+d]" % (index, name, dst, src, off))
        elif code in (JMP_JNE_K, JMP_JSET_K):
            lines.append("%d: %s r%d, %#x, goto %d" % (index, name, dst, imm, index + 1 + off))
        elif code == JMP_EXIT:
            lines.append("%d: exit" % index)
        else:
            lines.append("%d: %s r%d, %#x" % (index, name, dst, imm))
    return lines


def load_device_filter(rules):
    """Load the program for ``rules`` into the kernel; returns its fd (close it once attached)."""
    return _load(device_filter_program(rules), rules)


def _load(program, rules):
    code = encode_program(program)
    try:
        # Without a log first: the verifier's log costs time, and a log
        # buffer it overfills turns success into ENOSPC.
        return sys_.bpf_prog_load(sys_.BPF_PROG_TYPE_CGROUP_DEVICE, code, "GPL",
                                  expected_attach_type=sys_.BPF_CGROUP_DEVICE, name=PROGRAM_NAME)
    except OSError as exc:
        first = exc
    try:
        # Again with the log, so the error can say why.
        return sys_.bpf_prog_load(sys_.BPF_PROG_TYPE_CGROUP_DEVICE, code, "GPL",
                                  expected_attach_type=sys_.BPF_CGROUP_DEVICE, name=PROGRAM_NAME,
                                  log_size=LOG_SIZE)
    except OSError as exc:
        raise _load_error(first, getattr(exc, "log", ""), program, rules)


def _load_error(exc, log, program, rules):
    if isinstance(exc, sys_.UnsupportedArchitecture):
        return CgroupError("devices: %s" % exc.strerror)
    if exc.errno in (errno.ENOSYS, errno.EPERM, errno.EINVAL) and not log:
        # No bpf(2) at all, no cgroup device programs in this kernel, or
        # not allowed to load one (no CAP_SYS_ADMIN, lockdown, a user
        # namespace): the kernel says which only by this errno.
        return CgroupError(
            "devices cannot be limited on this host: the kernel refused to load a cgroup device program "
            "(bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE): %s). Limiting devices on cgroup v2 needs a kernel "
            "built with CONFIG_CGROUP_BPF=y (and CONFIG_BPF_SYSCALL=y) and root with CAP_SYS_ADMIN outside any "
            "user namespace: boot such a kernel (every major distribution's is), run the task as root on the "
            "host itself, or use a host with the cgroup v1 devices controller" % os.strerror(exc.errno))
    return CgroupError("devices: the kernel's verifier refused the device program for %d rules (%s): %s\n"
                       "program:\n%s\nverifier log:\n%s" % (
                           len(kernel_rules(rules)), ", ".join(rule.line() for rule in kernel_rules(rules)),
                           os.strerror(exc.errno), "\n".join(describe_program(program)),
                           log or "(empty)"))


def attach_device_filter(directory, rules):
    """Make ``rules`` the only devices the processes of cgroup2 directory ``directory`` may use.

    Loads the program, attaches it with BPF_F_ALLOW_MULTI (so a program the
    cgroups above hold keeps working, and they may hold one), then detaches
    every other device program of this directory: those are earlier calls'
    rules, and with several attached, each of them must allow. Returns the
    number of instructions.
    """
    program = device_filter_program(rules)
    try:
        cgroup_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise CgroupError("devices: cannot open cgroup directory %s: %s: create the cgroup first"
                          % (directory, exc.strerror))
    try:
        # Loading first: on a host without cgroup BPF its error is the one
        # that says what to do.
        prog_fd = _load(program, rules)
        try:
            previous = _attached_programs(cgroup_fd, directory)
            try:
                sys_.bpf_prog_attach(cgroup_fd, prog_fd, sys_.BPF_CGROUP_DEVICE, sys_.BPF_F_ALLOW_MULTI)
            except OSError as exc:
                hint = (": a cgroup above holds a device program attached without BPF_F_ALLOW_MULTI, which "
                        "forbids programs below it" if exc.errno == errno.EPERM else "")
                raise CgroupError("devices: cannot attach the device program to %s: %s%s"
                                  % (directory, exc.strerror, hint))
        finally:
            # The attached program lives as long as the cgroup holds it.
            os.close(prog_fd)
        for prog_id in previous:
            _detach(cgroup_fd, prog_id, directory)
    finally:
        os.close(cgroup_fd)
    return len(program)


def _attached_programs(cgroup_fd, directory):
    try:
        return sys_.bpf_prog_query(cgroup_fd, sys_.BPF_CGROUP_DEVICE)
    except OSError as exc:
        # Without the list the earlier programs would stay attached, and
        # each of them must allow: new rules could only ever take away.
        raise CgroupError("devices: cannot list the device programs attached to %s (bpf BPF_PROG_QUERY needs "
                          "CAP_NET_ADMIN): %s" % (directory, exc.strerror))


def _detach(cgroup_fd, prog_id, directory):
    try:
        prog_fd = sys_.bpf_prog_get_fd_by_id(prog_id)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return  # unloaded meanwhile: nothing holds it any more
        raise CgroupError("devices: cannot open the earlier device program %d of %s: %s"
                          % (prog_id, directory, exc.strerror))
    try:
        sys_.bpf_prog_detach(cgroup_fd, prog_fd, sys_.BPF_CGROUP_DEVICE)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise CgroupError("devices: cannot detach the earlier device program %d from %s: %s"
                              % (prog_id, directory, exc.strerror))
    finally:
        os.close(prog_fd)


def attached_device_programs(directory):
    """Ids of the device programs attached to cgroup2 directory ``directory`` itself."""
    cgroup_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return sys_.bpf_prog_query(cgroup_fd, sys_.BPF_CGROUP_DEVICE)
    finally:
        os.close(cgroup_fd)


# --------------------------------------------------------------------------
# Both
# --------------------------------------------------------------------------

def kernel_rules(rules):
    """``rules`` as both kernel forms are built from: checked, type ``a`` split into c and b, merged.

    v1 reads "a" in devices.allow as "allow everything" whatever access
    follows, so "a *:* m" would open every device there; as "c *:* m" and
    "b *:* m" it means the same in v1 and v2.
    """
    split = []
    for rule in _checked(rules):
        if rule.type == "a":
            split.extend(DeviceRule(kind, None, None, rule.access) for kind in ("c", "b"))
        else:
            split.append(rule)
    return merge_rules(split)


def _checked(rules):
    """``rules`` as a list, after checking each is a rule the kernel can hold (they come from _devices)."""
    rules = list(rules)
    for rule in rules:
        whole = rule.type == "a" and rule.major is None and rule.minor is None
        if (rule.type not in TYPES or (rule.type == "a" and not whole)
                or not _in_range(rule.major, MAX_MAJOR) or not _in_range(rule.minor, MAX_MINOR)
                or not rule.access or any(letter not in ACCESS_LETTERS for letter in rule.access)):
            raise CgroupError("devices: %r is not a device rule the kernel can hold: type c, b or a (a with '*' "
                              "numbers), major 0-%d or '*', minor 0-%d or '*', access of r, w and m"
                              % (rule, MAX_MAJOR, MAX_MINOR))
    return rules


def _in_range(number, maximum):
    return number is None or (isinstance(number, int) and not isinstance(number, bool) and 0 <= number <= maximum)
