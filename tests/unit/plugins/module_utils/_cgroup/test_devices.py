# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Device rules in the kernel's two forms: _cgroup.devices, and the drivers' set_device_rules.

The BPF program is run here in a small interpreter of the instructions it
may use, against fake requests, and its answers are compared with the v1
kernel's rule for the same list: the request is allowed when one entry of
the list (entries of one key merged) has its type, its numbers or a
wildcard, and every access bit asked.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ctypes
import errno
import itertools
import random
import struct
import sys

import pytest

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls
from ansible_collections.handmade.containers.plugins.module_utils._cgroup import devices
from ansible_collections.handmade.containers.plugins.module_utils._cgroup import v1 as v1_module
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.layout import parse_mountinfo
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.v1 import V1Cgroup
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.v2 import V2Cgroup
from ansible_collections.handmade.containers.plugins.module_utils._devices import (
    DEFAULT_RULES,
    DeviceRule,
    allowed_rules,
)

TYPE_BITS = {"b": 1, "c": 2}
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}
U64 = (1 << 64) - 1


def bits(access):
    return sum(ACCESS_BITS[letter] for letter in access)


# --------------------------------------------------------------------------
# A tiny interpreter of the program's instructions
# --------------------------------------------------------------------------

def run_program(program, kind, access, major, minor):
    """What the kernel would answer: True (1) or False (0), for one request."""
    context = struct.pack("=III", bits(access) << 16 | TYPE_BITS[kind], major, minor)
    registers = [0] * 11
    registers[1] = "ctx"
    pc = 0
    for _step in range(len(program) + 1):  # no loops: each instruction at most once
        assert 0 <= pc < len(program), "fell off the program at %d" % pc
        code, dst, src, off, imm = program[pc]
        pc += 1
        if code == devices.LDX_MEM_W:
            assert registers[src] == "ctx" and off in (0, 4, 8), "only the context's three words may be read"
            registers[dst] = struct.unpack_from("=I", context, off)[0]
        elif code == devices.ALU32_AND_K:
            registers[dst] = (registers[dst] & imm) & 0xFFFFFFFF
        elif code == devices.ALU32_RSH_K:
            registers[dst] = (registers[dst] & 0xFFFFFFFF) >> imm
        elif code == devices.ALU32_MOV_K:
            registers[dst] = imm & 0xFFFFFFFF
        elif code == devices.JMP_JNE_K:
            if registers[dst] != imm & U64:
                pc += off
        elif code == devices.JMP_JSET_K:
            if registers[dst] & (imm & U64):
                pc += off
        elif code == devices.JMP_EXIT:
            assert registers[0] in (0, 1)
            return registers[0] == 1
        else:
            raise AssertionError("opcode 0x%02x is not one the program may use" % code)
    raise AssertionError("the program did not exit")


def reachable(program):
    """Indexes reachable from the first instruction (the verifier refuses unreachable ones)."""
    seen, todo = set(), [0]
    while todo:
        pc = todo.pop()
        if pc in seen:
            continue
        seen.add(pc)
        code, _dst, _src, off, _imm = program[pc]
        if code == devices.JMP_EXIT:
            continue
        todo.append(pc + 1)
        if code in (devices.JMP_JNE_K, devices.JMP_JSET_K):
            todo.append(pc + 1 + off)
    return seen


def v1_answer(rules, kind, access, major, minor):
    """The v1 kernel's rule, written from its documentation and independent of the code under test."""
    entries = {}
    for rule in rules:
        for rule_kind in (("c", "b") if rule.type == "a" else (rule.type,)):
            key = (rule_kind, rule.major, rule.minor)
            entries[key] = entries.get(key, set()) | set(rule.access)
    for (rule_kind, rule_major, rule_minor), rule_access in entries.items():
        if (rule_kind == kind and rule_major in (None, major) and rule_minor in (None, minor)
                and set(access) <= rule_access):
            return True
    return False


