"""handmade.containers.cgroup on the real kernel.

Every test detects the host's layout and checks the files of the version in
use, so the same tests run on this hybrid machine and in the cgroup v1 and
v2 virtual machines. Each test works below handmade/test-cgroup-*, and its
fixture removes that cgroup and kills its processes even when it fails.
"""

import os
import shutil
import time
import uuid

import pytest

from cgroup_helpers import (
    ALLOCATE_400M,
    BUSY_LOOP_8S,
    FORK_BOMB,
    SLEEP_300S,
    Workload,
    cgroups_of,
    directories_of,
    force_remove,
    host_layout,
    missing_kernel_files,
    read,
)
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.limits import LIMIT_OPTIONS
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import CgroupError, open_existing

LAYOUT = host_layout()
VERSION = "v2" if LAYOUT == "unified" else "v1"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20


@pytest.fixture
def cgroup_name(request):
    name = "handmade/test-cgroup-%s-%s" % (request.node.name.replace("_", "-")[5:40].strip("-[]"), uuid.uuid4().hex[:6])
    name = "".join(char if char.isalnum() or char in "/_.-" else "-" for char in name)
    yield name
    force_remove(name)
    assert directories_of(name) == []


@pytest.fixture
def workloads():
    started = []

    def start(body):
        workload = Workload(body)
        started.append(workload)
        return workload
    yield start
    for workload in started:
        workload.stop()


@pytest.fixture
def cgroup(run_module):
    """``cgroup(args, **kwargs)``: run the module and insist it did not fail."""
    def call(args, **kwargs):
        result = run_module("cgroup", args, **kwargs)
        assert not result["failed"], result.get("msg")
        return result
    return call


def limit_file(result, v1_controller, v1_file, v2_file):
    """Text of a limit's file in the version the module used."""
    if result["version"] == "v1":
        return read(result["paths"][v1_controller], v1_file)
    return read(result["paths"]["unified"], v2_file)


# The kernel's own files that show it can hold each option's limit, for v1
# and for v2: (controller, any one of these files). A test skips only when
# the project's parent cgroup lacks them (swap accounting off, no CFS
# bandwidth, no proportional I/O scheduler), never on what the module says.
KERNEL_FILES = {
    "memory": (("memory", "memory.limit_in_bytes"), ("memory", "memory.max")),
    "memory_swap": (("memory", "memory.memsw.limit_in_bytes"), ("memory", "memory.swap.max")),
    "memory_reservation": (("memory", "memory.soft_limit_in_bytes"), ("memory", "memory.low")),
    "cpus": (("cpu", "cpu.cfs_period_us", "cpu.cfs_quota_us"), ("cpu", "cpu.max")),
    "cpu_quota": (("cpu", "cpu.cfs_period_us", "cpu.cfs_quota_us"), ("cpu", "cpu.max")),
    "cpu_weight": (("cpu", "cpu.shares"), ("cpu", "cpu.weight")),
    "pids_max": (("pids", "pids.max"), ("pids", "pids.max")),
    "cpuset_cpus": (("cpuset", "cpuset.cpus"), ("cpuset", "cpuset.cpus")),
    "io_weight": (("blkio", "blkio.weight", "blkio.bfq.weight"), ("io", "io.weight")),
}


def require_kernel_files(option):
    """Skip unless this kernel has the files of ``option``'s limit, looked up in the project's parent cgroup."""
    v1, v2 = KERNEL_FILES[option]
    controller, names = (v1[0], v1[1:]) if VERSION == "v1" else (v2[0], v2[1:])
    why = missing_kernel_files(LAYOUT, controller, names)
    if why:
        pytest.skip(why)


# -- create, read back, idempotence ------------------------------------------

