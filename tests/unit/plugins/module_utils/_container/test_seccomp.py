# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The seccomp compiler: profile checks, rule selection, and the BPF it emits.

The programs are run here by a small classic-BPF interpreter against fake
seccomp_data, so what a syscall gets is checked without a kernel; the
integration tests (tests/integration/test_seccomp.py) install the same
programs for real.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import struct

import pytest

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls
from ansible_collections.handmade.containers.plugins.module_utils._capabilities import (
    DEFAULT_CAPABILITIES,
    capability_mask,
)
from ansible_collections.handmade.containers.plugins.module_utils._container import seccomp
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.seccomp_default import DEFAULT_PROFILE
from ansible_collections.handmade.containers.plugins.module_utils._container.seccomp_syscalls import ARCHES, table

X86_64 = table("x86_64")
AARCH64 = table("aarch64")

AUDIT_ARCH_I386 = 0x40000003
CLONE_THREAD_FLAGS = 0x003D0F00  # what glibc's pthread_create passes to clone
CLONE_NEWUSER = 0x10000000
AF_INET = 2
AF_VSOCK = 40
EPERM_RET = seccomp.RET_ERRNO | 1
ENOSYS_RET = seccomp.RET_ERRNO | 38
KERNEL = (6, 18)


# ---------------------------------------------------------------------------
# A classic BPF interpreter, as much of it as seccomp filters here use.
# ---------------------------------------------------------------------------

def run_bpf(program, nr, arch="x86_64", args=(), audit_arch=None):
    """The filter's return value for one syscall, read from a fake ``struct seccomp_data``."""
    if audit_arch is None:
        audit_arch = seccomp.AUDIT_ARCH[arch]
    args = tuple(args) + (0,) * (6 - len(args))
    data = struct.pack("<iIQ6Q", nr, audit_arch, 0x401000, *args)
    accumulator = 0
    pc = 0
    steps = 0
    while True:
        code, jt, jf, k = program[pc]
        steps += 1
        assert steps <= len(program), "the program loops"
        pc += 1
        if code == seccomp.BPF_LD_W_ABS:
            assert k % 4 == 0 and k + 4 <= len(data), "load outside seccomp_data at %d" % k
            accumulator = struct.unpack_from("<I", data, k)[0]
        elif code == seccomp.BPF_ALU_AND_K:
            accumulator &= k
        elif code == seccomp.BPF_JMP_JA:
            pc += k
        elif code in (seccomp.BPF_JMP_JEQ_K, seccomp.BPF_JMP_JGT_K, seccomp.BPF_JMP_JGE_K,
                      seccomp.BPF_JMP_JSET_K):
            taken = {
                seccomp.BPF_JMP_JEQ_K: accumulator == k,
                seccomp.BPF_JMP_JGT_K: accumulator > k,
                seccomp.BPF_JMP_JGE_K: accumulator >= k,
                seccomp.BPF_JMP_JSET_K: accumulator & k != 0,
            }[code]
            pc += jt if taken else jf
        elif code == seccomp.BPF_RET_K:
            return k
        else:
            raise AssertionError("unexpected instruction 0x%x at %d" % (code, pc - 1))
        assert pc < len(program), "jumped past the end"


def default_filter(capabilities=DEFAULT_CAPABILITIES, arch="x86_64"):
    return seccomp.compile_filter(DEFAULT_PROFILE, capabilities, arch=arch, kernel=KERNEL)


@pytest.fixture(scope="module")
def x86_filter():
    return default_filter()


def nr(name, arch="x86_64"):
    return table(arch)[name]


# ---------------------------------------------------------------------------
# The syscall table.
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, x86_64, aarch64", [
    ("read", 0, 63), ("write", 1, 64), ("openat", 257, 56), ("clone", 56, 220), ("clone3", 435, 435),
    ("unshare", 272, 97), ("keyctl", 250, 219), ("socket", 41, 198), ("personality", 135, 92),
    ("seccomp", 317, 277), ("mount", 165, 40), ("pivot_root", 155, 41), ("userfaultfd", 323, 282),
    ("execve", 59, 221), ("exit_group", 231, 94), ("cachestat", 451, 451), ("fchmodat2", 452, 452),
    ("futex_wake", 454, 454), ("futex_wait", 455, 455), ("futex_requeue", 456, 456), ("statmount", 457, 457),
    ("listmount", 458, 458), ("lsm_get_self_attr", 459, 459), ("lsm_set_self_attr", 460, 460),
    ("lsm_list_modules", 461, 461), ("mseal", 462, 462), ("setxattrat", 463, 463), ("removexattrat", 466, 466),
])
def test_well_known_numbers(name, x86_64, aarch64):
    assert X86_64[name] == x86_64
    assert AARCH64[name] == aarch64


