"""Shared fixtures for the integration tests.

These tests run as root on the real kernel. Two ways to call a module:

* ``run_module``: the module's own code in a fresh Python process, with its
  arguments in a file, exactly as AnsiballZ hands them over. Fast; use it
  for most behaviour.
* ``ansible_module``: a real ``ansible`` ad-hoc call on localhost. Slower;
  use it where the Ansible process model matters (file descriptors left
  open, check mode and diff as the controller sends them).
"""

import atexit
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import ansible
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_PATH = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
# The managed host's Python (scripts/integration.sh runs the suite with the
# system one and with the oldest the collection claims): run_module_direct
# runs the modules with it, and the ansible calls name it as
# ansible_python_interpreter.
HOST_PYTHON = os.environ.get("HOST_PYTHON", "/usr/bin/python3")
MODULE_PACKAGE = "ansible_collections.handmade.containers.plugins.modules"


def _ansible_package_dir():
    """A directory holding only this process's ansible package, as AnsiballZ ships it.

    HOST_PYTHON finds ansible.module_utils there, and nothing else of this
    virtualenv can shadow that interpreter's own standard library.
    """
    directory = tempfile.mkdtemp(prefix="handmade-module-path-")
    atexit.register(shutil.rmtree, directory, True)
    os.symlink(os.path.dirname(os.path.abspath(ansible.__file__)), os.path.join(directory, "ansible"))
    return directory


ANSIBLE_PACKAGE_DIR = _ansible_package_dir()


def _module_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [COLLECTIONS_PATH, ANSIBLE_PACKAGE_DIR, env.get("PYTHONPATH")]))
    return env


