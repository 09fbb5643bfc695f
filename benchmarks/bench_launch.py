"""Launch latency of ns_exec's runtime, side by side with runc, bwrap and unshare.

Each tool starts /bin/true in the same static busybox rootfs, with new pid,
mount, uts, ipc, net and cgroup namespaces, and waits for it:

* ns_exec in-process: build_spec + run_container repeated in this warm
  Python, which is what a module pays once it is loaded;
* ns_exec fresh process: one ``python3 -I`` that imports the runtime and
  launches once (interpreter start included);
* runc run (OCI bundle made here with ``runc spec``), bwrap (rootfs bound as
  /, with --proc and --dev as ns_exec mounts them), and
  ``unshare --fork ... chroot`` (no /proc, no /dev, no pivot_root: the floor).

Peers and the fresh process are timed as whole processes from fork to reap.
Then the host-side footprint of a detached container: any process of ours
left beside its PID 1 (its log relay, logs.py), and its RSS.

Usage (as root): scripts/bench.sh launch   or   python benchmarks/bench_launch.py [--runs N]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
sys.path.insert(0, COLLECTIONS)

from ansible_collections.handmade.containers.plugins.module_utils._container import (  # noqa: E402
    launch,
    lifecycle,
    options,
    placement,
    record,
    spec,
    supervise,
)

HOST_PYTHON = os.environ.get("HANDMADE_HOST_PYTHON", "/usr/bin/python3")
BUSYBOX = "/bin/busybox"
CGROUP_PARENT = "/handmade/bench-launch-runc"

FRESH_LAUNCH = (
    "import sys; sys.path.insert(0, %r)\n"
    "from ansible_collections.handmade.containers.plugins.module_utils._container.lifecycle import ensure_state\n"
    "sys.exit(ensure_state({'state': 'run', 'rootfs': %r, 'command': ['/bin/true']})['rc'])\n"
)


def make_rootfs(parent):
    """A minimal rootfs: static busybox, its applet links, and the mount points."""
    rootfs = os.path.join(parent, "rootfs")
    for directory in ("bin", "proc", "dev", "sys", "tmp", "etc", "root"):
        os.makedirs(os.path.join(rootfs, directory))
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    for applet in ("sh", "true", "sleep", "ps"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as handle:
        handle.write("root:x:0:0:root:/root:/bin/sh\n")
    return rootfs


def make_runc_bundle(parent, rootfs):
    bundle = os.path.join(parent, "bundle")
    os.makedirs(bundle)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    with open(os.path.join(bundle, "config.json")) as handle:
        config = json.load(handle)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    config["root"] = {"path": rootfs, "readonly": False}
    config["hostname"] = "bench"
    config["linux"]["namespaces"] = [{"type": kind} for kind in ("pid", "network", "ipc", "uts", "mount", "cgroup")]
    # Under the project's own cgroup parent, never another manager's tree.
    config["linux"]["cgroupsPath"] = CGROUP_PARENT
    with open(os.path.join(bundle, "config.json"), "w") as handle:
        json.dump(config, handle)
    return bundle


def run_process(argv):
    """Wall time of running ``argv`` to completion, in milliseconds."""
    started = time.perf_counter()
    completed = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = (time.perf_counter() - started) * 1000
    if completed.returncode != 0:
        raise SystemExit("%s failed (rc=%d): %s" % (argv[0], completed.returncode, completed.stderr.decode()))
    return elapsed


def launch_in_process(rootfs, namespaces=None, seccomp="default", own_cgroup=True):
    """Wall time of one launch in this Python, in milliseconds: what state=run does, layer by layer.

    ``seccomp`` "unconfined" leaves the filter out; ``own_cgroup`` False
    leaves out the container's own cgroup (made in every hierarchy, device
    allowlist written, removed afterwards).
    """
    started = time.perf_counter()
    settings = options.settings({"rootfs": rootfs, "command": ["/bin/true"], "namespaces": namespaces,
                                 "seccomp": seccomp})
    container = spec.build_spec(settings)
    if own_cgroup:
        where = placement.prepare(container)
        try:
            result = launch.run_container(container, cgroup=where.cgroup)
        finally:
            where.remove()
    else:
        result = launch.run_container(container)
    elapsed = (time.perf_counter() - started) * 1000
    if result["rc"] != 0:
        raise SystemExit("ns_exec in-process failed: %r" % result)
    return elapsed


def fork_exec_in_process(rootfs):
    """The floor under any launch from Python: fork this process, exec /bin/true, reap it."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(os.path.join(rootfs, "bin", "true"), ["true"])
        finally:
            os._exit(127)
    os.waitpid(pid, 0)
    return (time.perf_counter() - started) * 1000


