# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Applying the device allowlist: the v1 devices files side by side with the v2 BPF program.

One round makes Docker's default list (12 rules, deny everything first) the
rules of a cgroup that exists already, as a container start does once:

* v1: ``set_device_rules`` of the v1 driver: "a" to devices.deny, then one
  devices.allow write per rule; beside it the same 13 writes by one
  ``sh`` with ``echo`` redirections, as by hand;
* BPF: the program assembled in Python (no kernel call), loaded alone, and
  the whole ``set_device_rules`` of the v2 driver: assemble, load, attach
  with BPF_F_ALLOW_MULTI and detach the previous round's program;
* both again with 64 devices passed through (76 rules), to show how each
  grows with the list.

On a hybrid host the v2 cgroup lives under /sys/fs/cgroup/unified, where
the kernel runs the program as on a unified host.

Usage (as root): scripts/bench.sh devices   or   python benchmarks/bench_devices.py [--runs N]
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
sys.path.insert(0, COLLECTIONS)

from ansible_collections.handmade.containers.plugins.module_utils._cgroup import devices  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.layout import detect_layout  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import open_cgroup  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._devices import (  # noqa: E402
    DeviceRule,
    allowed_rules,
)

NAME = "handmade/bench-devices-%d" % os.getpid()
DEFAULTS = allowed_rules()
# 64 loop-like block devices passed through read-write.
MANY = allowed_rules([DeviceRule("b", 7, minor, "rw") for minor in range(64)])


def timed(action, runs):
    """Median, fastest and slowest wall time of ``action()`` in milliseconds over ``runs`` runs (after one warm-up)."""
    action()
    samples = []
    for _run in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples), min(samples), max(samples)


def row(label, figures, reference=None):
    median, fastest, slowest = figures
    ratio = "" if reference is None else "%6.2fx" % (median / reference)
    print("  %-58s %8.3f ms  (%.3f..%.3f)  %s" % (label, median, fastest, slowest, ratio))


def by_hand(directory, rules):
    script = "".join("echo '%s' > %s/%s\n" % (text, directory, filename)
                     for filename, text in devices.v1_writes(rules))
    return lambda: subprocess.run(["sh", "-c", script], check=True)


def load_only(rules):
    def load():
        os.close(devices.load_device_filter(rules))
    return load


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=200, help="timed rounds per row (default 200)")
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: cgroups and bpf(2) need it")
    layout = detect_layout()
    v1 = open_cgroup(NAME, version="v1") if layout != "unified" else None
    v2 = open_cgroup(NAME, version="v2") if layout != "legacy" else None
    try:
        print("devices: make the allowlist a cgroup's rules; layout %s; median of %d runs, milliseconds"
              % (layout, options.runs))
        for label, rules in (("Docker's defaults", DEFAULTS), ("defaults + 64 devices", MANY)):
            print("\n%s: %d rules, %d BPF instructions" % (label, len(rules), len(devices.device_filter_program(rules))))
            reference = None
            if v1 is not None:
                v1.create()
                reference = timed(lambda: v1.set_device_rules(rules), options.runs)
                row("v1: devices.deny a + one devices.allow write per rule", reference)
                by_hand_runs = max(10, options.runs // 10)
                row("v1: the same writes by one sh with echo",
                    timed(by_hand(v1.paths["devices"], rules), by_hand_runs), reference[0])
            if v2 is not None:
                v2.create()
                row("BPF: assemble + encode the program (Python only)",
                    timed(lambda: devices.encode_program(devices.device_filter_program(rules)), options.runs),
                    reference and reference[0])
                row("BPF: load (bpf PROG_LOAD, verifier)", timed(load_only(rules), options.runs),
                    reference and reference[0])
                row("BPF: assemble + load + attach + detach the previous one",
                    timed(lambda: v2.set_device_rules(rules), options.runs), reference and reference[0])
        if v1 is not None:
            print("  (ratio: the row's median over v1's set_device_rules)")
    finally:
        for cgroup in (v1, v2):
            if cgroup is not None:
                cgroup.remove(kill=True)


if __name__ == "__main__":
    main()