ACCESSES = ["r", "w", "m", "rw", "rm", "wm", "rwm"]
REQUESTS = [(kind, access, major, minor) for kind in ("c", "b") for access in ACCESSES
            for major, minor in ((1, 3), (1, 11), (5, 2), (136, 0), (136, 77), (7, 0), (7, 7), (10, 229),
                                 (10, 200), (8, 16), (4095, 1048575), (0, 0))]

RULE_SETS = {
    "docker defaults": list(DEFAULT_RULES),
    "defaults and a loop device": allowed_rules([DeviceRule("b", 7, 7, "rw")]),
    "nothing at all": [],
    "everything": [DeviceRule("a", None, None, "rwm")],
    "mknod of everything only": [DeviceRule("a", None, None, "m")],
    "one key in two rules": [DeviceRule("b", 7, 0, "r"), DeviceRule("b", 7, 0, "w")],
    "wildcard minor and an exact one": [DeviceRule("c", 136, None, "r"), DeviceRule("c", 136, 77, "w")],
    "wildcard major": [DeviceRule("b", None, 0, "rw")],
}


@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_the_program_answers_every_request_as_the_v1_list_does(name):
    rules = RULE_SETS[name]
    program = devices.device_filter_program(rules)
    for request in REQUESTS:
        assert run_program(program, *request) == v1_answer(rules, *request), (name, request)


@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_every_instruction_is_reachable_and_the_last_one_exits(name):
    program = devices.device_filter_program(RULE_SETS[name])
    assert reachable(program) == set(range(len(program)))
    assert program[-1][0] == devices.JMP_EXIT


def test_random_rule_sets_agree_with_the_v1_list():
    chooser = random.Random(1234)  # fixed: a failure shows the same case again
    for _round in range(200):
        rules = [DeviceRule(chooser.choice("cba"),
                            None if chooser.random() < 0.3 else chooser.choice([1, 7, 136]),
                            None if chooser.random() < 0.4 else chooser.choice([0, 3, 7]),
                            "".join(sorted(set(chooser.sample("rwm", chooser.randint(1, 3))),
                                           key="rwm".index)))
                 for _rule in range(chooser.randint(0, 6))]
        rules = [rule if rule.type != "a" else DeviceRule("a", None, None, rule.access) for rule in rules]
        program = devices.device_filter_program(rules)
        assert reachable(program) == set(range(len(program)))
        for kind, access, major, minor in itertools.product("cb", ACCESSES, [1, 7, 136, 2], [0, 3, 7, 9]):
            request = (kind, access, major, minor)
            assert run_program(program, *request) == v1_answer(rules, *request), (rules, request)


@pytest.mark.parametrize("request_, allowed", [
    (("c", "rw", 1, 3), True),         # /dev/null
    (("c", "rw", 1, 9), True),         # /dev/urandom
    (("c", "rw", 136, 4), True),       # a pts
    (("c", "rw", 10, 200), True),      # /dev/net/tun
    (("c", "m", 1, 11), True),         # mknod of anything
    (("b", "m", 7, 0), True),
    (("c", "w", 1, 11), False),        # /dev/kmsg
    (("c", "r", 1, 11), False),
    (("b", "r", 7, 0), False),         # a loop device
    (("b", "rw", 8, 0), False),        # a disk
    (("c", "rw", 10, 229), False),     # /dev/fuse
    (("c", "rwm", 1, 1), False),       # /dev/mem
])
def test_the_default_program_allows_what_docker_allows(request_, allowed):
    assert run_program(devices.device_filter_program(DEFAULT_RULES), *request_) is allowed