def test_architecture_specific_calls():
    assert X86_64["map_shadow_stack"] == 453 and X86_64["uretprobe"] == 335 and X86_64["arch_prctl"] == 158
    # The generic table has no open/fork/stat: aarch64 programs use openat, clone, fstatat.
    for name in ("open", "fork", "stat", "arch_prctl", "uretprobe", "chown32"):
        assert name not in AARCH64
    assert AARCH64["renameat"] == 38 and AARCH64["getrlimit"] == 163 and AARCH64["memfd_secret"] == 447


def test_the_tables_have_one_name_per_number():
    assert ARCHES == ("x86_64", "aarch64")
    for arch in ARCHES:
        numbers = table(arch).values()
        assert len(set(numbers)) == len(numbers)
    assert table("x86_64") is X86_64  # built once per process


def test_install_calls_seccomp_by_the_tables_number():
    for arch in ARCHES:
        assert _syscalls.SYSCALL_NUMBERS[arch]["seccomp"] == table(arch)["seccomp"]


# ---------------------------------------------------------------------------
# The default profile: Docker's data, in Docker's shape.
# ---------------------------------------------------------------------------

def test_default_profile_is_docker_shaped_and_passes_its_own_check():
    seccomp.check_profile(DEFAULT_PROFILE, "default")
    assert DEFAULT_PROFILE["defaultAction"] == "SCMP_ACT_ERRNO" and DEFAULT_PROFILE["defaultErrnoRet"] == 1
    assert json.loads(json.dumps(DEFAULT_PROFILE))["syscalls"][0]["names"][0] == "accept"
    allowed = DEFAULT_PROFILE["syscalls"][0]["names"]
    assert len(allowed) == len(set(allowed))
    for refused in ("add_key", "keyctl", "request_key", "userfaultfd", "io_uring_setup", "kexec_load",
                    "open_by_handle_at", "socket", "clone", "clone3", "unshare", "mount", "ptrace"):
        assert refused not in allowed