def test_create_writes_the_files_and_second_run_changes_nothing(cgroup, cgroup_name):
    args = {"name": cgroup_name, "memory": "256M", "cpus": 0.5, "pids_max": 64}
    first = cgroup(args)
    assert first["changed"] is True
    assert (first["version"], first["layout"]) == (VERSION, LAYOUT)
    assert limit_file(first, "memory", "memory.limit_in_bytes", "memory.max") == str(256 * MIB)
    if VERSION == "v1":
        assert read(first["paths"]["cpu"], "cpu.cfs_quota_us") == "50000"
        assert read(first["paths"]["cpu"], "cpu.cfs_period_us") == "100000"
        # cpuset cpus/mems were copied from the parent, or no process could join.
        assert read(first["paths"]["cpuset"], "cpuset.cpus") != ""
        assert read(first["paths"]["cpuset"], "cpuset.mems") != ""
    else:
        assert read(first["paths"]["unified"], "cpu.max") == "50000 100000"
    assert limit_file(first, "pids", "pids.max", "pids.max") == "64"
    assert first["limits"]["memory"] == 256 * MIB
    assert first["limits"]["cpus"] == 0.5
    assert first["limits"]["pids_max"] == 64
    assert set(first["limits"]) == set(LIMIT_OPTIONS)
    assert first["stats"]["procs"] == [] and first["stats"]["memory_current"] is not None

    second = cgroup(args)
    assert second["changed"] is False
    assert second["limits"] == first["limits"]


def test_same_value_in_another_spelling_changes_nothing(cgroup, cgroup_name):
    cgroup({"name": cgroup_name, "memory": "256M", "cpus": 0.5, "pids_max": 64})
    again = cgroup({"name": cgroup_name, "memory": 256 * MIB + 100, "cpu_quota": 50000, "cpu_period": 100000,
                    "pids_max": "64"})
    # 256M + 100 bytes is held as 256M: the kernel rounds down to pages.
    assert again["changed"] is False


# Each option three times, as community.docker tests its options: set it,
# set it again (no change), change it (written in place).
OPTION_CASES = [
    ("memory", {"memory": "128M"}, {"memory": "192M"},
     ("memory", "memory.limit_in_bytes", "memory.max"), str(192 * MIB)),
    ("memory_swap", {"memory": "128M", "memory_swap": "256M"}, {"memory": "128M", "memory_swap": "384M"},
     ("memory", "memory.memsw.limit_in_bytes", "memory.swap.max"), None),
    ("memory_reservation", {"memory_reservation": "64M"}, {"memory_reservation": "96M"},
     ("memory", "memory.soft_limit_in_bytes", "memory.low"), str(96 * MIB)),
    ("cpus", {"cpus": 0.5}, {"cpus": 1.5}, ("cpu", "cpu.cfs_quota_us", "cpu.max"), None),
    ("cpu_quota", {"cpu_quota": 20000, "cpu_period": 50000}, {"cpu_quota": 30000, "cpu_period": 50000},
     ("cpu", "cpu.cfs_quota_us", "cpu.max"), None),
    ("cpu_weight", {"cpu_weight": 50}, {"cpu_weight": 200}, ("cpu", "cpu.shares", "cpu.weight"), None),
    ("pids_max", {"pids_max": 32}, {"pids_max": "max"}, ("pids", "pids.max", "pids.max"), "max"),
    ("cpuset_cpus", {"cpuset_cpus": "0"}, {"cpuset_cpus": "0-%d" % (os.cpu_count() - 1)},
     ("cpuset", "cpuset.cpus", "cpuset.cpus"), None),
    ("io_weight", {"io_weight": 500}, {"io_weight": 800}, ("blkio", None, None), None),
]


@pytest.mark.parametrize("option, first, changed, files, expected_text", OPTION_CASES,
                         ids=[case[0] for case in OPTION_CASES])
def test_each_option_set_again_and_changed(run_module, cgroup_name, option, first, changed, files, expected_text):
    require_kernel_files(option)
    if option == "cpuset_cpus" and os.cpu_count() < 2:
        pytest.skip("one CPU: no other cpuset to change to")
    result = run_module("cgroup", dict(first, name=cgroup_name))
    assert not result["failed"], result.get("msg")
    assert result["changed"] is True

    again = run_module("cgroup", dict(first, name=cgroup_name))
    assert again["changed"] is False, again
    assert again["limits"] == result["limits"]

    update = run_module("cgroup", dict(changed, name=cgroup_name))
    assert not update["failed"], update.get("msg")
    assert update["changed"] is True
    assert update["limits"][option] != result["limits"][option]
    if expected_text is not None:
        assert limit_file(update, *files) == expected_text
    assert run_module("cgroup", dict(changed, name=cgroup_name))["changed"] is False