def cpu_ms():
    """CPU time used so far by this process and its reaped children, in milliseconds."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total * 1000


def rss_kb(pid, field="VmRSS:"):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def parent_of(pid):
    with open("/proc/%d/stat" % pid) as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def command_of(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as handle:
        return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()


def detached_footprint(rootfs):
    """Start a detached container from a short-lived process, as a module does; list what stays."""
    name = "bench-launch-footprint-%d" % os.getpid()
    starter = (
        "import sys, json; sys.path.insert(0, %r)\n"
        "from ansible_collections.handmade.containers.plugins.module_utils._container.lifecycle import ensure_state\n"
        "print(json.dumps(ensure_state({'name': %r, 'state': 'started', 'rootfs': %r,"
        " 'command': ['/bin/sleep', '600']})))\n" % (COLLECTIONS, name, rootfs))
    output = subprocess.run([HOST_PYTHON, "-I", "-c", starter], stdout=subprocess.PIPE, check=True).stdout
    pid = json.loads(output.decode())["pid"]
    try:
        parent = parent_of(pid)
        helpers = []
        # Anything of ours beside PID 1: its parent if that is one of our
        # programs, and any process holding the container's stdin fifo
        # outside the container's own process tree.
        if "ansible_collections" in command_of(parent) or "ns_exec" in command_of(parent):
            helpers.append(parent)
        for stray in record.find_strays(record.StateDir(name)):
            if stray != pid and parent_of(stray) != pid:
                helpers.append(stray)
        # The supervisor (supervisor.py), outside the container's cgroup.
        relays = [relay for relay, _start in supervise.find_supervisors(record.StateDir(name))]
        return {"pid1": pid, "pid1_rss_kb": rss_kb(pid), "parent": "%d (%s)" % (parent, command_of(parent) or "?"),
                "helpers": [(helper, command_of(helper), rss_kb(helper)) for helper in helpers],
                "relays": [(relay, "supervisor: " + command_of(relay)[-60:], rss_kb(relay), rss_kb(relay, "RssAnon:"))
                           for relay in relays]}
    finally:
        lifecycle.ensure_state({"name": name, "state": "absent", "stop_timeout": 0})


def remove_empty_own_cgroup_parent():
    """The runtime keeps the parent of the containers' own cgroups; the benchmark leaves nothing behind."""
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        for directory in (os.path.join("/sys/fs/cgroup", hierarchy, placement.OWN_CGROUP_PARENT),
                          os.path.join("/sys/fs/cgroup", placement.OWN_CGROUP_PARENT)):
            try:
                os.rmdir(directory)
            except OSError:
                pass  # absent, or still holding a container's cgroup


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=40, help="launches per tool (median reported)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: namespaces and mounts need it")

    workdir = tempfile.mkdtemp(prefix="bench-launch-")
    try:
        rootfs = make_rootfs(workdir)
        bundle = make_runc_bundle(workdir, rootfs)
        runc_state = os.path.join(workdir, "runc-state")
        peers = [
            ("runc run", ["runc", "--root", runc_state, "run", "--bundle", bundle, "bench-launch"]),
            ("bwrap", ["bwrap", "--bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev",
                       "--unshare-pid", "--unshare-uts", "--unshare-ipc", "--unshare-net", "--unshare-cgroup",
                       "/bin/true"]),
            ("unshare + chroot", ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup",
                                  "chroot", rootfs, "/bin/true"]),
            ("python3 -I -S -c pass", [HOST_PYTHON, "-I", "-S", "-c", "pass"]),
            ("python3 -I -c 'import ctypes'", [HOST_PYTHON, "-I", "-c", "import ctypes"]),
            ("ns_exec fresh python3 -I", [HOST_PYTHON, "-I", "-c", FRESH_LAUNCH % (COLLECTIONS, rootfs)]),
        ]
        measures = [
            ("ns_exec in-process", lambda: launch_in_process(rootfs)),
            ("  without its own cgroup + devices", lambda: launch_in_process(rootfs, own_cgroup=False)),
            ("  without that and seccomp",
             lambda: launch_in_process(rootfs, seccomp="unconfined", own_cgroup=False)),
            ("  same, pid+mount namespaces only",
             lambda: launch_in_process(rootfs, ["pid", "mount"], seccomp="unconfined", own_cgroup=False)),
            ("  floor: Python fork + exec + reap", lambda: fork_exec_in_process(rootfs)),
        ] + [(label, lambda argv=argv: run_process(argv)) for label, argv in peers]
        # Warm every tool once (page cache, first netns) before timing, then
        # take turns, so a burst of load on this shared machine hits every
        # tool alike instead of skewing whichever ran during it.
        samples = dict((label, []) for label, _measure in measures)
        cpu_samples = dict((label, []) for label, _measure in measures)
        for label, measure in measures:
            measure()
        for _round in range(args.runs):
            for label, measure in measures:
                before = cpu_ms()
                samples[label].append(measure())
                cpu_samples[label].append(cpu_ms() - before)
        figures = dict((label, statistics.median(values)) for label, values in samples.items())
        cpu = dict((label, statistics.median(values)) for label, values in cpu_samples.items())

        runc, bwrap = figures["runc run"], figures["bwrap"]
        print("\nStart /bin/true in a busybox rootfs (pid mount uts ipc net cgroup), %d runs each, median:\n"
              % args.runs)
        print("%-36s %9s %8s %8s %9s %8s" % ("tool", "wall ms", "/ bwrap", "/ runc", "CPU ms", "/ bwrap"))
        for label, value in figures.items():
            row = (label, value, value / bwrap, value / runc, cpu[label], cpu[label] / cpu["bwrap"])
            print("%-36s %9.2f %8.2f %8.2f %9.2f %8.2f" % row)
        print("\nCPU ms: user + system time of the launch, this process and its reaped children;"
              "\nit hardly moves with the load of other work on the machine (load average %.1f now)."
              % os.getloadavg()[0])
        print("\ntargets: in-process <= 1.2x bwrap (%.2f), fresh process < 0.7x runc (%.2f)"
              % (figures["ns_exec in-process"] / bwrap, figures["ns_exec fresh python3 -I"] / runc))

        footprint = detached_footprint(rootfs)
        print("\nDetached container (sleep 600) started by a process that then exits:")
        print("  PID 1: host pid %d, RSS %d kB (the command itself)" % (footprint["pid1"], footprint["pid1_rss_kb"]))
        print("  parent of PID 1: %s" % footprint["parent"])
        for pid, command, rss in footprint["helpers"]:
            print("  process of ours beside it: %d %s, RSS %d kB" % (pid, command, rss))
        for pid, command, rss, anon in footprint["relays"]:
            print("  process of ours beside it: %d (%s), RSS %d kB, of it private (RssAnon) %d kB;"
                  " in the container's cgroup" % (pid, command, rss, anon))
        if not footprint["helpers"] and not footprint["relays"]:
            print("  processes of ours beside it: none (0 kB)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        remove_empty_own_cgroup_parent()


if __name__ == "__main__":
    main()
