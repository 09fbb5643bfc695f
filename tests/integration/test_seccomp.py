"""Docker's default seccomp filter, compiled by the collection, on the real kernel.

Each test starts a fresh ``/usr/bin/python3`` (the managed host's
interpreter, with the collection on its path) that sets no_new_privs,
installs the filter built for Docker's 14 capabilities and then makes the
calls under test, or execs a program that does. The child runs as root with
every capability: whatever it is refused, the filter refused.

Run as root: the baselines make calls (keyctl, unshare of a user namespace,
int 0x80) that the kernel allows root without the filter.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".build", "collections"))
sys.path.insert(0, COLLECTIONS)

from ansible_collections.handmade.containers.plugins.module_utils._capabilities import (  # noqa: E402
    DEFAULT_CAPABILITIES,
)

HOST_PYTHON = os.environ.get("HOST_PYTHON", "/usr/bin/python3")
EPERM = 1
ENOSYS = 38

# The child: argv[1] is JSON {"caps": [...] or null (no filter), "chroot": path or null,
# "no_new_privs": bool, "user": uid or null, "probe": bool, "exec": argv or null}.
CHILD = r"""
import ctypes, json, os, sys
sys.path.insert(0, %(collections)r)
from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_
from ansible_collections.handmade.containers.plugins.module_utils._container import seccomp

config = json.loads(sys.argv[1])
program = None
if config["caps"] is not None:
    program = seccomp.prepare("default", config["caps"])  # built before any confinement, as the parent will
if config["chroot"]:
    os.chroot(config["chroot"])
    os.chdir("/")
if config["user"] is not None:
    os.setgid(config["user"])
    os.setuid(config["user"])
if config["no_new_privs"]:
    sys_.prctl(sys_.PR_SET_NO_NEW_PRIVS, 1)
if program is not None:
    try:
        seccomp.install(program)
    except OSError as exc:
        print(json.dumps({"install_error": str(exc), "errno": exc.errno}))
        sys.exit(3)

libc = sys_.libc
NR = %(numbers)r


def call(name, *args):
    result = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(arg) for arg in args])
    return 0 if result >= 0 else ctypes.get_errno()


def socket_errno(family):
    result = libc.socket(family, 1, 0)  # SOCK_STREAM
    if result >= 0:
        os.close(result)
        return 0
    return ctypes.get_errno()


if config["probe"]:
    results = {
        "getpid": call("getpid"),
        "keyctl": call("keyctl", 0, -3, 0),  # KEYCTL_GET_KEYRING_ID of the session keyring
        "add_key": call("add_key", 0, 0, 0, 0, -3),
        "userfaultfd": call("userfaultfd", 0o2000000),
        "clone3": call("clone3", 0, 0),
        "socket_vsock": socket_errno(40),
        "socket_inet": socket_errno(2),
        "socket_unix": socket_errno(1),
        "mount": call("mount", 0, 0, 0, 0, 0),
        # Last: it moves this probe into a new user namespace.
        "unshare_user": call("unshare", 0x10000000),
    }
    print(json.dumps(results))
    sys.stdout.flush()
if config["exec"]:
    os.execv(config["exec"][0], config["exec"])
