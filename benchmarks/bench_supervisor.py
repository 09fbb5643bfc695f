"""What a container's supervisor costs, and how soon it brings a killed container back.

* resident memory (VmRSS, and the private part RssAnon) of the supervisor
  beside the container's own PID 1 (a shell), and beside a bare
  ``python3 -I -S`` and a fork of the module's process, the two other ways
  it could have been built;
* the supervisor's CPU time over an idle minute's tenth (6 s) and over 6 s
  of a container printing 50 000 lines a second into its log;
* restart latency of ``restart_policy: always``: from kill -9 of PID 1 to
  the new PID 1 running, median of the runs (the back-off's first 100 ms
  included, as with ``docker run --restart always``);
* one health check: its wall time as the supervisor records it and the
  CPU time of the probe process it starts, beside ``nsenter`` running the
  same command in the container's namespaces (an exec with nothing of the
  container's security applied).

Usage (as root): scripts/bench.sh supervisor   or   python benchmarks/bench_supervisor.py [--runs N]
"""

import argparse
import os
import signal
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
from ansible_collections.handmade.containers.plugins.module_utils._container import supervise  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.lifecycle import ensure_state  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._container.record import StateDir  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def memory_kb(pid):
    with open("/proc/%d/status" % pid) as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields["VmRSS"].split()[0]), int(fields["RssAnon"].split()[0])


def cpu_ms(pid, children=False):
    """CPU time of ``pid`` (``children``: of its children that it reaped) in ms."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    first = 13 if children else 11
    return (int(fields[first]) + int(fields[first + 1])) * 1000.0 / TICKS


def supervisor_of(name):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = supervise.find_supervisors(StateDir(name))
        if found:
            time.sleep(0.3)  # its interpreter settled
            return found[0][0]
        time.sleep(0.02)
    raise SystemExit("no supervisor for %s" % name)


def started(rootfs, command, **extra):
    name = "bench-supervisor-%s" % uuid.uuid4().hex[:8]
    result = ensure_state(dict({"name": name, "state": "started", "rootfs": rootfs, "command": command}, **extra))
    return name, result["pid"]


def peer_memory(argv):
    proc = subprocess.Popen(argv)
    try:
        time.sleep(0.3)
        return memory_kb(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def module_fork_memory():
    """A fork of a process that imported the launch code, as a supervisor that never execs would be."""
    code = ("import sys, time; sys.path.insert(0, %r); "
            "from ansible_collections.handmade.containers.plugins.module_utils._container import lifecycle; "
            "time.sleep(30)" % COLLECTIONS)
    return peer_memory([sys.executable, "-c", code])


def restart_latency(rootfs, runs):
    name, pid = started(rootfs, ["/bin/sleep", "1000"], restart_policy="always")
    times = []
    try:
        supervisor_of(name)
        for _run in range(runs):
            old = StateDir(name).read().pid
            begun = time.perf_counter()
            os.kill(old, signal.SIGKILL)
            while True:
                current = StateDir(name).read()
                if current is not None and current.pid != old and current.is_running():
                    break
                time.sleep(0.002)
            times.append(time.perf_counter() - begun)
            time.sleep(10.5)  # past the 10 s after which the back-off starts again from 100 ms
    finally:
        ensure_state({"name": name, "state": "absent", "stop_timeout": 0})
    return times


def health_check_cost(rootfs, window=8.0):
    """(median wall ms, CPU ms per check, checks seen) of a check of ["true"] every second."""
    name, pid = started(rootfs, ["/bin/sleep", "1000"], healthcheck={"test": ["CMD", "true"], "interval": 1})
    try:
        supervisor = supervisor_of(name)
        seen = {}
        before = cpu_ms(supervisor, children=True)
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            for entry in (supervise.read_status(StateDir(name)).get("health") or {}).get("log") or []:
                seen[entry["start"]] = entry["end"] - entry["start"]
            time.sleep(0.05)
        spent = cpu_ms(supervisor, children=True) - before
    finally:
        ensure_state({"name": name, "state": "absent", "stop_timeout": 0})
    return statistics.median(seen.values()) * 1000, spent / max(1, len(seen)), len(seen)


def nsenter_exec_ms(rootfs, runs=5):
    name, pid = started(rootfs, ["/bin/sleep", "1000"])
    times = []
    try:
        for _run in range(runs):
            begun = time.perf_counter()
            subprocess.run(["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "true"],
                           check=True)
            times.append(time.perf_counter() - begun)
    finally:
        ensure_state({"name": name, "state": "absent", "stop_timeout": 0})
    return statistics.median(times) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: containers need namespaces, mounts and cgroups")
    rootfs = make_rootfs(tempfile.mkdtemp(prefix="handmade-bench-supervisor-"))

    print("resident memory, VmRSS (private RssAnon):")
    name, pid = started(rootfs, ["/bin/sh"])
    try:
        supervisor = supervisor_of(name)
        for label, (rss, anon) in (("supervisor of one container", memory_kb(supervisor)),
                                   ("the container's PID 1 (/bin/sh)", memory_kb(pid)),
                                   ("bare python3 -I -S (the floor)", peer_memory([sys.executable, "-I", "-S", "-c",
                                                                                  "import time; time.sleep(30)"])),
                                   ("a fork of the module's process", module_fork_memory())):
            print("  %-44s %6d kB  (%d kB)" % (label, rss, anon))
        before = cpu_ms(supervisor)
        time.sleep(6)
        idle = cpu_ms(supervisor) - before
    finally:
        ensure_state({"name": name, "state": "absent", "stop_timeout": 0})
    name, pid = started(rootfs, ["/bin/sh", "-c", "while :; do seq 1 50000; sleep 1; done"])
    try:
        supervisor = supervisor_of(name)
        before, container_before = cpu_ms(supervisor), cpu_ms(pid)
        time.sleep(6)
        busy, container_busy = cpu_ms(supervisor) - before, cpu_ms(pid) - container_before
    finally:
        ensure_state({"name": name, "state": "absent", "stop_timeout": 0})
    print("CPU time of the supervisor over 6 s:")
    print("  %-44s %6.0f ms" % ("idle container", idle))
    print("  %-44s %6.0f ms  (its shell: %.0f ms, children not counted)"
          % ("container printing 50 000 lines/s", busy, container_busy))
    times = restart_latency(rootfs, args.runs)
    print("restart_policy always, kill -9 of PID 1 until the new PID 1 runs, %d runs, median (min-max):" % args.runs)
    print("  %-44s %6.0f ms  (%.0f-%.0f)" % ("handmade supervisor + launcher", statistics.median(times) * 1000,
                                             min(times) * 1000, max(times) * 1000))
    wall, cpu, checks = health_check_cost(rootfs)
    print("one health check of [CMD, true], every second (%d checks seen), median:" % checks)
    print("  %-44s %6.0f ms  (CPU %.0f ms per check)" % ("handmade probe (seccomp, caps, cgroup)", wall, cpu))
    print("  %-44s %6.0f ms" % ("nsenter into PID 1's namespaces, true", nsenter_exec_ms(rootfs)))


if __name__ == "__main__":
    main()