def test_default_profile_rules_that_matter():
    rules = DEFAULT_PROFILE["syscalls"]
    clone_rule = [rule for rule in rules if rule["names"] == ("clone",) and "arches" not in rule.get("includes", {})]
    assert clone_rule[0]["args"][0] == {"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}
    assert clone_rule[0]["excludes"]["caps"] == ("CAP_SYS_ADMIN",)
    clone3_rule = [rule for rule in rules if rule["names"] == ("clone3",)][0]
    assert clone3_rule["errnoRet"] == 38 and clone3_rule["excludes"] == {"caps": ("CAP_SYS_ADMIN",)}
    socket_rule = [rule for rule in rules if rule["names"] == ("socket",)][0]
    assert socket_rule["args"] == ({"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"},)
    personalities = [rule["args"][0]["value"] for rule in rules if rule["names"] == ("personality",)]
    assert personalities == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    by_cap = {}
    for rule in rules:
        for cap in rule.get("includes", {}).get("caps", ()):
            by_cap.setdefault(cap, set()).update(rule["names"])
    assert {"unshare", "mount", "setns", "bpf", "clone3", "umount2"} <= by_cap["CAP_SYS_ADMIN"]
    assert by_cap["CAP_SYS_CHROOT"] == {"chroot"}
    assert {"ptrace", "kcmp", "pidfd_getfd"} <= by_cap["CAP_SYS_PTRACE"]
    assert by_cap["CAP_SYS_MODULE"] == {"init_module", "finit_module", "delete_module"}
    assert by_cap["CAP_BPF"] == {"bpf"} and by_cap["CAP_PERFMON"] == {"perf_event_open"}
    for cap in ("CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_RAWIO", "CAP_SYS_TIME",
                "CAP_SYS_TTY_CONFIG", "CAP_SYSLOG", "CAP_DAC_READ_SEARCH"):
        assert cap in by_cap


# ---------------------------------------------------------------------------
# The program's shape.
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_architecture_check_comes_first(arch):
    program = default_filter(arch=arch)
    assert program[0] == (seccomp.BPF_LD_W_ABS, 0, 0, seccomp.DATA_ARCH)
    assert program[1] == (seccomp.BPF_JMP_JEQ_K, 1, 0, seccomp.AUDIT_ARCH[arch])
    assert program[2] == (seccomp.BPF_RET_K, 0, 0, seccomp.RET_KILL_PROCESS)
    assert program[3] == (seccomp.BPF_LD_W_ABS, 0, 0, seccomp.DATA_NR)


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_jump_fits_and_lands_inside(arch):
    for capabilities in (DEFAULT_CAPABILITIES, ["SYS_ADMIN", "SYS_PTRACE"] + list(DEFAULT_CAPABILITIES)):
        program = default_filter(capabilities, arch)
        assert len(program) <= seccomp.BPF_MAXINSNS
        assert program[-1][0] == seccomp.BPF_RET_K
        for pc, (code, jt, jf, k) in enumerate(program):
            if code == seccomp.BPF_JMP_JA:
                assert pc + 1 + k < len(program)
            elif code & 0x07 == 0x05:  # conditional jumps
                assert 0 <= jt <= 255 and 0 <= jf <= 255
                assert pc + 1 + max(jt, jf) < len(program)


def test_a_long_subtree_is_reached_through_ja():
    # One syscall with many argument rules makes a block longer than an
    # 8-bit jump can cross.
    many = [{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": request, "op": "SCMP_CMP_EQ"}]} for request in range(80)]
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": many + [{"names": ["read", "write", "openat"],
                                                                       "action": "SCMP_ACT_ALLOW"}]}
    program = seccomp.compile_filter(profile, [], arch="x86_64", kernel=KERNEL)
    assert any(code == seccomp.BPF_JMP_JA for code, _jt, _jf, _k in program)
    assert all(jt <= 255 and jf <= 255 for _code, jt, jf, _k in program)
    assert run_bpf(program, nr("ioctl"), args=(3, 79)) == seccomp.RET_ALLOW
    assert run_bpf(program, nr("ioctl"), args=(3, 80)) == EPERM_RET
    assert run_bpf(program, nr("openat")) == seccomp.RET_ALLOW
    assert run_bpf(program, nr("read")) == seccomp.RET_ALLOW


def test_pack_makes_struct_sock_filter():
    packed = seccomp.pack([(seccomp.BPF_RET_K, 0, 0, seccomp.RET_ALLOW), (0x15, 1, 2, 3)])
    assert packed == struct.pack("=HBBIHBBI", 6, 0, 0, 0x7FFF0000, 0x15, 1, 2, 3)


# ---------------------------------------------------------------------------
# What the default filter does, run in the interpreter.
# ---------------------------------------------------------------------------

def test_read_write_allowed(x86_filter):
    for name in ("read", "write", "openat", "execve", "exit_group", "futex", "mmap", "rt_sigaction", "wait4"):
        assert run_bpf(x86_filter, nr(name)) == seccomp.RET_ALLOW, name


def test_refused_calls_get_eperm(x86_filter):
    for name in ("keyctl", "add_key", "request_key", "userfaultfd", "mount", "unshare", "setns", "kexec_load",
                 "init_module", "bpf", "reboot", "pivot_root", "io_uring_setup", "open_by_handle_at", "lsm_set_self_attr"):
        assert run_bpf(x86_filter, nr(name)) == EPERM_RET, name


def test_clone3_gets_enosys_so_glibc_falls_back(x86_filter):
    assert run_bpf(x86_filter, nr("clone3")) == ENOSYS_RET


def test_clone_with_namespace_flags_is_refused(x86_filter):
    assert run_bpf(x86_filter, nr("clone"), args=(CLONE_NEWUSER | 17,)) == EPERM_RET
    assert run_bpf(x86_filter, nr("clone"), args=(0x20000000 | 17,)) == EPERM_RET  # CLONE_NEWPID


def test_clone_for_threads_and_fork_is_allowed(x86_filter):
    assert run_bpf(x86_filter, nr("clone"), args=(CLONE_THREAD_FLAGS,)) == seccomp.RET_ALLOW
    assert run_bpf(x86_filter, nr("clone"), args=(0x01200011,)) == seccomp.RET_ALLOW  # glibc's fork()
    # The mask checks the low 32 bits only, as Docker's rule does.
    assert run_bpf(x86_filter, nr("clone"), args=((1 << 40) | 17,)) == seccomp.RET_ALLOW