def test_the_program_reads_the_request_then_tests_rule_by_rule():
    listing = devices.describe_program(devices.device_filter_program([DeviceRule("c", 1, 3, "rwm"),
                                                                      DeviceRule("b", 7, None, "r")]))
    assert listing == [
        "0: ldxw r2, [r1+0]",            # r2: the type, low half of access_type
        "1: and32 r2, 0xffff",
        "2: ldxw r3, [r1+0]",            # r3: the access bits, high half
        "3: rsh32 r3, 0x10",
        "4: ldxw r4, [r1+4]",            # r4: major
        "5: ldxw r5, [r1+8]",            # r5: minor
        "6: jne r2, 0x2, goto 11",       # c 1:3 rwm: not a character device, next rule
        "7: jne r4, 0x1, goto 11",
        "8: jne r5, 0x3, goto 11",
        "9: mov32 r0, 0x1",
        "10: exit",
        "11: jne r2, 0x1, goto 16",      # b 7:* r: not a block device, deny
        "12: jset r3, 0x5, goto 16",     # asks write or mknod: deny
        "13: jne r4, 0x7, goto 16",
        "14: mov32 r0, 0x1",
        "15: exit",
        "16: mov32 r0, 0x0",             # no rule took it
        "17: exit",
    ]


def test_no_rules_deny_everything_in_two_instructions_after_the_reads():
    program = devices.device_filter_program([])
    assert devices.describe_program(program)[6:] == ["6: mov32 r0, 0x0", "7: exit"]


def test_the_encoding_is_struct_bpf_insn():
    program = [(devices.LDX_MEM_W, 2, 1, 4, 0), (devices.JMP_JNE_K, 4, 0, -3, 136)]
    code = devices.encode_program(program)
    assert len(code) == 2 * _syscalls.BPF_INSTRUCTION_SIZE
    registers = 0x12 if sys.byteorder == "little" else 0x21
    assert code[:8] == struct.pack("=BBhi", 0x61, registers, 4, 0)
    assert struct.unpack("=BBhi", code[8:]) == (0x55, 0x04 if sys.byteorder == "little" else 0x40, -3, 136)


def test_rules_the_kernel_cannot_hold_are_refused():
    for bad in (DeviceRule("x", 1, 1, "r"), DeviceRule("a", 1, None, "r"), DeviceRule("c", 4096, 0, "r"),
                DeviceRule("c", 1, 1 << 20, "r"), DeviceRule("c", 1, 3, "rx"), DeviceRule("c", 1, 3, "")):
        with pytest.raises(CgroupError, match="not a device rule the kernel can hold"):
            devices.device_filter_program([bad])
        with pytest.raises(CgroupError, match="not a device rule the kernel can hold"):
            devices.v1_writes([bad])


# --------------------------------------------------------------------------
# v1: the writes and their order
# --------------------------------------------------------------------------

def test_v1_denies_everything_first_then_allows_one_rule_per_write():
    writes = devices.v1_writes(DEFAULT_RULES)
    assert writes == [("devices.deny", "a")] + [("devices.allow", line) for line in (
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
        "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm")]
    assert all("\n" not in text for _filename, text in writes)


def test_v1_splits_type_a_and_merges_one_key():
    # "a" in devices.allow would open every device whatever access follows.
    writes = devices.v1_writes([DeviceRule("a", None, None, "m"), DeviceRule("b", 7, 0, "r"),
                                DeviceRule("c", None, None, "r"), DeviceRule("b", 7, 0, "w")])
    assert [text for _filename, text in writes] == ["a", "c *:* rm", "b *:* m", "b 7:0 rw"]


def test_write_v1_rules_writes_each_in_order(monkeypatch, tmp_path):
    written = []
    monkeypatch.setattr(devices, "write_text", lambda path, text: written.append((path, text)))
    devices.write_v1_rules(str(tmp_path), [DeviceRule("c", 1, 3, "rwm"), DeviceRule("b", 7, 7, "rw")])
    assert written == [(str(tmp_path / "devices.deny"), "a"), (str(tmp_path / "devices.allow"), "c 1:3 rwm"),
                       (str(tmp_path / "devices.allow"), "b 7:7 rw")]


