"""Making a limited cgroup: the cgroup module's code side by side with cgroup-tools.

One round is what a container start needs from cgroups: create the cgroup,
set memory 512M and half a core, read both back, remove it.

* module_utils in-process: ``ensure_present`` + ``ensure_absent`` repeated
  in this warm Python, which is what the module pays once it is loaded;
* module_utils fresh process: one ``python3 -I`` that imports the code and
  does one round (interpreter start included);
* cgroup-tools: ``cgcreate`` + ``cgset`` + ``cgget``, then one ``rmdir`` of
  every directory: four processes, once with the walkthrough's two
  controllers (memory, cpu) and once in the same hierarchies the module makes
  the cgroup in. (``cgdelete -g memory,cpu:/x`` from cgroup-tools 2.0.2
  removes the cgroup from the first hierarchy only, so rmdir stands in.)

Then the second, unchanged run of the module on localhost: the module
process as a task runs it on the host, and the whole ``ansible localhost -m``
command around it for reference (Ansible's own start dominates that one).

Usage (as root): scripts/bench.sh cgroup   or   python benchmarks/bench_cgroup.py [--runs N]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
sys.path.insert(0, COLLECTIONS)

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.layout import detect_layout  # noqa: E402
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import (  # noqa: E402
    ensure_absent,
    ensure_present,
    open_cgroup,
)

HOST_PYTHON = os.environ.get("HANDMADE_HOST_PYTHON", "/usr/bin/python3")
LIMITS = {"memory": "512M", "cpus": 0.5}
MEMORY_BYTES = 512 << 20
NAME_PREFIX = "handmade/bench-cgroup-%d" % os.getpid()

FRESH_ROUND = (
    "import sys; sys.path.insert(0, %r)\n"
    "from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import ensure_present, "
    "ensure_absent\n"
    "result = ensure_present(sys.argv[1], {'memory': '512M', 'cpus': 0.5})\n"
    "assert result['limits']['memory'] == %d, result\n"
    "ensure_absent(sys.argv[1])\n"
)


def timed(action, runs):
    """Median and spread of ``action()``'s wall time in milliseconds over ``runs`` runs (after one warm-up)."""
    action(-1)
    samples = []
    for run in range(runs):
        start = time.perf_counter()
        action(run)
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples), min(samples), max(samples)


def module_utils_round(run):
    name = "%s-inproc-%d" % (NAME_PREFIX, run)
    result = ensure_present(name, LIMITS)
    if result["limits"]["memory"] != MEMORY_BYTES or result["limits"]["cpu_quota"] != 50000:
        raise SystemExit("module_utils read back %r" % result["limits"])
    ensure_absent(name)


def fresh_process_round(run):
    name = "%s-fresh-%d" % (NAME_PREFIX, run)
    subprocess.run([HOST_PYTHON, "-I", "-c", FRESH_ROUND % (COLLECTIONS, MEMORY_BYTES), name], check=True)


def cgroup_tools_round(controllers):
    layout = detect_layout()

    def round_(run):
        path = "/%s-tools-%d" % (NAME_PREFIX, run)
        spec = "%s:%s" % (",".join(controllers), path)
        if layout == "unified":
            settings = ["-r", "memory.max=%d" % MEMORY_BYTES, "-r", "cpu.max=50000 100000"]
            reads = ["-r", "memory.max", "-r", "cpu.max"]
        else:
            settings = ["-r", "memory.limit_in_bytes=%d" % MEMORY_BYTES, "-r", "cpu.cfs_quota_us=50000"]
            reads = ["-r", "memory.limit_in_bytes", "-r", "cpu.cfs_quota_us"]
        subprocess.run(["cgcreate", "-g", spec], check=True)
        directories = [os.path.join(mount, path.lstrip("/")) for mount in _mounts(controllers, layout)]
        try:
            subprocess.run(["cgset"] + settings + [path], check=True)
            shown = subprocess.run(["cgget", "-n", "-v"] + reads + [path], check=True,
                                   stdout=subprocess.PIPE).stdout.decode()
            if str(MEMORY_BYTES) not in shown:
                raise SystemExit("cgget read back %r" % shown)
        finally:
            subprocess.run(["rmdir"] + directories, check=True)
    return round_