def test_unshare_needs_cap_sys_admin():
    without = default_filter()
    with_admin = default_filter(list(DEFAULT_CAPABILITIES) + ["SYS_ADMIN"])
    assert run_bpf(without, nr("unshare"), args=(CLONE_NEWUSER,)) == EPERM_RET
    assert run_bpf(with_admin, nr("unshare"), args=(CLONE_NEWUSER,)) == seccomp.RET_ALLOW
    # With CAP_SYS_ADMIN clone and clone3 are not restricted either.
    assert run_bpf(with_admin, nr("clone"), args=(CLONE_NEWUSER,)) == seccomp.RET_ALLOW
    assert run_bpf(with_admin, nr("clone3")) == seccomp.RET_ALLOW
    assert run_bpf(with_admin, nr("mount")) == seccomp.RET_ALLOW


def test_socket_families(x86_filter):
    assert run_bpf(x86_filter, nr("socket"), args=(AF_INET, 1, 0)) == seccomp.RET_ALLOW
    assert run_bpf(x86_filter, nr("socket"), args=(1, 1, 0)) == seccomp.RET_ALLOW  # AF_UNIX
    assert run_bpf(x86_filter, nr("socket"), args=(AF_VSOCK, 1, 0)) == EPERM_RET
    assert run_bpf(x86_filter, nr("socket"), args=(AF_VSOCK + 1, 1, 0)) == seccomp.RET_ALLOW


def test_personality_values(x86_filter):
    for value in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert run_bpf(x86_filter, nr("personality"), args=(value,)) == seccomp.RET_ALLOW
    assert run_bpf(x86_filter, nr("personality"), args=(0x0040000,)) == EPERM_RET  # ADDR_NO_RANDOMIZE
    assert run_bpf(x86_filter, nr("personality"), args=(1 << 32,)) == EPERM_RET


def test_capability_groups():
    cases = {"SYS_CHROOT": "chroot", "SYS_PTRACE": "ptrace", "SYS_MODULE": "init_module", "SYS_BOOT": "reboot",
             "SYS_NICE": "mbind", "SYS_PACCT": "acct", "SYS_RAWIO": "iopl", "SYS_TIME": "settimeofday",
             "SYS_TTY_CONFIG": "vhangup", "SYSLOG": "syslog", "BPF": "bpf", "PERFMON": "perf_event_open",
             "DAC_READ_SEARCH": "open_by_handle_at"}
    nothing = seccomp.compile_filter(DEFAULT_PROFILE, [], arch="x86_64", kernel=KERNEL)
    for cap, name in cases.items():
        program = seccomp.compile_filter(DEFAULT_PROFILE, [cap], arch="x86_64", kernel=KERNEL)
        assert run_bpf(program, nr(name)) == seccomp.RET_ALLOW, cap
        if name != "ptrace":  # allowed without the cap from kernel 4.8 on
            assert run_bpf(nothing, nr(name)) == EPERM_RET, cap
    # Docker's 14 keep CAP_SYS_CHROOT, so chroot is allowed by default.
    assert run_bpf(default_filter(), nr("chroot")) == seccomp.RET_ALLOW


def test_capabilities_as_mask_or_names_agree():
    assert default_filter(capability_mask(DEFAULT_CAPABILITIES)) == default_filter(DEFAULT_CAPABILITIES)
    assert default_filter(["CAP_" + name.lower() for name in DEFAULT_CAPABILITIES]) == default_filter()


def test_min_kernel_gates_ptrace():
    old = seccomp.compile_filter(DEFAULT_PROFILE, [], arch="x86_64", kernel="4.4.0-210-generic")
    new = seccomp.compile_filter(DEFAULT_PROFILE, [], arch="x86_64", kernel="4.8.0")
    assert run_bpf(old, nr("ptrace")) == EPERM_RET
    assert run_bpf(new, nr("ptrace")) == seccomp.RET_ALLOW


def test_wrong_architecture_is_killed(x86_filter):
    assert run_bpf(x86_filter, 20, audit_arch=AUDIT_ARCH_I386) == seccomp.RET_KILL_PROCESS
    assert run_bpf(x86_filter, 0, audit_arch=seccomp.AUDIT_ARCH["aarch64"]) == seccomp.RET_KILL_PROCESS


