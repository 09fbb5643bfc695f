"""Helpers for tests/integration/test_cgroup.py.

Workloads are small standard-library Python programs that wait on stdin
until the test has placed them in a cgroup, so their work is counted there
from the first instruction. Cleanup finds and removes cgroups by walking
/sys/fs/cgroup itself, without the code under test, so a bug there cannot
leave cgroups or processes behind. In the same way, the host's layout and
whether its kernel has a limit's files are read from the kernel here, never
asked of the code under test, so a bug there cannot turn a test into a skip.
"""

import glob
import os
import signal
import subprocess
import sys
import time

from conftest import COLLECTIONS_PATH, HOST_PYTHON

if COLLECTIONS_PATH not in sys.path:
    sys.path.insert(0, COLLECTIONS_PATH)

CGROUP_ROOT = "/sys/fs/cgroup"
PROJECT_PARENT = "handmade"

# Each body runs after the first line arrives on stdin ("go").
ALLOCATE_400M = "data = b'x' * (400 << 20)\nprint(len(data), flush=True)\n"
BUSY_LOOP_8S = "import time\nend = time.monotonic() + 8\nwhile time.monotonic() < end:\n    pass\n"
SLEEP_300S = "import time\ntime.sleep(300)\n"
# A fork bomb that ends itself: at most 200 attempts, every child blocks on
# a pipe and exits when the parent closes it (after a second stdin line, or
# when the parent dies), so it can neither run away nor outlive the test.
FORK_BOMB = """\
import os, sys
read_end, write_end = os.pipe()
children, refused = [], 0
for _ in range(200):
    try:
        pid = os.fork()
    except BlockingIOError:
        refused += 1
        continue
    if pid == 0:
        os.close(write_end)
        os.read(read_end, 1)
        os._exit(0)
    children.append(pid)
print(len(children), refused, flush=True)
sys.stdin.readline()
os.close(write_end)
for pid in children:
    os.waitpid(pid, 0)
"""


class Workload:
    """A Python process that waits for ``go`` on stdin, then runs ``body``."""

    def __init__(self, body):
        self.process = subprocess.Popen(
            [HOST_PYTHON, "-I", "-S", "-c", "import sys\nsys.stdin.readline()\n" + body],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.pid = self.process.pid

    def place(self, paths):
        """Write the pid into cgroup.procs of each directory in a result's ``paths``."""
        for directory in sorted(set(paths.values())):
            with open(os.path.join(directory, "cgroup.procs"), "w") as handle:
                handle.write(str(self.pid))

    def go(self):
        self.send_line()

    def send_line(self):
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def read_line(self):
        return self.process.stdout.readline().decode().strip()

    def wait(self, timeout=60):
        return self.process.wait(timeout=timeout)

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        if self.alive():
            self.process.kill()
        self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()


def host_layout():
    """``unified``, ``hybrid`` or ``legacy``, from the filesystem types in /proc/self/mountinfo."""
    fstypes = {}
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            fstypes[fields[4]] = fields[fields.index("-") + 1]
    if fstypes.get(CGROUP_ROOT) == "cgroup2":
        return "unified"
    return "hybrid" if fstypes.get(CGROUP_ROOT + "/unified") == "cgroup2" else "legacy"


def project_parent(layout, controller):
    """The project's parent cgroup in the hierarchy holding ``controller``, made when missing.

    Returns (directory, None), or (None, why) when the host has no such
    controller. On v2 a controller's files appear in the parent only once
    the root passes the controller down, so it is enabled in the root's
    cgroup.subtree_control first: the one file outside the project's parent
    the project writes.
    """
    if layout != "unified":
        hierarchy = os.path.join(CGROUP_ROOT, controller)
        if not os.path.isdir(hierarchy):
            return None, "no %s hierarchy on this host" % controller
        parent = os.path.join(hierarchy, PROJECT_PARENT)
    else:
        if controller not in read(CGROUP_ROOT, "cgroup.controllers").split():
            return None, "the %s controller is not available on this host" % controller
        if controller not in read(CGROUP_ROOT, "cgroup.subtree_control").split():
            try:
                with open(os.path.join(CGROUP_ROOT, "cgroup.subtree_control"), "w") as handle:
                    handle.write("+" + controller)
            except OSError as exc:
                return None, "the kernel refuses to enable the %s controller at the root: %s" % (
                    controller, exc.strerror)
        parent = os.path.join(CGROUP_ROOT, PROJECT_PARENT)
    if not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    return parent, None


def missing_kernel_files(layout, controller, names):
    """None when the project's parent cgroup has one of ``names`` in ``controller``'s hierarchy, else why not."""
    parent, why = project_parent(layout, controller)
    if parent is None:
        return why
    if any(os.path.exists(os.path.join(parent, name)) for name in names):
        return None
    return "this kernel has no %s in %s" % (" or ".join(names), parent)


def directories_of(name):
    """Every directory of cgroup ``name`` on this host, in any hierarchy."""
    candidates = [os.path.join(CGROUP_ROOT, name)] + glob.glob(os.path.join(CGROUP_ROOT, "*", name))
    return sorted(directory for directory in candidates if os.path.isdir(directory))


def cgroups_of(pid):
    """{controller: path} from /proc/<pid>/cgroup; the v2 line under "unified"."""
    membership = {}
    with open("/proc/%d/cgroup" % pid) as handle:
        for line in handle.read().splitlines():
            _hierarchy, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else ["unified"]:
                membership[controller] = path
    return membership


def read(directory, filename):
    with open(os.path.join(directory, filename)) as handle:
        return handle.read().strip()


def force_remove(name, timeout=15.0):
    """Thaw, kill everything inside and remove cgroup ``name`` with its children, in every hierarchy."""
    deadline = time.monotonic() + timeout
    for directory in directories_of(name):
        for current, _subdirs, files in os.walk(directory, topdown=False):
            for control, thawed in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
                if control in files:
                    _write_quietly(os.path.join(current, control), thawed)
            while True:
                pids = [int(pid) for pid in _read_quietly(os.path.join(current, "cgroup.procs")).split()]
                if not pids or time.monotonic() > deadline:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.02)
            while os.path.isdir(current):
                try:
                    os.rmdir(current)
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)


def _read_quietly(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def _write_quietly(path, text):
    try:
        with open(path, "w") as handle:
            handle.write(text)
    except OSError:
        pass