@pytest.mark.parametrize("error, hint", [(errno.EPERM, "only what its parent allows"),
                                         (errno.EINVAL, "child cgroups")])
def test_a_refused_v1_write_names_the_rule_and_the_cause(monkeypatch, error, hint):
    def refuse(path, text):
        if text != "a":
            raise OSError(error, "refused")
    monkeypatch.setattr(devices, "write_text", refuse)
    with pytest.raises(CgroupError) as caught:
        devices.write_v1_rules("/sys/fs/cgroup/devices/handmade/x", [DeviceRule("b", 7, 7, "rw")])
    assert "'b 7:7 rw' in /sys/fs/cgroup/devices/handmade/x/devices.allow" in str(caught.value)
    assert hint in str(caught.value)


MOUNTINFO = """\
25 22 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 25 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
33 25 0:31 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,devices
34 25 0:32 / /mnt/devices rw,relatime - cgroup cgroup rw,devices
"""


def test_the_devices_hierarchy_is_found_in_mountinfo():
    mounts = parse_mountinfo(MOUNTINFO)
    assert devices.v1_devices_hierarchy(mounts, "/sys/fs/cgroup") == {"devices": "/sys/fs/cgroup/devices"}
    assert devices.v1_devices_hierarchy(mounts[:3], "/sys/fs/cgroup") == {}


def fake_v1_host(monkeypatch, tmp_path, with_devices=True):
    text = "".join(line.replace("/sys/fs/cgroup", str(tmp_path)) + "\n" for line in MOUNTINFO.splitlines()
                   if with_devices or "devices" not in line)
    monkeypatch.setattr(v1_module, "read_mountinfo", lambda: parse_mountinfo(text))
    for controller in ("memory", "devices", "unified"):
        (tmp_path / controller).mkdir()
    return V1Cgroup("handmade/web1", str(tmp_path), "hybrid")


def test_the_v1_cgroup_lives_in_the_devices_hierarchy_too(monkeypatch, tmp_path):
    cgroup = fake_v1_host(monkeypatch, tmp_path)
    assert cgroup.paths == {"memory": str(tmp_path / "memory/handmade/web1"),
                            "devices": str(tmp_path / "devices/handmade/web1"),
                            "unified": str(tmp_path / "unified/handmade/web1")}
    cgroup.create()
    assert (tmp_path / "devices/handmade/web1").is_dir()


def test_v1_set_device_rules_writes_the_devices_directory(monkeypatch, tmp_path):
    cgroup = fake_v1_host(monkeypatch, tmp_path)
    cgroup.create()
    written = []
    monkeypatch.setattr(devices, "write_text", lambda path, text: written.append((path, text)))
    cgroup.set_device_rules([DeviceRule("c", 1, 3, "rwm")])
    directory = str(tmp_path / "devices/handmade/web1")
    assert written == [(directory + "/devices.deny", "a"), (directory + "/devices.allow", "c 1:3 rwm")]


def test_v1_set_device_rules_makes_a_missing_devices_directory_and_moves_the_processes_in(monkeypatch, tmp_path):
    cgroup = fake_v1_host(monkeypatch, tmp_path)
    (tmp_path / "memory/handmade/web1").mkdir(parents=True)  # made when devices was not one of its hierarchies
    (tmp_path / "memory/handmade/web1/cgroup.procs").write_text("4242\n")
    moved = []
    monkeypatch.setattr(v1_module, "write_text", lambda path, text: moved.append((path, text)))
    monkeypatch.setattr(devices, "write_text", lambda path, text: None)
    cgroup.set_device_rules(DEFAULT_RULES)
    assert (tmp_path / "devices/handmade/web1").is_dir()
    assert moved == [(str(tmp_path / "devices/handmade/web1/cgroup.procs"), "4242")]


