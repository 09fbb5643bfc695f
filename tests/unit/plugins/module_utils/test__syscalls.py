# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno

import pytest

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls


@pytest.mark.parametrize("machine, expected", [
    ("x86_64", {"pivot_root": 155, "capget": 125, "capset": 126, "openat2": 437, "rt_sigaction": 13,
                "mount_setattr": 442}),
    ("amd64", {"pivot_root": 155, "capget": 125, "capset": 126, "openat2": 437, "rt_sigaction": 13}),
    ("aarch64", {"pivot_root": 41, "capget": 90, "capset": 91, "openat2": 437, "rt_sigaction": 134,
                 "mount_setattr": 442}),
    ("ARM64", {"pivot_root": 41, "capget": 90, "capset": 91, "openat2": 437, "rt_sigaction": 134}),
])
def test_syscall_numbers_per_architecture(machine, expected):
    table = _syscalls.syscall_numbers(machine)
    assert dict((call, table[call]) for call in expected) == expected


def test_both_architectures_know_the_same_calls():
    assert set(_syscalls.SYSCALL_NUMBERS["x86_64"]) == set(_syscalls.SYSCALL_NUMBERS["aarch64"])


def test_unknown_architecture_is_named_in_the_error():
    with pytest.raises(_syscalls.UnsupportedArchitecture) as caught:
        _syscalls.syscall_numbers("riscv64")
    assert "riscv64" in str(caught.value) and "x86_64" in str(caught.value)
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSYS


def test_numbers_are_looked_up_at_the_first_call_not_at_import(monkeypatch):
    lazy = _syscalls._SyscallNumbers()

    class RiscV:
        machine = "riscv64"

    monkeypatch.setattr(_syscalls.os, "uname", RiscV)
    with pytest.raises(_syscalls.UnsupportedArchitecture):
        lazy["pivot_root"]


def test_namespace_flags_match_proc_names():
    names = [name for name, _flag in _syscalls.NAMESPACE_FLAGS]
    assert sorted(names) == ["cgroup", "ipc", "mnt", "net", "pid", "uts"]
    # pid is joined last: setns into a PID namespace only affects children.
    assert names[-1] == "pid"
    flags = [flag for _name, flag in _syscalls.NAMESPACE_FLAGS]
    assert len(set(flags)) == len(flags)


def test_failed_call_raises_oserror_naming_the_call():
    # Unmounting a path that does not exist fails for root and non-root alike.
    with pytest.raises(OSError) as caught:
        _syscalls.umount2("/nonexistent-handmade-test-path", 0)
    assert caught.value.errno in (errno.ENOENT, errno.EPERM, errno.EINVAL)
    assert "umount2('/nonexistent-handmade-test-path'" in str(caught.value)