def test_memory_and_swap_raised_and_lowered_together(run_module, cgroup, cgroup_name):
    # v1 keeps memory <= memory+swap at every write: raising both must write
    # memory+swap first, lowering both must write memory first.
    require_kernel_files("memory_swap")
    first = run_module("cgroup", {"name": cgroup_name, "memory": "128M", "memory_swap": "256M"})
    assert not first["failed"], first["msg"]
    raised = cgroup({"name": cgroup_name, "memory": "512M", "memory_swap": "1G"})
    assert (raised["limits"]["memory"], raised["limits"]["memory_swap"]) == (512 * MIB, 1024 * MIB)
    lowered = cgroup({"name": cgroup_name, "memory": "64M", "memory_swap": "64M"})
    assert (lowered["limits"]["memory"], lowered["limits"]["memory_swap"]) == (64 * MIB, 64 * MIB)
    unlimited = cgroup({"name": cgroup_name, "memory": "max", "memory_swap": "max"})
    assert (unlimited["limits"]["memory"], unlimited["limits"]["memory_swap"]) == ("max", "max")
    assert cgroup({"name": cgroup_name, "memory": -1, "memory_swap": -1})["changed"] is False


def test_new_memory_with_the_same_memory_swap_keeps_the_total(cgroup, cgroup_name):
    # v2's memory.swap.max holds memory_swap minus memory: a new memory alone
    # must rewrite it, or the total would move with memory.
    require_kernel_files("memory_swap")
    cgroup({"name": cgroup_name, "memory": "128M", "memory_swap": "256M"})
    moved = cgroup({"name": cgroup_name, "memory": "192M", "memory_swap": "256M"})
    assert moved["changed"] is True
    assert (moved["limits"]["memory"], moved["limits"]["memory_swap"]) == (192 * MIB, 256 * MIB)
    if VERSION == "v1":
        assert read(moved["paths"]["memory"], "memory.memsw.limit_in_bytes") == str(256 * MIB)
    else:
        assert read(moved["paths"]["unified"], "memory.swap.max") == str(64 * MIB)
    assert cgroup({"name": cgroup_name, "memory": "192M", "memory_swap": "256M"})["changed"] is False


@pytest.mark.skipif(VERSION != "v1", reason="only v1 cpuset starts a cgroup with empty cpus and mems")
def test_cpuset_left_empty_by_a_bare_mkdir_is_filled_in(cgroup, cgroup_name, workloads):
    # As the walkthrough's cgcreate or a hand-made mkdir leaves it.
    parent = os.path.join("/sys/fs/cgroup/cpuset", cgroup_name)
    os.makedirs(parent)
    assert read(parent, "cpuset.cpus") == ""
    inner = cgroup({"name": cgroup_name + "/inner", "memory": "64M"})
    assert read(parent, "cpuset.cpus") == read("/sys/fs/cgroup/cpuset", "cpuset.cpus")
    assert read(inner["paths"]["cpuset"], "cpuset.mems") == read("/sys/fs/cgroup/cpuset", "cpuset.mems")
    sleeper = workloads(SLEEP_300S)
    open_existing(cgroup_name + "/inner").attach(sleeper.pid)
    assert cgroups_of(sleeper.pid)["cpuset"] == "/" + cgroup_name + "/inner"


def test_diff_and_check_mode(cgroup, cgroup_name):
    planned = cgroup({"name": cgroup_name, "memory": "256M"}, check_mode=True, diff=True)
    assert planned["changed"] is True
    assert planned["diff"] == {"before": {"state": "absent"}, "after": {"state": "present", "memory": 256 * MIB}}
    assert directories_of(cgroup_name) == []

    cgroup({"name": cgroup_name, "memory": "256M"})
    change = cgroup({"name": cgroup_name, "memory": "512M"}, check_mode=True, diff=True)
    assert change["changed"] is True
    assert change["diff"]["before"]["memory"] == 256 * MIB
    assert change["diff"]["after"]["memory"] == 512 * MIB
    assert change["limits"]["memory"] == 512 * MIB
    assert limit_file(change, "memory", "memory.limit_in_bytes", "memory.max") == str(256 * MIB)


@pytest.mark.skipif(shutil.which("ansible") is None, reason="no ansible command on this host")
def test_through_ansible_with_check_and_diff(ansible_module, cgroup_name):
    planned = ansible_module("cgroup", {"name": cgroup_name, "cpus": 0.25}, check_mode=True, diff=True)
    assert planned["changed"] is True and not planned["failed"], planned
    assert directories_of(cgroup_name) == []
    made = ansible_module("cgroup", {"name": cgroup_name, "cpus": 0.25})
    assert made["changed"] is True and made["limits"]["cpu_quota"] == 25000
    assert ansible_module("cgroup", {"name": cgroup_name, "cpus": 0.25})["changed"] is False


