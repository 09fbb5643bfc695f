"""What the role left on each VM, checked over SSH against the VM's own kernel.

One VM boots the pure cgroup v1 hierarchy and one pure cgroup v2, so every
check below reads the files of the layout the host really has. The container
is looked at from outside (the VM's /proc and cgroup files) and from inside
(nsenter into its namespaces); the limits are proven by loads placed in its
cgroups. None of it goes through the collection's own code, except the check
of what the cgroup module reports.
"""

import pytest

testinfra_hosts = ["ansible://all"]

CONTAINER = "fleet-web"
CONTAINER_HOSTNAME = "fleet-web-box"
CGROUP = "handmade/" + CONTAINER
# The limits converge.yml sets.
MEMORY_LIMIT = 128 * 1024 * 1024
CPU_QUOTA_US, CPU_PERIOD_US = 50000, 100000
PIDS_MAX = 64

# Where each limit lives in each layout (DESIGN.md's v1 -> v2 mapping).
LIMIT_FILES = {
    "v1": {
        "memory/{cg}/memory.limit_in_bytes": str(MEMORY_LIMIT),
        "cpu/{cg}/cpu.cfs_quota_us": str(CPU_QUOTA_US),
        "cpu/{cg}/cpu.cfs_period_us": str(CPU_PERIOD_US),
        "pids/{cg}/pids.max": str(PIDS_MAX),
    },
    "v2": {
        "{cg}/memory.max": str(MEMORY_LIMIT),
        "{cg}/cpu.max": "%d %d" % (CPU_QUOTA_US, CPU_PERIOD_US),
        "{cg}/pids.max": str(PIDS_MAX),
    },
}
# The OOM kill counter and the CPU accounting, per layout.
OOM_EVENTS = {"v1": "memory/{cg}/memory.oom_control", "v2": "{cg}/memory.events"}
CPU_STAT = {"v1": "cpu/{cg}/cpu.stat", "v2": "{cg}/cpu.stat"}


def cgroup_file(template):
    return "/sys/fs/cgroup/" + template.format(cg=CGROUP)


def read(host, path):
    return host.file(path).content_string.strip()


def counters(text):
    """``key value`` lines (cpu.stat, memory.events, memory.oom_control) as a dict."""
    return {key: int(value) for key, value in (line.split() for line in text.splitlines()) if value.isdigit()}


@pytest.fixture(scope="module")
def host_vars(host):
    return host.ansible.get_variables()


@pytest.fixture(scope="module")
def expected_layout(host_vars):
    """The layout this VM was booted with (host_vars in molecule.yml)."""
    return host_vars["fleet_cgroup_layout"]


@pytest.fixture(scope="module")
def container_pid(host):
    """Host pid of the container's PID 1: the process in its cgroup whose
    innermost pid is 1 (the NSpid line lists one pid per pid namespace)."""
    procs = " ".join("/sys/fs/cgroup/%s/cgroup.procs" % path for path in (CGROUP, "pids/" + CGROUP))
    pids = host.check_output(
        "for pid in $(cat %s 2>/dev/null); do"
        " grep -q '^NSpid:.*[[:space:]]1$' /proc/$pid/status && echo $pid; done" % procs).split()
    assert len(pids) == 1, "expected one container init in cgroup %s, found %r" % (CGROUP, pids)
    return int(pids[0])


def quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


def in_container(host, pid, command):
    """Run ``command`` (a shell line for the container's busybox sh) inside
    the container's namespaces, entered from outside with util-linux nsenter.
    Only for commands that leave no orphans: the container's PID 1 is a shell
    that does not reap them."""
    return host.run("nsenter --target %d --all /bin/sh -c %s" % (pid, quote(command)))


def in_container_cgroup(host, pid, command):
    """Run ``command`` (a shell line for the VM's sh) in the container's
    cgroups, so that its limits apply, but with the VM's tools and in the VM's
    pid namespace, where systemd reaps whatever the load leaves behind."""
    # /proc/PID/cgroup: "id:controllers:path" per hierarchy ("0::path" on v2);
    # join every hierarchy where the container sits in its own cgroup. The
    # load runs in a child, so a kill by the kernel is an exit status here
    # (ssh reports a remote command killed by a signal as its own failure).
    join = (
        "while IFS=: read -r _ controllers path; do case $path in */%s)"
        " dir=/sys/fs/cgroup/${controllers#name=}; echo $$ > \"$dir$path/cgroup.procs\";;"
        " esac; done < /proc/%d/cgroup" % (CGROUP, pid))
    return host.run("%s; sh -c %s; exit $?" % (join, quote(command)))