def run_module_direct(module, args, check_mode=False, diff=False, timeout=300):
    """Run plugins/modules/<module>.py once and return its parsed result."""
    params = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": params}, handle)
    try:
        proc = subprocess.run(
            [HOST_PYTHON, "-m", "%s.%s" % (MODULE_PACKAGE, module), handle.name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_module_env(),
            timeout=timeout, check=False,
        )
    finally:
        os.unlink(handle.name)
    try:
        result = json.loads(proc.stdout.decode())
    except ValueError:
        raise AssertionError("module %s printed no JSON (rc=%d)\nstdout: %s\nstderr: %s" % (
            module, proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")))
    result.setdefault("failed", False)
    return result


def run_ansible_adhoc(module, args, check_mode=False, diff=False, timeout=600):
    """Run handmade.containers.<module> through ``ansible`` on localhost."""
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
        "ANSIBLE_PYTHON_INTERPRETER": HOST_PYTHON,
        "ANSIBLE_NOCOLOR": "1",
    })
    cmd = ["ansible", "localhost", "-c", "local", "-i", "localhost,",
           "-m", "handmade.containers.%s" % module, "-a", json.dumps(args)]
    if check_mode:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          timeout=timeout, check=False)
    # The minimal callback prints "localhost | STATUS => {json}".
    output = proc.stdout.decode(errors="replace")
    match = re.search(r"^localhost \| [A-Z!]+(?: \| rc=-?\d+)? => ", output, re.MULTILINE)
    try:
        result = json.JSONDecoder().raw_decode(output[match.end():])[0]
    except (AttributeError, ValueError):
        raise AssertionError("ansible printed no result (rc=%d)\nstdout: %s\nstderr: %s" % (
            proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")))
    # The callback drops the result's "failed"; its status line says it.
    result.setdefault("failed", match.group(0).startswith("localhost | FAILED"))
    return result


@pytest.fixture
def run_module():
    """``run_module(name, args, check_mode=False, diff=False) -> result dict``."""
    return run_module_direct


@pytest.fixture
def ansible_module():
    """``ansible_module(name, args, check_mode=False, diff=False) -> result dict``."""
    return run_ansible_adhoc


def pytest_sessionstart(session):
    # Not root means not one test can run: stop, and fail, before collecting
    # anything, rather than report every test as skipped and exit 0.
    if os.geteuid() != 0:
        pytest.exit("the integration tests need root (namespaces, mounts, cgroups): run them as root, "
                    "with `sudo make integration` (or sudo scripts/integration.sh PYTEST-ARGS)",
                    returncode=pytest.ExitCode.USAGE_ERROR)


# ---------------------------------------------------------------------------
# The offline Alpine mirror (tests/fixtures/alpine_mirror.py), built once per
# recipe into the development cache and served on 127.0.0.1 for the session.

sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
import alpine_mirror as alpine_mirror_builder  # noqa: E402 (needs the path above)

MIRROR_CACHE = os.environ.get(
    "HANDMADE_TEST_MIRROR_CACHE",
    os.path.join(os.environ.get("HANDMADE_DEV_CACHE", "/var/cache/handmade-containers-dev"), "mirror"))


class AlpineMirror(dict):
    """The mirror's description (``url``, ``root``, ``key_file``, ``fingerprint``,
    ``versions``, ``arches``, ``branches``) as keys and as attributes.

    ``server.faults`` makes one URL path answer with an HTTP status,
    ``"truncate"`` or other bytes (see ``alpine_mirror._Handler``);
    ``server.requests`` lists the paths requested so far.
    """

    __getattr__ = dict.__getitem__

    def tarball_path(self, version, arch="x86_64"):
        branch = "v" + ".".join(version.split(".")[:2])
        return os.path.join(self["root"], branch, "releases", arch,
                            "alpine-minirootfs-%s-%s.tar.gz" % (version, arch))

    def tarball_url(self, version, arch="x86_64"):
        return self["url"] + "/" + os.path.relpath(self.tarball_path(version, arch), self["root"])

    def sign(self, path):
        """Write ``path.asc``, signed with the mirror's own key."""
        alpine_mirror_builder.sign_file(self, path)


@pytest.fixture(scope="session")
def alpine_mirror():
    info = alpine_mirror_builder.build(MIRROR_CACHE)
    with alpine_mirror_builder.serving(info["root"]) as server:
        mirror = AlpineMirror(info, url=server.url, server=server)
        yield mirror


@pytest.fixture(scope="session")
def busybox_rootfs(alpine_mirror):
    """The newest x86_64 fixture tarball extracted with GNU tar (read-only use)."""
    newest = alpine_mirror["versions"][-1]
    parent = tempfile.mkdtemp(prefix="handmade-busybox-rootfs-")
    rootfs = os.path.join(parent, "rootfs")
    os.mkdir(rootfs)
    try:
        subprocess.run(["tar", "-xzf", alpine_mirror.tarball_path(newest), "-C", rootfs,
                        "--numeric-owner", "--same-permissions", "--same-owner"], check=True)
        yield rootfs
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def processes_with(marker):
    """Host pids (not this one) whose command line, arguments joined by spaces, contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                if marker.encode() in handle.read().replace(b"\0", b" "):
                    found.append(int(entry))
        except OSError:
            continue
    return found


# Mounts systemd makes and removes on its own schedule, whatever a test
# does: a service's credentials live in /run/credentials/<unit> for as long
# as it runs (systemd-tmpfiles-clean.timer starts one, in the test VMs too).
_MOUNTS_OF_THE_HOST_ITSELF = ("/run/credentials/",)


def host_mounts():
    """The host's mounts, each as mountinfo's fields from the mount point on,
    sorted: equal before and after a call unless the call left a mount
    behind (or took one away). Mount ids are left out, they change on every
    remount; the mounts systemd makes for its own services are left out,
    they come and go while a test runs."""
    with open("/proc/self/mountinfo") as handle:
        fields = [line.split(" ", 4)[4] for line in handle.read().splitlines()]
    return sorted(entry for entry in fields if not entry.startswith(_MOUNTS_OF_THE_HOST_ITSELF))


@contextlib.contextmanager
def private_rootfs_copy(source, prefix, programs=()):
    """A copy of the rootfs ``source`` (``cp -a``) in a new temporary directory, removed afterwards.

    ``programs`` are (host path, path inside) pairs copied in, mode 0755:
    the static probes some tests run inside.
    """
    parent = tempfile.mkdtemp(prefix=prefix)
    copy = os.path.join(parent, "rootfs")
    try:
        subprocess.run(["cp", "-a", source, copy], check=True)
        for program, inside in programs:
            shutil.copy(program, copy + inside)
            os.chmod(copy + inside, 0o755)
        yield copy
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def rootfs(busybox_rootfs, request):
    """A private copy of the fixture rootfs for one test module: its tests may change it."""
    prefix = "%s-rootfs-" % request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    with private_rootfs_copy(busybox_rootfs, prefix) as copy:
        yield copy


@pytest.fixture(scope="session", autouse=True)
def no_parent_of_own_cgroups_left():
    """Remove the empty cgroups containers share (handmade/containers, handmade/_supervisors) after the session.

    ns_exec removes each container's own cgroup with it but keeps the parent
    they share and the supervisors' cgroup, as it keeps handmade itself; the
    tests take them away once no container or supervisor of theirs is left.
    """
    yield
    for hierarchy in sorted(os.listdir("/sys/fs/cgroup")):
        candidates = [os.path.join(base, shared) for shared in ("containers", "_supervisors")
                      for base in (os.path.join("/sys/fs/cgroup", hierarchy, "handmade"),
                                   os.path.join("/sys/fs/cgroup", "handmade"))]
        for parent in candidates:
            try:
                os.rmdir(parent)
            except OSError:
                pass  # absent, or a container still runs below it