# -- the limits act on real processes ----------------------------------------

def test_allocation_beyond_memory_is_oom_killed_and_counted(cgroup, cgroup_name, workloads):
    # memory_swap equal to memory: no swap, so the allocation cannot escape to disk.
    made = cgroup({"name": cgroup_name, "memory": "256M", "memory_swap": "256M", "cpus": 0.5, "pids_max": 64})
    assert made["stats"]["oom_kill"] == 0
    hog = workloads(ALLOCATE_400M)
    hog.place(made["paths"])
    hog.go()
    assert hog.wait() == -9, "the 400M allocation was not killed"
    after = cgroup({"name": cgroup_name, "memory": "256M"})
    assert after["changed"] is False
    assert after["stats"]["oom_kill"] >= 1
    if VERSION == "v2":
        assert after["stats"]["oom"] >= 1
    else:
        # v1 counts limit hits in failcnt, which recent kernels may leave at 0.
        assert isinstance(after["stats"]["oom"], int)
    assert after["stats"]["memory_peak"] is None or after["stats"]["memory_peak"] <= 256 * MIB
    assert after["stats"]["procs"] == []


def test_busy_loop_is_throttled_to_half_a_core(cgroup, cgroup_name, workloads):
    made = cgroup({"name": cgroup_name, "cpus": 0.5})
    spinner = workloads(BUSY_LOOP_8S)
    spinner.place(made["paths"])
    spinner.go()
    group = open_existing(cgroup_name)
    time.sleep(0.5)
    # Other load on the machine can only lower the share the loop gets, never
    # raise it past the limit: every window must stay below 0.65, and one of
    # up to three must reach 0.35 (the limit is not far below half a core).
    shares = []
    for _window in range(3):
        start_wall, start = time.monotonic(), group.stats()
        time.sleep(2.0)
        end_wall, end = time.monotonic(), group.stats()
        shares.append((end["cpu_usage_usec"] - start["cpu_usage_usec"]) / ((end_wall - start_wall) * 1e6))
        assert shares[-1] <= 0.65, "busy loop used %.2f of a core under cpus: 0.5" % shares[-1]
        if shares[-1] >= 0.35:
            break
    assert max(shares) >= 0.35, "busy loop got only %s of a core under cpus: 0.5" % ", ".join(
        "%.2f" % share for share in shares)
    # A window starved by other load may see no throttling; the whole run does.
    assert end["nr_throttled"] > 0 and end["throttled_usec"] > 0


def test_fork_bomb_stops_at_pids_max(cgroup, cgroup_name, workloads):
    made = cgroup({"name": cgroup_name, "pids_max": 64})
    bomb = workloads(FORK_BOMB)
    bomb.place(made["paths"])
    bomb.go()
    forked, refused = (int(number) for number in bomb.read_line().split())
    try:
        # The bomb itself plus its children fill exactly the 64 allowed.
        assert (forked, refused) == (63, 200 - 63)
        assert open_existing(cgroup_name).stats()["pids_current"] == 64
    finally:
        bomb.send_line()
    assert bomb.wait() == 0


def test_memory_updated_in_place_with_a_live_process(cgroup, cgroup_name, workloads):
    made = cgroup({"name": cgroup_name, "memory": "256M"})
    sleeper = workloads(SLEEP_300S)
    sleeper.place(made["paths"])
    updated = cgroup({"name": cgroup_name, "memory": "512M"}, diff=True)
    assert updated["changed"] is True
    assert updated["diff"]["before"]["memory"] == 256 * MIB and updated["diff"]["after"]["memory"] == 512 * MIB
    assert limit_file(updated, "memory", "memory.limit_in_bytes", "memory.max") == str(512 * MIB)
    assert sleeper.alive()
    assert updated["stats"]["procs"] == [sleeper.pid]
    assert cgroup({"name": cgroup_name, "memory": "512M"})["changed"] is False


