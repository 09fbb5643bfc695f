"""The built-in init of ``init: true`` side by side with tini, the init of ``docker run --init``.

* resident memory (VmRSS) of each init while it runs ``sleep``: the
  built-in init straight from its bytes (init_program.py), Debian's
  tini-static and tini (dynamic, with libc), each started the same way;
* the same figure for the init as PID 1 of a detached container;
* ``state: stopped`` of a detached shell (the role's default command),
  with the init and without: without, the shell as PID 1 ignores SIGTERM
  and the stop waits out ``stop_timeout`` (2 s here) before SIGKILL.

Usage (as root): scripts/bench.sh init   or   python benchmarks/bench_init.py [--runs N]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
sys.path.insert(0, COLLECTIONS)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from bench_launch import make_rootfs  # noqa: E402 (needs the path above)
from ansible_collections.handmade.containers.plugins.module_utils._container import init_program  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.lifecycle import ensure_state  # noqa: E402

STOP_TIMEOUT = 2.0


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as status:
        return int([line for line in status if line.startswith("VmRSS:")][0].split()[1])


def rss_of(argv):
    """VmRSS of ``argv`` (an init running sleep) once it has settled, in kB."""
    proc = subprocess.Popen(argv)
    try:
        time.sleep(0.3)
        return rss_kb(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def stop_seconds(rootfs, init):
    name = "bench-init-%s" % uuid.uuid4().hex[:8]
    started = ensure_state({"name": name, "state": "started", "rootfs": rootfs, "command": ["/bin/sh"],
                            "init": init, "stop_timeout": STOP_TIMEOUT})
    begun = time.perf_counter()
    ensure_state({"name": name, "state": "stopped"})
    elapsed = time.perf_counter() - begun
    ensure_state({"name": name, "state": "absent"})
    return elapsed, started["pid"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: containers need namespaces, mounts and cgroups")
    workdir = tempfile.mkdtemp(prefix="handmade-bench-init-")
    builtin = os.path.join(workdir, "init")
    with open(builtin, "wb") as handle:
        handle.write(init_program.program_for(os.uname()[4]))
    os.chmod(builtin, 0o755)
    rootfs = make_rootfs(workdir)

    print("resident memory of an init running sleep (VmRSS):")
    for label, argv in (("built-in init (init: true)", [builtin, "/bin/sleep", "sleep", "30"]),
                        ("tini-static (docker run --init)", ["tini-static", "-s", "--", "sleep", "30"]),
                        ("tini (dynamic)", ["tini", "-s", "--", "sleep", "30"])):
        print("  %-44s %6d kB" % (label, rss_of(argv)))

    with_init, without = [], []
    for _run in range(args.runs):
        with_init.append(stop_seconds(rootfs, init=True)[0])
        without.append(stop_seconds(rootfs, init=False)[0])
    name = "bench-init-rss-%s" % uuid.uuid4().hex[:8]
    pid = ensure_state({"name": name, "state": "started", "rootfs": rootfs, "command": ["/bin/sh"],
                        "init": True})["pid"]
    try:
        print("  %-44s %6d kB" % ("built-in init as PID 1 of a container", rss_kb(pid)))
    finally:
        ensure_state({"name": name, "state": "absent", "stop_timeout": 0})
    print("state: stopped of a detached /bin/sh, stop_timeout %.0f s, %d runs, median (min-max):"
          % (STOP_TIMEOUT, args.runs))
    for label, times in (("init: true (SIGTERM forwarded)", with_init),
                         ("init: false (SIGTERM dropped, then SIGKILL)", without)):
        print("  %-44s %7.0f ms  (%.0f-%.0f)"
              % (label, statistics.median(times) * 1000, min(times) * 1000, max(times) * 1000))


if __name__ == "__main__":
    main()