def test_x32_calls_are_refused(x86_filter):
    assert run_bpf(x86_filter, seccomp.X32_SYSCALL_BIT | nr("read")) == ENOSYS_RET
    assert run_bpf(x86_filter, seccomp.X32_SYSCALL_BIT | 512) == ENOSYS_RET


def test_syscalls_newer_than_the_profile_get_enosys(x86_filter):
    assert run_bpf(x86_filter, nr("removexattrat") + 1) == ENOSYS_RET  # open_tree_attr, 6.15
    assert run_bpf(x86_filter, 1000) == ENOSYS_RET
    assert run_bpf(x86_filter, nr("mseal")) == seccomp.RET_ALLOW
    # Unnamed numbers inside the known range get the default action.
    assert run_bpf(x86_filter, nr("tuxcall")) == EPERM_RET


def test_aarch64_filter():
    program = default_filter(arch="aarch64")
    assert run_bpf(program, nr("openat", "aarch64"), "aarch64") == seccomp.RET_ALLOW
    assert run_bpf(program, nr("keyctl", "aarch64"), "aarch64") == EPERM_RET
    assert run_bpf(program, nr("clone3", "aarch64"), "aarch64") == ENOSYS_RET
    assert run_bpf(program, nr("clone", "aarch64"), "aarch64", args=(CLONE_NEWUSER,)) == EPERM_RET
    assert run_bpf(program, nr("clone", "aarch64"), "aarch64", args=(CLONE_THREAD_FLAGS,)) == seccomp.RET_ALLOW
    assert run_bpf(program, nr("socket", "aarch64"), "aarch64", args=(AF_VSOCK,)) == EPERM_RET
    assert run_bpf(program, 17, "aarch64", audit_arch=seccomp.AUDIT_ARCH["x86_64"]) == seccomp.RET_KILL_PROCESS
    # No x32 check on aarch64: a high number is just newer than the profile.
    assert run_bpf(program, seccomp.X32_SYSCALL_BIT, "aarch64") == ENOSYS_RET


def test_the_filter_agrees_with_the_rule_table_for_every_number():
    """Every number from 0 past the highest gets what syscall_rules says (blocks aside)."""
    program = default_filter()
    default_ret, outcomes, highest = seccomp.syscall_rules(DEFAULT_PROFILE, DEFAULT_CAPABILITIES, "x86_64", KERNEL)
    for number in range(highest + 20):
        expected = outcomes.get(number, default_ret if number <= highest else ENOSYS_RET)
        if isinstance(expected, tuple):
            continue
        assert run_bpf(program, number) == expected, number


# ---------------------------------------------------------------------------
# Rule selection and comparisons, with small profiles.
# ---------------------------------------------------------------------------

def small(rules, default="SCMP_ACT_ERRNO", **extra):
    profile = {"defaultAction": default, "syscalls": rules}
    profile.update(extra)
    seccomp.check_profile(profile)
    return seccomp.compile_filter(profile, ["CHOWN"], arch="x86_64", kernel=KERNEL)