def test_v1_set_device_rules_without_a_devices_hierarchy_says_so(monkeypatch, tmp_path):
    cgroup = fake_v1_host(monkeypatch, tmp_path, with_devices=False)
    cgroup.create()
    with pytest.raises(CgroupError, match="devices cannot be limited on this host: no cgroup v1 devices"):
        cgroup.set_device_rules(DEFAULT_RULES)


def test_v1_set_device_rules_needs_the_cgroup(monkeypatch, tmp_path):
    with pytest.raises(CgroupError, match="does not exist"):
        fake_v1_host(monkeypatch, tmp_path).set_device_rules(DEFAULT_RULES)


# --------------------------------------------------------------------------
# v2: the driver attaches to its directory; errors name the fix
# --------------------------------------------------------------------------

def test_v2_set_device_rules_attaches_to_the_cgroups_directory(monkeypatch, tmp_path):
    attached = []
    monkeypatch.setattr("ansible_collections.handmade.containers.plugins.module_utils._cgroup.v2."
                        "attach_device_filter", lambda directory, rules: attached.append((directory, rules)))
    (tmp_path / "handmade/web1").mkdir(parents=True)
    V2Cgroup("handmade/web1", str(tmp_path), "unified").set_device_rules(DEFAULT_RULES)
    assert attached == [(str(tmp_path / "handmade/web1"), DEFAULT_RULES)]


def test_v2_set_device_rules_needs_the_cgroup(tmp_path):
    with pytest.raises(CgroupError, match="does not exist"):
        V2Cgroup("handmade/web1", str(tmp_path), "unified").set_device_rules(DEFAULT_RULES)


@pytest.mark.parametrize("error", [errno.ENOSYS, errno.EPERM, errno.EINVAL])
def test_a_kernel_without_cgroup_bpf_gets_the_config_option_and_what_to_do(monkeypatch, error):
    def refuse(*_args, **_kwargs):
        raise _syscalls.BpfLoadError(error, "bpf(BPF_PROG_LOAD): refused")
    monkeypatch.setattr(_syscalls, "bpf_prog_load", refuse)
    with pytest.raises(CgroupError) as caught:
        devices.load_device_filter(DEFAULT_RULES)
    message = str(caught.value)
    assert message.startswith("devices cannot be limited on this host")
    assert "CONFIG_CGROUP_BPF" in message and "boot such a kernel" in message


def test_a_verifier_refusal_shows_the_log_and_the_program(monkeypatch):
    calls = []

    def refuse(*_args, **kwargs):
        calls.append(kwargs.get("log_size", 0))
        error = _syscalls.BpfLoadError(errno.EACCES, "bpf(BPF_PROG_LOAD): refused")
        error.log = "R6 !read_ok" if kwargs.get("log_size") else ""
        raise error
    monkeypatch.setattr(_syscalls, "bpf_prog_load", refuse)
    with pytest.raises(CgroupError) as caught:
        devices.load_device_filter([DeviceRule("c", 1, 3, "rwm")])
    message = str(caught.value)
    assert calls == [0, devices.LOG_SIZE]  # fast first, then again for the log
    assert "verifier log:\nR6 !read_ok" in message
    assert "6: jne r2, 0x2, goto 11" in message and "c 1:3 rwm" in message


