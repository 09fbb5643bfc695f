"""The scenario's containers, checked from the host after converge.

Each test reads what the kernel holds (/proc, the cgroup files), never what
the role reported, and knows both cgroup layouts: cgroup v1 (legacy and
hybrid hosts, where the v1 controllers do the limiting) and cgroup v2.
"""

import json

import pytest

NAMESPACES = ("pid", "mnt", "uts", "ipc", "net", "cgroup")
PAGE = 4096
DEFAULT_CPU_PERIOD_US = 100000
BUSY_LOOPS = ('i=0; pids=; while [ $i -lt 4 ]; do while :; do :; done & pids="$pids $!"; i=$((i + 1)); done; '
              'sleep 2; kill $pids; wait')


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = str(text)
    if text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


class Container:
    """One container of the scenario as the host sees it."""

    def __init__(self, host, spec, host_vars):
        self.host = host
        self.spec = spec
        self.name = spec["name"]
        self.hostname = spec.get("hostname") or self.name
        self.cgroup = "%s/%s" % (host_vars.get("container_cgroup_parent", "handmade"), self.name)
        self.rootfs = "%s/rootfs/%s" % (host_vars["scenario_dir"], self.name)
        self.unified = host.run("stat -f -c %T /sys/fs/cgroup").stdout.strip() == "cgroup2fs"

    def cgroup_dir(self, controller):
        if self.unified:
            return "/sys/fs/cgroup/%s" % self.cgroup
        return "/sys/fs/cgroup/%s/%s" % (controller, self.cgroup)

    def read(self, controller, filename):
        return self.host.file("%s/%s" % (self.cgroup_dir(controller), filename)).content_string

    def flat_keyed(self, controller, filename):
        return dict(line.split() for line in self.read(controller, filename).splitlines() if line.strip())

    def pids(self):
        return [int(pid) for pid in self.read("memory", "cgroup.procs").split()]

    def pid1(self):
        """Host pid of the process that is PID 1 of the container's PID namespace."""
        for pid in self.pids():
            status = self.host.file("/proc/%d/status" % pid)
            if not status.exists:
                continue
            nspid = [line.split()[1:] for line in status.content_string.splitlines() if line.startswith("NSpid:")]
            if nspid and nspid[0][-1] == "1" and len(nspid[0]) > 1:
                return pid
        raise AssertionError("no PID 1 of %s among the processes of its cgroup %s" % (self.name, self.pids()))

    def oom_kills(self):
        if self.unified:
            return int(self.flat_keyed("memory", "memory.events")["oom_kill"])
        return int(self.flat_keyed("memory", "memory.oom_control")["oom_kill"])

    def cpu_usage_usec(self):
        if self.unified:
            return int(self.flat_keyed("cpu", "cpu.stat")["usage_usec"])
        return int(self.read("cpuacct", "cpuacct.usage")) // 1000

    def exec_inside(self, command, **options):
        """Run ``command`` in the container, as `docker exec` would."""
        args = dict(options, name=self.name, state="exec", command=command)
        return self.host.ansible("handmade.containers.ns_exec", json.dumps(args), check=False)


@pytest.fixture(scope="module")
def containers(host):
    host_vars = host.ansible.get_variables()
    return [Container(host, spec, host_vars) for spec in host_vars["scenario_containers"]]


def host_namespace(host, kind):
    return host.run("readlink /proc/self/ns/%s" % kind).stdout.strip()


def test_pid1_runs_the_command_in_the_rootfs(host, containers):
    for container in containers:
        pid = container.pid1()
        # With init, PID 1 is the built-in init and the command its child.
        wanted = "handmade-init" if container.spec.get("init") else "/bin/sh"
        assert host.file("/proc/%d/cmdline" % pid).content_string.split("\0")[0] == wanted
        # Its root is the rootfs: the host sees it through /proc/<pid>/root.
        assert host.file("/proc/%d/root/etc/alpine-release" % pid).exists
        assert not host.file("/proc/%d/root%s" % (pid, container.rootfs)).exists


def test_each_namespace_is_its_own(host, containers):
    seen = {}
    for container in containers:
        pid = container.pid1()
        for kind in NAMESPACES:
            inside = host.file("/proc/%d/ns/%s" % (pid, kind)).linked_to
            assert inside != host_namespace(host, kind), "%s shares the host's %s namespace" % (container.name, kind)
            assert inside not in seen, "%s and %s share a %s namespace" % (container.name, seen.get(inside), kind)
            seen[inside] = container.name