def _mounts(controllers, layout):
    if layout == "unified":
        return ["/sys/fs/cgroup"]
    hierarchies = open_cgroup(NAME_PREFIX).hierarchies
    return sorted(set(hierarchies[controller] for controller in controllers))


def unchanged_round(name):
    def run_(_run):
        if ensure_present(name, LIMITS)["changed"]:
            raise SystemExit("the second run changed something")
    return run_


def module_process_run(args_file):
    def run_(_run):
        # The interpreter that has ansible importable, as AnsiballZ's payload carries it.
        subprocess.run([sys.executable, "-m", "ansible_collections.handmade.containers.plugins.modules.cgroup", args_file],
                       check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=COLLECTIONS))
    return run_


def ansible_run(name):
    def run_(_run):
        output = subprocess.run(
            ["ansible", "localhost", "-c", "local", "-i", "localhost,", "-m", "handmade.containers.cgroup",
             "-a", json.dumps(dict(LIMITS, name=name))],
            check=True, stdout=subprocess.PIPE,
            env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_PYTHON_INTERPRETER=HOST_PYTHON,
                     ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal")).stdout.decode()
        if '"changed": false' not in output:
            raise SystemExit("the second run changed something: %s" % output)
    return run_


def row(label, figures, reference=None):
    median, fastest, slowest = figures
    ratio = "" if reference is None else "%6.2fx" % (median / reference)
    print("  %-66s %8.1f ms  (%.1f..%.1f)  %s" % (label, median, fastest, slowest, ratio))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=20, help="timed rounds per tool (default 20)")
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: cgroups need it")
    if not shutil.which("cgcreate"):
        raise SystemExit("cgcreate not found: apt-get install cgroup-tools (scripts/bench.sh installs it)")

    probe = open_cgroup(NAME_PREFIX)
    every_hierarchy = sorted(set(probe.hierarchies) - {"unified"}) or ["memory", "cpu"]
    print("cgroup: create + memory 512M + cpus 0.5 + read back + remove; layout %s, cgroup %s; median of %d runs"
          % (probe.layout, probe.version, options.runs))
    in_process = timed(module_utils_round, options.runs)
    row("module_utils, in-process (what the loaded module pays)", in_process)
    fresh = timed(fresh_process_round, options.runs)
    row("module_utils, fresh python3 -I process", fresh)
    tools_two = timed(cgroup_tools_round(["memory", "cpu"]), options.runs)
    row("cgcreate+cgset+cgget+rmdir, memory,cpu", tools_two, in_process[0])
    if probe.version == "v1":
        tools_all = timed(cgroup_tools_round(every_hierarchy), options.runs)
        row("same, in the module's %d hierarchies" % len(every_hierarchy), tools_all, in_process[0])
    print("  (ratio: the peer's median over module_utils in-process; above 1 means module_utils is faster)")

    name = "%s-second-run" % NAME_PREFIX
    args_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    try:
        json.dump({"ANSIBLE_MODULE_ARGS": dict(LIMITS, name=name)}, args_file)
        args_file.close()
        ensure_present(name, LIMITS)
        runs = max(3, options.runs // 4)
        print("\nsecond, unchanged run of handmade.containers.cgroup on localhost; median of %d runs" % runs)
        row("module_utils, in-process (read, compare, nothing written)", timed(unchanged_round(name), options.runs))
        row("the module process, as a task runs it on the host", timed(module_process_run(args_file.name), runs))
        if shutil.which("ansible"):
            row("ansible localhost -m handmade.containers.cgroup (whole command)", timed(ansible_run(name), runs))
    finally:
        os.unlink(args_file.name)
        ensure_absent(name)


if __name__ == "__main__":
    main()