"""

# int $0x80 from a 64-bit program reaches the i386 syscall table: 20 is
# getpid there. Without the architecture check it would bypass a filter
# written for x86_64 numbers.
INT80_PROGRAM = r"""
#include <stdio.h>
int main(void) {
    long ret;
    __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
    printf("%ld\n", ret);
    return 0;
}
"""


def syscall_numbers():
    from ansible_collections.handmade.containers.plugins.module_utils._container.seccomp_syscalls import table
    numbers = table(os.uname().machine)
    return dict((name, numbers[name]) for name in (
        "getpid", "keyctl", "add_key", "userfaultfd", "clone3", "mount", "unshare"))


def run_child(caps=tuple(DEFAULT_CAPABILITIES), chroot=None, no_new_privs=True, user=None, probe=False,
              exec_argv=None, timeout=60):
    config = {"caps": list(caps) if caps is not None else None, "chroot": chroot, "no_new_privs": no_new_privs,
              "user": user, "probe": probe, "exec": exec_argv}
    script = CHILD % {"collections": COLLECTIONS, "numbers": syscall_numbers()}
    return subprocess.run([HOST_PYTHON, "-I", "-c", script, json.dumps(config)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, check=False)


def probe(caps=tuple(DEFAULT_CAPABILITIES)):
    proc = run_child(caps=caps, probe=True)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stdout.decode().splitlines()[0])


@pytest.fixture(scope="module")
def baseline():
    """What the same calls get without a filter (root, every capability)."""
    return probe(caps=None)


@pytest.fixture(scope="module")
def confined():
    return probe()


@pytest.fixture(scope="module")
def int80_program(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.fail("gcc is needed to build the int $0x80 probe and was not found: install gcc (and libc6-dev)")
    directory = tmp_path_factory.mktemp("int80")
    source = directory / "int80.c"
    source.write_text(INT80_PROGRAM)
    program = str(directory / "int80")
    build = subprocess.run(["gcc", "-static", "-O1", "-o", program, str(source)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, check=False)
    assert build.returncode == 0, "gcc could not build the int $0x80 probe: %s" % build.stdout.decode()
    return program


def test_allowed_calls_still_work(confined):
    assert confined["getpid"] == 0
    assert confined["socket_inet"] == 0
    assert confined["socket_unix"] == 0


def test_keyring_calls_are_refused(baseline, confined):
    assert baseline["keyctl"] == 0, "root without a filter should read its session keyring"
    assert confined["keyctl"] == EPERM
    assert confined["add_key"] == EPERM and baseline["add_key"] != EPERM


def test_unshare_of_a_user_namespace_is_refused(baseline, confined):
    assert baseline["unshare_user"] == 0
    assert confined["unshare_user"] == EPERM


def test_unshare_is_allowed_with_cap_sys_admin():
    assert probe(caps=tuple(DEFAULT_CAPABILITIES) + ("SYS_ADMIN",))["unshare_user"] == 0


def test_vsock_sockets_are_refused(baseline, confined):
    assert confined["socket_vsock"] == EPERM
    assert baseline["socket_vsock"] != EPERM  # the kernel's own answer: created, or no such family


def test_userfaultfd_is_refused(baseline, confined):
    assert baseline["userfaultfd"] == 0
    assert confined["userfaultfd"] == EPERM


def test_clone3_says_enosys_and_mount_eperm(baseline, confined):
    assert confined["clone3"] == ENOSYS
    assert confined["mount"] == EPERM and baseline["mount"] != EPERM


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="int $0x80 is an x86 instruction")
def test_int80_i386_call_is_killed(int80_program):
    free = subprocess.run([int80_program], stdout=subprocess.PIPE, check=False, timeout=30)
    assert free.returncode == 0 and int(free.stdout) > 0, (
        "without a filter int $0x80 should run getpid (the kernel needs IA32 emulation): %r" % (free,))
    proc = run_child(exec_argv=[int80_program])
    refused = proc.returncode == 0 and proc.stdout.strip().lstrip(b"-").isdigit() and int(proc.stdout) < 0
    assert proc.returncode == -signal.SIGSYS or refused, (proc.returncode, proc.stdout, proc.stderr)


def test_busybox_shell_with_pipe_and_background_job(busybox_rootfs):
    proc = run_child(chroot=busybox_rootfs,
                     exec_argv=["/bin/busybox", "sh", "-c", "echo a | cat; sleep 0.1 & wait; echo done"])
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == b"a\ndone\n"


def test_python_threads_fall_back_from_clone3():
    program = ("import threading\n"
               "seen = []\n"
               "threads = [threading.Thread(target=seen.append, args=(n,)) for n in range(4)]\n"
               "[t.start() for t in threads]; [t.join() for t in threads]\n"
               "status = open('/proc/self/status').read()\n"
               "print(sorted(seen), [line for line in status.splitlines() if line.startswith('Seccomp:')][0])\n")
    proc = run_child(exec_argv=[HOST_PYTHON, "-I", "-c", program])
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout.decode().split() == ["[0,", "1,", "2,", "3]", "Seccomp:", "2"]


def test_install_without_no_new_privs_needs_cap_sys_admin():
    proc = run_child(no_new_privs=False, user=65534)
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    error = json.loads(proc.stdout)
    assert error["errno"] == 13 and "seccomp(SECCOMP_SET_MODE_FILTER" in error["install_error"]
    # Root keeps CAP_SYS_ADMIN, and the kernel then takes the filter without no_new_privs.
    assert run_child(no_new_privs=False, exec_argv=["/bin/true"]).returncode == 0