class FakeBpf:
    """The bpf(2) wrappers of _syscalls, recording calls; ``attached`` ids are there before the call."""

    def __init__(self, monkeypatch, attached=(), refuse_query=None):
        self.calls, self.attached, self.refuse_query = [], list(attached), refuse_query
        self.closed = []
        real_close = devices.os.close
        monkeypatch.setattr(_syscalls, "bpf_prog_load", self.load)
        monkeypatch.setattr(_syscalls, "bpf_prog_query", self.query)
        monkeypatch.setattr(_syscalls, "bpf_prog_attach", self.attach)
        monkeypatch.setattr(_syscalls, "bpf_prog_get_fd_by_id", self.get_fd)
        monkeypatch.setattr(_syscalls, "bpf_prog_detach", self.detach)
        monkeypatch.setattr(devices.os, "close", lambda fd: self.closed.append(fd) if fd >= 1000 else real_close(fd))

    def load(self, prog_type, code, license, expected_attach_type=0, name="", log_size=0):
        self.calls.append(("load", prog_type, len(code) // 8, expected_attach_type, name))
        return 1000

    def query(self, target_fd, attach_type):
        self.calls.append(("query", attach_type))
        if self.refuse_query:
            raise OSError(self.refuse_query, "bpf(BPF_PROG_QUERY): refused")
        return list(self.attached)

    def attach(self, target_fd, prog_fd, attach_type, flags=0):
        self.calls.append(("attach", prog_fd, attach_type, flags))

    def get_fd(self, prog_id):
        self.calls.append(("get_fd", prog_id))
        return 1000 + prog_id

    def detach(self, target_fd, prog_fd, attach_type):
        self.calls.append(("detach", prog_fd, attach_type))


def test_attaching_loads_attaches_with_allow_multi_then_detaches_the_earlier_programs(monkeypatch, tmp_path):
    bpf = FakeBpf(monkeypatch, attached=[7, 9])
    count = devices.attach_device_filter(str(tmp_path), DEFAULT_RULES)
    assert count == len(devices.device_filter_program(DEFAULT_RULES))
    assert bpf.calls == [
        ("load", _syscalls.BPF_PROG_TYPE_CGROUP_DEVICE, count, _syscalls.BPF_CGROUP_DEVICE, "handmade_dev"),
        ("query", _syscalls.BPF_CGROUP_DEVICE),
        ("attach", 1000, _syscalls.BPF_CGROUP_DEVICE, _syscalls.BPF_F_ALLOW_MULTI),
        ("get_fd", 7), ("detach", 1007, _syscalls.BPF_CGROUP_DEVICE),
        ("get_fd", 9), ("detach", 1009, _syscalls.BPF_CGROUP_DEVICE),
    ]
    assert sorted(bpf.closed) == [1000, 1007, 1009]  # every program fd is closed again


def test_attaching_without_the_list_of_earlier_programs_stops_before_attaching(monkeypatch, tmp_path):
    bpf = FakeBpf(monkeypatch, attached=[7], refuse_query=errno.EPERM)
    with pytest.raises(CgroupError, match="cannot list the device programs attached to .*CAP_NET_ADMIN"):
        devices.attach_device_filter(str(tmp_path), DEFAULT_RULES)
    assert [call[0] for call in bpf.calls] == ["load", "query"]
    assert bpf.closed == [1000]


def test_attaching_to_a_missing_directory_says_to_create_the_cgroup(tmp_path):
    with pytest.raises(CgroupError, match="cannot open cgroup directory .*create the cgroup first"):
        devices.attach_device_filter(str(tmp_path / "missing"), DEFAULT_RULES)


def test_the_bpf_call_has_its_number_on_both_architectures():
    assert _syscalls.syscall_numbers("x86_64")["bpf"] == 321
    assert _syscalls.syscall_numbers("aarch64")["bpf"] == 280


def test_the_bpf_attr_layouts_are_the_kernels():
    # union bpf_attr as each command reads it (include/uapi/linux/bpf.h).
    load = _syscalls._BpfProgLoadAttr
    assert (load.insns.offset, load.license.offset, load.log_buf.offset, load.prog_name.offset,
            load.expected_attach_type.offset, ctypes.sizeof(load)) == (8, 16, 32, 48, 68, 72)
    assert ctypes.sizeof(_syscalls._BpfAttachAttr) == 16
    query = _syscalls._BpfQueryAttr
    assert (query.prog_ids.offset, query.prog_cnt.offset, ctypes.sizeof(query)) == (16, 24, 32)
    assert ctypes.sizeof(_syscalls._BpfGetIdAttr) == 12