def test_pid_namespace_hides_the_host(host, containers):
    for container in containers:
        result = container.exec_inside(["ps"])
        processes = result["stdout"].splitlines()[1:]
        # The shell (PID 1) and ps itself.
        assert len(processes) <= 3, processes
        assert processes[0].split()[0] == "1"


def test_hostname_is_its_own(host, containers):
    host_hostname = host.file("/proc/sys/kernel/hostname").content_string.strip()
    for container in containers:
        assert container.exec_inside(["hostname"])["stdout"].strip() == container.hostname
        assert container.hostname != host_hostname
    assert host.file("/proc/sys/kernel/hostname").content_string.strip() == host_hostname


def test_limits_are_in_the_cgroup_files(host, containers):
    for container in containers:
        memory = parse_size(container.spec["memory"])
        quota_us = int(round(float(container.spec["cpus"]) * DEFAULT_CPU_PERIOD_US))
        if container.unified:
            assert int(container.read("memory", "memory.max")) == memory
            assert container.read("cpu", "cpu.max").split() == [str(quota_us), str(DEFAULT_CPU_PERIOD_US)]
        else:
            # v1 rounds memory limits down to the page size.
            assert int(container.read("memory", "memory.limit_in_bytes")) == memory // PAGE * PAGE
            assert int(container.read("cpu", "cpu.cfs_quota_us")) == quota_us
            assert int(container.read("cpu", "cpu.cfs_period_us")) == DEFAULT_CPU_PERIOD_US
        assert int(container.read("pids", "pids.max")) == container.spec["pids_max"]


def test_every_process_is_in_the_cgroup(host, containers):
    for container in containers:
        pid = container.pid1()
        lines = host.file("/proc/%d/cgroup" % pid).content_string.splitlines()
        if container.unified:
            assert "0::/%s" % container.cgroup in lines
        else:
            for controller in ("memory", "cpu", "pids"):
                assert any(line.split(":")[2] == "/" + container.cgroup and controller in line.split(":")[1].split(",")
                           for line in lines), (controller, lines)


def test_no_mount_leaks_into_the_host(host, containers):
    host_mounts = host.file("/proc/self/mountinfo").content_string
    for container in containers:
        assert container.rootfs not in host_mounts
        inside_mounts = host.file("/proc/%d/mountinfo" % container.pid1()).content_string
        mount_points = [line.split()[4] for line in inside_mounts.splitlines()]
        assert "/proc" in mount_points and "/dev" in mount_points


def test_memory_limit_kills_an_allocation_beyond_it(host, containers):
    container = containers[0]
    too_much = parse_size(container.spec["memory"]) * 3 // 2
    before = container.oom_kills()
    result = container.exec_inside(["dd", "if=/dev/zero", "of=/dev/null", "bs=%d" % too_much, "count=1"])
    assert result["rc"] != 0
    assert container.oom_kills() > before
    # The OOM killer took the allocation, not the container.
    assert container.pid1()


def test_cpu_limit_throttles_a_busy_loop(host, containers):
    container = containers[0]
    cpus = float(container.spec["cpus"])
    throttled_before = int(container.flat_keyed("cpu", "cpu.stat")["nr_throttled"])
    usage_before = container.cpu_usage_usec()
    # Four loops want four cores, far above the limit even on a busy host; the
    # shell stops and reaps them itself.
    result = container.exec_inside(["sh", "-c", BUSY_LOOPS])
    used = (container.cpu_usage_usec() - usage_before) / 1e6
    assert int(container.flat_keyed("cpu", "cpu.stat")["nr_throttled"]) > throttled_before
    # The quota caps the share: what the loops got over their wall time stays under it.
    assert used / result["elapsed"] <= cpus * 1.15, (used, result["elapsed"])


def test_the_supervisor_checks_health_and_restarts_what_asks_for_it(host, containers):
    """container_info tells what the supervisor found: the health check passes, the policy is kept."""
    for container in containers:
        found = host.ansible("handmade.containers.container_info", "name=%s" % container.name, check=False)
        facts = found["containers"][0]
        assert facts["state"] == "running", facts
        if container.spec.get("healthcheck"):
            assert facts["health"]["status"] == "healthy", facts["health"]
            assert facts["restart_policy"] == "always"
        else:
            assert facts["health"] is None and facts["restart_policy"] == "no", facts