def test_attach_moves_a_process_in_every_hierarchy(cgroup, cgroup_name, workloads):
    made = cgroup({"name": cgroup_name, "memory": "64M"})
    sleeper = workloads(SLEEP_300S)
    group = open_existing(cgroup_name)
    group.attach(sleeper.pid)
    assert group.pids() == {sleeper.pid}
    # Every hierarchy the cgroup lives in now holds the process.
    member_of = cgroups_of(sleeper.pid)
    assert dict((controller, member_of[controller]) for controller in made["paths"]) == dict(
        (controller, "/" + cgroup_name) for controller in made["paths"])
    for directory in set(made["paths"].values()):
        assert str(sleeper.pid) in read(directory, "cgroup.procs").split()


def test_open_existing_explains_a_missing_cgroup(cgroup_name):
    with pytest.raises(CgroupError, match="does not exist on this host: create it first"):
        open_existing(cgroup_name)


# -- absent -------------------------------------------------------------------

def test_absent_kills_live_processes_and_removes_children(cgroup, cgroup_name, workloads):
    cgroup({"name": cgroup_name, "memory": "128M"})
    inner = cgroup({"name": cgroup_name + "/inner", "pids_max": 10})
    sleepers = [workloads(SLEEP_300S), workloads(FORK_BOMB)]
    for sleeper in sleepers:
        sleeper.place(inner["paths"])
    sleepers[1].go()
    # pids_max 10: the waiting process and the bomb, plus 8 children.
    assert sleepers[1].read_line() == "8 192"

    gone = cgroup({"name": cgroup_name, "state": "absent"}, diff=True)
    assert gone["changed"] is True
    assert {sleepers[0].pid, sleepers[1].pid} <= set(gone["killed"])
    assert len(gone["killed"]) == 10
    assert gone["diff"] == {"before": {"state": "present"}, "after": {"state": "absent"}}
    for sleeper in sleepers:
        assert sleeper.wait(timeout=10) == -9
    assert directories_of(cgroup_name) == []
    assert cgroup({"name": cgroup_name, "state": "absent"})["changed"] is False


def test_absent_in_check_mode_leaves_it(cgroup, cgroup_name, workloads):
    made = cgroup({"name": cgroup_name})
    sleeper = workloads(SLEEP_300S)
    sleeper.place(made["paths"])
    planned = cgroup({"name": cgroup_name, "state": "absent"}, check_mode=True)
    assert planned["changed"] is True and planned["killed"] == [sleeper.pid]
    assert sleeper.alive() and directories_of(cgroup_name) != []


def test_absent_without_kill_refuses_while_processes_run(run_module, cgroup, cgroup_name, workloads):
    made = cgroup({"name": cgroup_name})
    sleeper = workloads(SLEEP_300S)
    sleeper.place(made["paths"])
    refused = run_module("cgroup", {"name": cgroup_name, "state": "absent", "kill": False})
    assert refused["failed"] and "still holds processes" in refused["msg"] and "kill: true" in refused["msg"]
    assert sleeper.alive() and directories_of(cgroup_name) != []


# -- bad input: a clear message and nothing made ------------------------------

BAD_INPUT = [
    ("size", {"memory": "12XB"}, "memory: '12XB' is not a size"),
    ("negative-memory", {"memory": "-1G"}, "negative"),
    ("memory-below-a-page", {"memory": 100}, "below one memory page"),
    ("zero-pids", {"pids_max": 0}, "at least 1"),
    ("negative-pids", {"pids_max": -5}, "negative"),
    ("zero-cpus", {"cpus": 0}, "above 0"),
    ("tiny-quota", {"cpu_quota": 500}, "minimum of 1000"),
    ("period-out-of-range", {"cpus": 0.5, "cpu_period": 10}, "1000..1000000"),
    ("zero-weight", {"cpu_weight": 0}, "1..10000"),
    ("cpus-and-quota", {"cpus": 0.5, "cpu_quota": 50000}, "mutually exclusive"),
    ("swap-without-memory", {"memory_swap": "1G"}, "memory"),
    ("swap-below-memory", {"memory": "256M", "memory_swap": "128M"}, "less than memory"),
    ("cpuset-outside-host", {"cpuset_cpus": "0-1023"}, "not on this host"),
    ("memory-node-outside-host", {"cpuset_mems": "63"}, "memory node 63 not on this host"),
]