def test_kernel_has_the_layout_the_vm_was_booted_with(host, expected_layout):
    filesystem = host.check_output("stat -fc %T /sys/fs/cgroup")
    assert {"cgroup2fs": "v2", "tmpfs": "v1"}[filesystem] == expected_layout
    if expected_layout == "v1":
        # Legacy, not hybrid: no cgroup2 mount next to the v1 controllers.
        assert "cgroup2" not in host.check_output("findmnt -rn -o FSTYPE -R /sys/fs/cgroup")


def test_cgroup_module_reports_the_hosts_layout(host, expected_layout):
    result = host.ansible("handmade.containers.cgroup", "name=%s" % CGROUP, check=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert result["version"] == expected_layout


def test_limit_files_hold_the_set_values(host, expected_layout):
    for template, value in LIMIT_FILES[expected_layout].items():
        assert read(host, cgroup_file(template)) == value, template


def test_container_init_is_pid_1_and_sees_no_host_process(host, container_pid):
    assert host.file("/proc/%d/ns/pid" % container_pid).linked_to != host.file("/proc/1/ns/pid").linked_to
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    # The shell expands the glob, then becomes cat: the container's PID 1
    # and that cat are all there is, nothing of the VM (systemd, sshd...).
    inside = in_container(host, container_pid, "cat /proc/1/comm /proc/[0-9]*/comm")
    assert inside.rc == 0, inside.stderr
    init_comm, *comms = inside.stdout.split()
    assert init_comm == "sh"
    assert sorted(comms) == ["cat", "sh"], "processes visible in the container: %s" % comms


def test_container_has_its_own_hostname(host, host_vars, container_pid):
    # Each VM is named after its inventory host (systemd.hostname= at boot).
    vm_hostname = host.check_output("hostname")
    assert vm_hostname == host_vars["inventory_hostname"]
    assert in_container(host, container_pid, "hostname").stdout.strip() == CONTAINER_HOSTNAME
    assert host.check_output("hostname") == vm_hostname


def test_memory_limit_oom_kills_an_allocation_over_it(host, expected_layout, container_pid):
    events = cgroup_file(OOM_EVENTS[expected_layout])
    before = counters(read(host, events)).get("oom_kill", 0)
    # dd's buffer is one block: a 200M block cannot fit under 128M.
    hog = in_container_cgroup(host, container_pid, "exec dd if=/dev/zero of=/dev/null bs=200M count=1")
    assert hog.rc == 128 + 9, "dd was not killed: rc=%d %s" % (hog.rc, hog.stderr)
    assert counters(read(host, events))["oom_kill"] == before + 1
    assert host.file("/proc/%d" % container_pid).is_directory, "the OOM kill took the container's PID 1"


def test_cpu_limit_throttles_a_busy_loop(host, expected_layout, container_pid):
    stat_file = cgroup_file(CPU_STAT[expected_layout])

    def usage_seconds():
        if expected_layout == "v1":
            return int(read(host, cgroup_file("cpuacct/{cg}/cpuacct.usage"))) / 1e9
        return counters(read(host, stat_file))["usage_usec"] / 1e6

    before_stat, before_usage = counters(read(host, stat_file)), usage_seconds()
    # Wall time on the VM's own clock, around the loop only.
    loop = in_container_cgroup(
        host, container_pid,
        "cut -d' ' -f1 /proc/uptime; timeout 4 sh -c 'while :; do :; done'; cut -d' ' -f1 /proc/uptime")
    start, end = (float(value) for value in loop.stdout.split())
    after_stat, after_usage = counters(read(host, stat_file)), usage_seconds()
    assert after_stat["nr_throttled"] > before_stat["nr_throttled"]
    share = (after_usage - before_usage) / (end - start)
    # Half a core; a loaded TCG VM can give the loop less, never more.
    assert share < 0.65, "the busy loop used %.2f of a core under a 0.5 cpus limit" % share


FORK_PROBE = """
import os, time
children, refused = [], 0
for _ in range(%d):
    try:
        pid = os.fork()
    except BlockingIOError:
        refused += 1
        continue
    if pid == 0:
        time.sleep(3)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print(len(children), refused)
"""


def test_pids_limit_refuses_forks_over_it(host, expected_layout, container_pid):
    prefix = "pids/{cg}/" if expected_layout == "v1" else "{cg}/"
    events = cgroup_file(prefix + "pids.events")
    before = counters(read(host, events))["max"]
    probe = in_container_cgroup(host, container_pid, "exec python3 -c %s" % quote(FORK_PROBE % (PIDS_MAX + 16)))
    assert probe.rc == 0, probe.stderr
    started, refused = (int(value) for value in probe.stdout.split())
    # The container's own processes and the probe itself hold the rest.
    assert started < PIDS_MAX and refused > 0
    assert counters(read(host, events))["max"] > before