def test_includes_and_excludes_by_arch_and_cap():
    program = small([
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        {"names": ["write"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
        {"names": ["close"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        {"names": ["dup"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_CHOWN", "CAP_KILL"]}},
        {"names": ["dup2"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_CHOWN"]}},
        {"names": ["dup3"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_KILL"]}},
        {"names": ["pipe"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_CHOWN"]}},
        {"names": ["pipe2"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "7.0"}},
        {"names": ["chown32", "fchown"], "action": "SCMP_ACT_ALLOW"},
    ])
    verdicts = dict((name, run_bpf(program, nr(name)) == seccomp.RET_ALLOW)
                    for name in ("read", "write", "close", "dup", "dup2", "dup3", "pipe", "pipe2", "fchown"))
    assert verdicts == {"read": False, "write": True, "close": False, "dup": False, "dup2": True, "dup3": True,
                        "pipe": False, "pipe2": True, "fchown": True}


def test_errno_values():
    program = small([
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["write"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"},
    ], defaultErrnoRet=22)
    assert run_bpf(program, nr("read")) == seccomp.RET_ERRNO | 13
    assert run_bpf(program, nr("write")) == seccomp.RET_ERRNO | 22  # no errnoRet: the profile's default
    assert run_bpf(program, nr("close")) == seccomp.RET_ERRNO | 22  # not named: the default action
    assert run_bpf(program, nr("exit_group") + 1) == ENOSYS_RET  # newer than the profile
    plain = small([{"names": ["write"], "action": "SCMP_ACT_ERRNO"}], default="SCMP_ACT_ALLOW")
    assert run_bpf(plain, nr("write")) == EPERM_RET  # neither given: EPERM
    assert run_bpf(plain, nr("close")) == seccomp.RET_ALLOW
    assert run_bpf(plain, 1000) == seccomp.RET_ALLOW  # an allowing default adds no ENOSYS tail


@pytest.mark.parametrize("action, expected", [
    ("SCMP_ACT_KILL", seccomp.RET_KILL_THREAD), ("SCMP_ACT_KILL_THREAD", seccomp.RET_KILL_THREAD),
    ("SCMP_ACT_KILL_PROCESS", seccomp.RET_KILL_PROCESS), ("SCMP_ACT_TRAP", seccomp.RET_TRAP),
    ("SCMP_ACT_LOG", seccomp.RET_LOG), ("SCMP_ACT_ALLOW", seccomp.RET_ALLOW),
])
def test_actions(action, expected):
    assert run_bpf(small([{"names": ["read"], "action": action}]), nr("read")) == expected


def test_trace_carries_errno_ret_as_its_message():
    program = small([{"names": ["read"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}])
    assert run_bpf(program, nr("read")) == seccomp.RET_TRACE | 7


def run_arg(op, value, arg, value_two=0):
    program = small([{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 2, "value": value, "valueTwo": value_two, "op": op}]}])
    return run_bpf(program, nr("ioctl"), args=(0, 0, arg)) == seccomp.RET_ALLOW


BIG = 0x123456789


@pytest.mark.parametrize("op, value, holds", [
    ("SCMP_CMP_EQ", BIG, lambda a, v: a == v), ("SCMP_CMP_NE", BIG, lambda a, v: a != v),
    ("SCMP_CMP_LT", BIG, lambda a, v: a < v), ("SCMP_CMP_LE", BIG, lambda a, v: a <= v),
    ("SCMP_CMP_GT", BIG, lambda a, v: a > v), ("SCMP_CMP_GE", BIG, lambda a, v: a >= v),
    ("SCMP_CMP_EQ", 5, lambda a, v: a == v), ("SCMP_CMP_LT", 5, lambda a, v: a < v),
    ("SCMP_CMP_GT", 0xFFFFFFFF, lambda a, v: a > v),
])
def test_64_bit_comparisons(op, value, holds):
    # Each half below, at and above the value's, so both words decide somewhere.
    samples = set()
    for high in (value >> 32) - 1, value >> 32, (value >> 32) + 1:
        for low in (value & 0xFFFFFFFF) - 1, value & 0xFFFFFFFF, (value & 0xFFFFFFFF) + 1:
            if 0 <= high <= 0xFFFFFFFF and 0 <= low <= 0xFFFFFFFF:
                samples.add(high << 32 | low)
    samples.update((0, 0xFFFFFFFFFFFFFFFF))
    for arg in sorted(samples):
        assert run_arg(op, value, arg) == holds(arg, value), (op, hex(value), hex(arg))


def test_masked_eq():
    mask = 0xF0000000F0
    for arg in (0, 0x10, 0xF0, 0x1000000000, 0x10000000F0, 0x3000000030, 0xFFFFFFFFFFFFFF0F):
        assert run_arg("SCMP_CMP_MASKED_EQ", mask, arg, value_two=0x1000000010) == (arg & mask == 0x1000000010)


def test_conditions_on_distinct_args_are_anded():
    program = small([{"names": ["mmap"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 2, "value": 4, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 0},
        {"index": 3, "value": 0x20, "op": "SCMP_CMP_EQ"}]}])
    assert run_bpf(program, nr("mmap"), args=(0, 4096, 3, 0x20)) == seccomp.RET_ALLOW
    assert run_bpf(program, nr("mmap"), args=(0, 4096, 7, 0x20)) == EPERM_RET
    assert run_bpf(program, nr("mmap"), args=(0, 4096, 3, 0x22)) == EPERM_RET


def test_conditions_on_the_same_arg_are_ored_as_runc_does():
    program = small([{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}])
    assert [run_bpf(program, nr("socket"), args=(family,)) for family in (1, 2, 3)] == [
        seccomp.RET_ALLOW, seccomp.RET_ALLOW, EPERM_RET]


def test_argument_rules_come_before_the_unconditional_one():
    program = small([
        {"names": ["kill"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3, "args": [
            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
    ])
    assert run_bpf(program, nr("kill"), args=(1, 9)) == seccomp.RET_ERRNO | 3
    assert run_bpf(program, nr("kill"), args=(42, 9)) == seccomp.RET_ALLOW


def test_legacy_name_field():
    program = small([{"name": "getpid", "action": "SCMP_ACT_ALLOW"}])
    assert run_bpf(program, nr("getpid")) == seccomp.RET_ALLOW


def test_unsupported_architecture_says_what_to_do():
    with pytest.raises(ContainerError) as caught:
        seccomp.compile_filter(DEFAULT_PROFILE, [], arch="riscv64")
    assert "seccomp" in str(caught.value) and "unconfined" in str(caught.value)


# ---------------------------------------------------------------------------
# load_profile: the option's values and bad files.
# ---------------------------------------------------------------------------

def test_option_values():
    assert seccomp.load_profile(None) is DEFAULT_PROFILE
    assert seccomp.load_profile("default") is DEFAULT_PROFILE
    assert seccomp.load_profile("unconfined") is None
    assert seccomp.prepare("unconfined", DEFAULT_CAPABILITIES) is None
    packed = seccomp.prepare("default", DEFAULT_CAPABILITIES, arch="x86_64", kernel=KERNEL)
    assert packed == seccomp.pack(default_filter())


def test_a_profile_file_loads(tmp_path):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(DEFAULT_PROFILE))
    profile = seccomp.load_profile(str(path))
    assert seccomp.compile_filter(profile, DEFAULT_CAPABILITIES, arch="x86_64", kernel=KERNEL) == default_filter()


def load_error(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ContainerError) as caught:
        seccomp.load_profile(str(path))
    message = str(caught.value)
    assert message.startswith("seccomp: ") and str(path) in message
    return message


def test_missing_file(tmp_path):
    with pytest.raises(ContainerError) as caught:
        seccomp.load_profile(str(tmp_path / "nowhere.json"))
    message = str(caught.value)
    assert "seccomp" in message and "nowhere.json" in message and "No such file" in message
    assert "default" in message and "unconfined" in message


def test_relative_path_is_refused():
    with pytest.raises(ContainerError) as caught:
        seccomp.load_profile("profile.json")
    assert "absolute path" in str(caught.value) and "'profile.json'" in str(caught.value)


def test_bad_json(tmp_path):
    assert "not valid JSON" in load_error(tmp_path, '{"defaultAction": "SCMP_ACT_ERRNO",')


@pytest.mark.parametrize("profile, words", [
    ([], ["top level is not a JSON object"]),
    ({"syscalls": []}, ["defaultAction is missing"]),
    ({"defaultAction": "SCMP_ACT_BLOCK"}, ["unknown action 'SCMP_ACT_BLOCK'", "SCMP_ACT_ERRNO"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1}, ["defaultErrnoRet -1"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {}}, ["syscalls must be a list"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]},
     ["syscalls[0]", "names no syscall"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]},
     ["syscalls[0]", "names no syscall"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_PERMIT"}]},
     ["syscalls[0] (read)", "unknown action 'SCMP_ACT_PERMIT'"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]}, ["no action"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]},
     ["SCMP_ACT_NOTIFY is not supported"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_IS"}]}]},
     ["syscalls[1] (socket)", "unknown op 'SCMP_CMP_IS'", "SCMP_CMP_MASKED_EQ"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     ["arg index 6 is out of range", "0 to 5"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]},
     ["value -1 is not an unsigned 64-bit number"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                                                       "errnoRet": 1}]},
     ["errnoRet is given for SCMP_ACT_ALLOW"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                                                       "errnoRet": 70000}]},
     ["errnoRet 70000 is not an errno number"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                                                       "includes": {"minKernel": "new"}}]},
     ["includes.minKernel 'new'"]),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                                                       "excludes": {"caps": "CAP_SYS_ADMIN"}}]},
     ["excludes.caps must be a list of strings"]),
])
def test_malformed_profiles(tmp_path, profile, words):
    message = load_error(tmp_path, profile)
    for word in words:
        assert word in message