@pytest.mark.parametrize("args, message", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_limit_is_refused_and_nothing_made(run_module, cgroup_name, args, message):
    result = run_module("cgroup", dict(args, name=cgroup_name))
    assert result["failed"] and message in result["msg"], result
    assert directories_of(cgroup_name) == []


@pytest.mark.parametrize("name", ["../../etc", "/etc", "web1", "handmade", "handmade/../x", "handmade/a b"])
def test_name_outside_the_project_parent_is_refused(run_module, name):
    result = run_module("cgroup", {"name": name, "memory": "64M"})
    assert result["failed"] and "handmade/" in result["msg"], result
    assert not os.path.exists("/sys/fs/cgroup/memory/etc") and not os.path.exists("/sys/fs/cgroup/etc")


def test_name_of_a_control_file_is_refused_and_nothing_left(run_module):
    parent_existed = directories_of("handmade")
    result = run_module("cgroup", {"name": "handmade/cgroup.procs", "memory": "64M"})
    assert result["failed"] and "control file" in result["msg"], result
    # The project's parent stays only if it was there before this run.
    assert directories_of("handmade") == parent_existed


def test_more_cpus_than_the_host_has_is_accepted_with_a_warning(cgroup, cgroup_name):
    cpus = os.cpu_count() + 2
    made = cgroup({"name": cgroup_name, "cpus": cpus})
    assert made["limits"]["cpu_quota"] == cpus * 100000
    assert "cannot bind" in str(made.get("warnings")), made


def test_version_the_host_lacks_is_refused(run_module, cgroup_name):
    if LAYOUT == "hybrid":
        pytest.skip("a hybrid host has both versions; see test_controller_missing_from_the_version")
    wrong = "v2" if LAYOUT == "legacy" else "v1"
    result = run_module("cgroup", {"name": cgroup_name, "memory": "64M", "version": wrong})
    assert result["failed"] and "version: %s was asked" % wrong in result["msg"], result
    assert directories_of(cgroup_name) == []


def test_controller_missing_from_the_version(run_module, cgroup_name):
    if LAYOUT != "hybrid":
        pytest.skip("only a hybrid host has a version without controllers")
    result = run_module("cgroup", {"name": cgroup_name, "memory": "64M", "version": "v2"})
    assert result["failed"], result
    assert "memory controller is not available in cgroup v2" in result["msg"] and "version: auto" in result["msg"]
    assert directories_of(cgroup_name) == []


@pytest.mark.skipif(VERSION != "v2", reason="only v2 forbids processes in a cgroup that passes controllers down")
def test_parent_holding_processes_is_explained(cgroup, run_module, cgroup_name, workloads):
    made = cgroup({"name": cgroup_name})
    sleeper = workloads(SLEEP_300S)
    sleeper.place(made["paths"])
    result = run_module("cgroup", {"name": cgroup_name + "/inner", "memory": "64M"})
    assert result["failed"] and "holds processes itself" in result["msg"], result
    assert "no internal processes" in result["msg"] and "move those processes into a child cgroup" in result["msg"]
    assert directories_of(cgroup_name + "/inner") == []
    assert sleeper.alive()


# -- failures midway ----------------------------------------------------------

@pytest.mark.skipif(VERSION != "v1", reason="v2 clamps a child's cpu.max to its parent's instead of refusing it")
def test_refused_limit_on_a_new_cgroup_removes_what_the_run_made(cgroup, run_module, cgroup_name):
    cgroup({"name": cgroup_name, "cpus": 0.5})
    # v1 refuses a child more CPU time than its parent, after the child's
    # directories exist and its memory limit is written.
    result = run_module("cgroup", {"name": cgroup_name + "/inner", "memory": "64M", "cpus": 1.5})
    assert result["failed"] and "cpus: the kernel refused" in result["msg"], result
    assert directories_of(cgroup_name + "/inner") == []
    assert directories_of(cgroup_name) != []


@pytest.mark.skipif(VERSION != "v1", reason="v2 clamps a child's cpu.max to its parent's instead of refusing it")
def test_refused_limit_on_an_existing_cgroup_puts_back_the_others(cgroup, run_module, cgroup_name):
    cgroup({"name": cgroup_name, "cpus": 0.5})
    inner = cgroup({"name": cgroup_name + "/inner", "memory": "64M"})
    result = run_module("cgroup", {"name": cgroup_name + "/inner", "memory": "96M", "cpus": 1.5})
    assert result["failed"] and "cpus: the kernel refused" in result["msg"], result
    assert read(inner["paths"]["memory"], "memory.limit_in_bytes") == str(64 * MIB)
    assert directories_of(cgroup_name + "/inner") != []
