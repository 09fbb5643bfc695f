"""Docker's default seccomp filter: what building and installing it costs, and what it costs each syscall.

* compile, warm: ``compile_filter`` of the default profile for Docker's 14
  capabilities in this (warm) Python, and ``pack`` of the result;
* fresh interpreter: one ``python3 -I -S`` per run that imports what a
  launch imports anyway (_syscalls, with ctypes), then the seccomp module
  with its tables and Docker's profile, sets no_new_privs, builds the packed
  filter (``prepare``) and installs it, each step timed inside the process:
  what a container start pays, since every task runs in a fresh interpreter;
* per syscall: a forked child times a loop of ``getppid()`` before and after
  installing the filter; the difference is the filter's cost per call
  (getppid sits in the middle of the number range, a typical depth of the
  binary search).

Median (and min..max) of N runs. Usage (as root or not; no_new_privs is
set in the children only): python benchmarks/bench_seccomp.py [--runs N]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
sys.path.insert(0, COLLECTIONS)

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._capabilities import (  # noqa: E402
    DEFAULT_CAPABILITIES,
)
from ansible_collections.handmade.containers.plugins.module_utils._container import seccomp  # noqa: E402

HOST_PYTHON = os.environ.get("HANDMADE_HOST_PYTHON", "/usr/bin/python3")

FRESH = r"""
import sys, time
clock, cpu = time.perf_counter, time.thread_time
marks = [(clock(), cpu())]
sys.path.insert(0, %(collections)r)
from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_
from ansible_collections.handmade.containers.plugins.module_utils._container import errors
marks.append((clock(), cpu()))
from ansible_collections.handmade.containers.plugins.module_utils._container import seccomp
marks.append((clock(), cpu()))
sys_.prctl(sys_.PR_SET_NO_NEW_PRIVS, 1)
marks.append((clock(), cpu()))
program = seccomp.prepare("default", %(caps)r)
marks.append((clock(), cpu()))
seccomp.install(program)
marks.append((clock(), cpu()))
steps = [(marks[1], marks[0]), (marks[2], marks[1]), (marks[4], marks[3]), (marks[5], marks[4])]
print(" ".join("%%f %%f" %% (end[0] - start[0], end[1] - start[1]) for end, start in steps))
"""


def summary(values, unit="ms", scale=1e3):
    values = [value * scale for value in values]
    return "median %.3f %s (%.3f..%.3f)" % (statistics.median(values), unit, min(values), max(values))


def warm(runs):
    compile_times, pack_times = [], []
    program = None
    for _run in range(runs + 1):
        start = time.perf_counter()
        program = seccomp.compile_filter(seccomp.DEFAULT_PROFILE, DEFAULT_CAPABILITIES)
        middle = time.perf_counter()
        seccomp.pack(program)
        end = time.perf_counter()
        compile_times.append(middle - start)
        pack_times.append(end - middle)
    return compile_times[1:], pack_times[1:], len(program)


def fresh(runs):
    script = FRESH % {"collections": COLLECTIONS, "caps": list(DEFAULT_CAPABILITIES)}
    rows = []
    for _run in range(runs + 1):
        output = subprocess.run([HOST_PYTHON, "-I", "-S", "-c", script], check=True, stdout=subprocess.PIPE)
        rows.append([float(field) for field in output.stdout.split()])
    return rows[1:]


def per_syscall(runs, calls=200000):
    """Nanoseconds per getppid() without and with the filter, in forked children."""
    results = []
    for _run in range(runs):
        reader, writer = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                os.close(reader)
                getppid = os.getppid
                loop = range(calls)
                start = time.perf_counter()
                for _call in loop:
                    getppid()
                bare = time.perf_counter() - start
                sys_.prctl(sys_.PR_SET_NO_NEW_PRIVS, 1)
                seccomp.install(seccomp.prepare("default", DEFAULT_CAPABILITIES))
                start = time.perf_counter()
                for _call in loop:
                    getppid()
                filtered = time.perf_counter() - start
                os.write(writer, json.dumps([bare / calls, filtered / calls]).encode())
            finally:
                os._exit(0)
        os.close(writer)
        with os.fdopen(reader) as handle:
            results.append(json.loads(handle.read()))
        os.waitpid(child, 0)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    compile_times, pack_times, length = warm(args.runs * 10)
    print("default filter: %d instructions (Docker's 14 capabilities, %s)" % (length, os.uname().machine))
    print("compile, warm Python:      %s" % summary(compile_times))
    print("pack, warm Python:         %s" % summary(pack_times))

    rows = fresh(args.runs)
    print("fresh interpreter (%s -I -S), %d runs; wall time, then CPU time of the thread:" % (HOST_PYTHON, args.runs))
    steps = ("import _syscalls, errors (ctypes; a launch imports them anyway)", "import seccomp and its data",
             "prepare (compile + pack)", "install (seccomp(2))")
    for step, label in enumerate(steps):
        print("  %-62s %s | CPU %s" % (label + ":", summary([row[2 * step] for row in rows]),
                                       summary([row[2 * step + 1] for row in rows])))
    print("  %-62s %s | CPU %s" % ("prepare + install:", summary([row[4] + row[6] for row in rows]),
                                   summary([row[5] + row[7] for row in rows])))

    calls = per_syscall(max(5, args.runs // 2))
    bare = [row[0] for row in calls]
    filtered = [row[1] for row in calls]
    print("getppid() from Python, %d children:" % len(calls))
    print("  without filter:          %s" % summary(bare, "us", 1e6))
    print("  with the default filter: %s" % summary(filtered, "us", 1e6))
    # The fastest run of each is the one least disturbed by the rest of the
    # machine; their difference is the steadier estimate on a busy host.
    print("  filter's share:          %.0f ns per call (fastest runs), %.0f ns (medians)" % (
        (min(filtered) - min(bare)) * 1e9, (statistics.median(filtered) - statistics.median(bare)) * 1e9))


if __name__ == "__main__":
    main()
