# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroups through their filesystem, on cgroup v1, hybrid and v2 hosts.

Three layouts exist in the wild, told apart by the filesystem type of
/sys/fs/cgroup (statfs):

* unified (v2): cgroup2 is mounted at /sys/fs/cgroup itself.
* hybrid: a tmpfs there, v1 hierarchies beside a cgroup2 mount at
  /sys/fs/cgroup/unified. The v1 controllers do the limiting.
* legacy (v1): a tmpfs there with only v1 hierarchies.

``LIMITS`` is the one table that maps every limit option to its v1 and v2
files, how the kernel spells and normalises its value, and how it is
compared; creating, reading, comparing, the module's documentation and
docs/cgroup.md all follow it. Everything the project creates lives under the
parent cgroup ``handmade``; nothing else on the host is ever written, except
that v2 needs controllers enabled in the root's cgroup.subtree_control.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ctypes
import errno
import math
import os
import re
import signal
import time

from ansible_collections.handmade.containers.plugins.module_utils._units import (
    UnitError,
    format_cpu_list,
    parse_count,
    parse_cpu_list,
    parse_cpus,
    parse_size,
)

DEFAULT_ROOT = "/sys/fs/cgroup"
PROJECT_PARENT = "handmade"

# statfs(2) f_type values (linux/magic.h).
CGROUP2_SUPER_MAGIC = 0x63677270
CGROUP_SUPER_MAGIC = 0x27E0EB
TMPFS_MAGIC = 0x01021994

# The v1 hierarchies a cgroup is made in: every controller a limit, a
# statistic or kill needs. Making it in all of them at once means a limit
# added later never has to move the processes already inside.
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer")
# The v2 controllers enabled for the project's cgroups when the host has them.
V2_CONTROLLERS = ("memory", "cpu", "cpuset", "pids", "io")

# v1 memory files report "no limit" as PAGE_COUNTER_MAX pages in bytes
# (9223372036854771712 with 4K pages): anything this large means unlimited.
V1_UNLIMITED_THRESHOLD = 1 << 62
DEFAULT_CPU_PERIOD = 100000          # microseconds, the kernel's default
CPU_PERIOD_RANGE = (1000, 1000000)   # cfs bandwidth accepts 1 ms .. 1 s
CPU_QUOTA_MINIMUM = 1000             # 1 ms per period
CPU_SHARES_RANGE = (2, 262144)       # v1 cpu.shares
WEIGHT_RANGE = (1, 10000)            # v2 cpu.weight and io.weight
BLKIO_WEIGHT_RANGE = (10, 1000)      # v1 blkio.weight (CFQ); BFQ accepts 1..1000

_NAME_COMPONENT = re.compile(r"^[A-Za-z0-9_.-]+$")


class CgroupError(Exception):
    """The one error of this file: names the problem and the fix."""


# --------------------------------------------------------------------------
# Layout detection and the host's mounts
# --------------------------------------------------------------------------

class _StatFs(ctypes.Structure):
    # f_type is the first member of struct statfs on every Linux ABI; the
    # padding covers the rest of the structure (120 bytes on x86_64).
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 256)]


_libc = None


def filesystem_type(path):
    """statfs(2) f_type of ``path``: the magic number of the filesystem it is on."""
    global _libc
    if _libc is None:
        # dlopen(NULL): the C library is already loaded in every Python;
        # ctypes.util.find_library would spawn ldconfig to look for it.
        _libc = ctypes.CDLL(None, use_errno=True)
    buf = _StatFs()
    if _libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise CgroupError("cannot statfs %s: %s: is /sys/fs/cgroup mounted?" % (path, os.strerror(err)))
    return buf.f_type & 0xFFFFFFFF


def detect_layout(root=DEFAULT_ROOT):
    """``legacy``, ``hybrid`` or ``unified``, from the filesystem types under ``root``."""
    fs_type = filesystem_type(root)
    if fs_type == CGROUP2_SUPER_MAGIC:
        return "unified"
    if fs_type == TMPFS_MAGIC:
        unified = os.path.join(root, "unified")
        if os.path.isdir(unified) and filesystem_type(unified) == CGROUP2_SUPER_MAGIC:
            return "hybrid"
        return "legacy"
    raise CgroupError("%s is neither a cgroup2 mount nor a tmpfs holding cgroup hierarchies "
                      "(filesystem magic 0x%x): mount cgroups there as the distribution does" % (root, fs_type))


def parse_mountinfo(text):
    """/proc/self/mountinfo -> list of dicts: mount_point, root, fstype, super_options (a set)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 10:
            continue
        separator = fields.index("-")
        mounts.append({
            "root": _unescape_mount_path(fields[3]),
            "mount_point": _unescape_mount_path(fields[4]),
            "fstype": fields[separator + 1],
            "super_options": set(fields[separator + 3].split(",")) if len(fields) > separator + 3 else set(),
        })
    return mounts


def _unescape_mount_path(path):
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), path)


def v1_hierarchies(mounts, root=DEFAULT_ROOT):
    """controller -> mount point of its v1 hierarchy under ``root``.

    Co-mounted controllers (Debian's ``cpu,cpuacct``) share one directory.
    """
    hierarchies = {}
    prefix = root.rstrip("/") + "/"
    for mount in mounts:
        if mount["fstype"] != "cgroup" or not mount["mount_point"].startswith(prefix):
            continue
        for controller in V1_CONTROLLERS:
            if controller in mount["super_options"]:
                hierarchies.setdefault(controller, mount["mount_point"])
    return hierarchies


def parse_proc_cgroup(text):
    """/proc/<pid>/cgroup -> {controller or "unified": path}; named hierarchies keep "name=...".

    v1 lines look like ``4:memory:/handmade/web1`` (one line may list
    ``cpu,cpuacct``); the v2 line is ``0::/path``.
    """
    membership = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _hierarchy_id, controllers, path = parts
        if controllers == "":
            membership["unified"] = path
            continue
        for controller in controllers.split(","):
            membership[controller] = path
    return membership


def cgroup_of(pid):
    """{controller or "unified": cgroup path} of a running process."""
    try:
        with open("/proc/%d/cgroup" % pid) as handle:
            return parse_proc_cgroup(handle.read())
    except (IOError, OSError) as exc:
        raise CgroupError("cannot read the cgroups of process %d: %s: is it still running?" % (pid, exc.strerror))


def _read_mountinfo():
    with open("/proc/self/mountinfo") as handle:
        return parse_mountinfo(handle.read())


def validate_name(name):
    """A cgroup name below the project's parent, e.g. ``handmade/web1``; returns it."""
    if not isinstance(name, str) or not name:
        raise CgroupError("name is empty: give a cgroup below %s/, e.g. %s/web1" % (PROJECT_PARENT, PROJECT_PARENT))
    components = name.split("/")
    for component in components:
        if component in ("", ".", "..") or not _NAME_COMPONENT.match(component) or len(component) > 255:
            raise CgroupError(
                "name %r is not a cgroup path below %s/: use components of letters, digits, '_', '.' and '-' "
                "joined by '/', with no leading '/' and no '.' or '..', e.g. %s/web1"
                % (name, PROJECT_PARENT, PROJECT_PARENT))
    if components[0] != PROJECT_PARENT or len(components) < 2:
        raise CgroupError("name %r is outside the project's parent cgroup: cgroups made here live below %s/, "
                          "e.g. %s/%s" % (name, PROJECT_PARENT, PROJECT_PARENT, components[-1]))
    return name


# --------------------------------------------------------------------------
# Small file helpers: a cgroup file is written in one write(2) whose errno
# is the kernel's answer, so errors are turned into messages right here.
# --------------------------------------------------------------------------

def _read(path):
    with open(path) as handle:
        return handle.read().strip()


def _read_or_none(path):
    try:
        return _read(path)
    except (IOError, OSError):
        return None


def _write(path, text):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _flat_keyed(text):
    """``key value`` lines (cpu.stat, memory.events, memory.oom_control) -> dict of ints."""
    values = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and re.match(r"^-?\d+$", parts[1]):
            values[parts[0]] = int(parts[1])
    return values


# --------------------------------------------------------------------------
# Conversions between the v1 and v2 scales, as runc does them
# --------------------------------------------------------------------------

def cpu_shares_to_weight(shares):
    """v1 cpu.shares (2..262144) -> v2 cpu.weight (1..10000), runc's mapping.

    A quadratic in log2(shares) that sends the ends to the ends and the
    defaults to each other (2 -> 1, 1024 -> 100, 262144 -> 10000).
    """
    if shares <= CPU_SHARES_RANGE[0]:
        return WEIGHT_RANGE[0]
    if shares >= CPU_SHARES_RANGE[1]:
        return WEIGHT_RANGE[1]
    log2 = math.log2(shares)
    exponent = (log2 * log2 + 125 * log2) / 612.0 - 7.0 / 34.0
    return int(math.ceil(10 ** exponent))


def weight_to_cpu_shares(weight):
    """v2 cpu.weight -> the largest v1 cpu.shares that maps back to it (100 -> 1024, the v1 default).

    The mapping is monotonic and reaches every weight, so a binary search
    gives an exact round trip: weight -> shares -> the same weight.
    """
    low, high = CPU_SHARES_RANGE
    while low < high:
        middle = (low + high + 1) // 2
        if cpu_shares_to_weight(middle) > weight:
            high = middle - 1
        else:
            low = middle
    return low


def blkio_weight_to_io_weight(blkio_weight):
    """v1 blkio.weight (10..1000) -> v2 io.weight (1..10000), runc's linear mapping."""
    return 1 + (blkio_weight - BLKIO_WEIGHT_RANGE[0]) * 9999 // 990


def io_weight_to_blkio_weight(io_weight):
    """v2 io.weight -> v1 blkio.weight. The v1 scale is coarser: ten v2 weights share a v1 value."""
    return BLKIO_WEIGHT_RANGE[0] + -(-(io_weight - 1) * 990 // 9999)


# --------------------------------------------------------------------------
# The table: one row per limit
# --------------------------------------------------------------------------

class HostFacts:
    """What validation needs to know about the host: page size and CPUs/memory nodes."""

    def __init__(self, page_size, cpus, mems):
        self.page_size = page_size
        self.cpus = tuple(cpus)
        self.mems = tuple(mems)


class Limit:
    """One row of LIMITS: the options that set it, its files, its value rules.

    A value has three spellings: what the user writes (the options), the
    canonical value compared and reported (a number, a tuple, or None for
    "no limit") and the text in the kernel's files for v1 or v2. ``encode``
    writes the canonical value as the kernel wants it; ``decode`` reads the
    kernel's text back into a canonical value. Comparing
    ``decode(encode(desired))`` with what the files hold compares after the
    kernel's own normalisation, so an unchanged limit is never rewritten.
    """

    def __init__(self, key, v1, v2, summary, options=None, alternatives=False):
        self.key = key
        self.options = options or (key,)
        self.v1_controller, self.v1_files = v1[0], tuple(v1[1:])
        self.v2_controller, self.v2_files = v2[0], tuple(v2[1:])
        self.summary = summary
        # Several files are either all written (cpu.cfs_period_us and
        # cpu.cfs_quota_us) or alternatives named after the kernel's
        # configuration (blkio.weight or blkio.bfq.weight): the first present.
        self.alternatives = alternatives

    def controller(self, version):
        return self.v1_controller if version == "v1" else self.v2_controller

    def declared_files(self, version):
        return self.v1_files if version == "v1" else self.v2_files

    def files(self, version, directory=None):
        """The files this limit reads and writes in ``directory``, in write order."""
        files = self.declared_files(version)
        if self.alternatives:
            present = [name for name in files if directory and os.path.exists(os.path.join(directory, name))]
            return tuple(present[:1]) or files[:1]
        return files

    def requested(self, params):
        return any(params.get(option) is not None for option in self.options)

    def desired(self, params, host, warnings):
        raise NotImplementedError

    def encode(self, value, version, context):
        raise NotImplementedError

    def decode(self, texts, version, context):
        raise NotImplementedError

    def report(self, value):
        return {self.key: value}

    def normalise(self, value, version, context, directory=None):
        """The canonical value as the kernel will hold it after writing ``value``."""
        files = self.files(version, directory)
        return self.decode(dict(zip(files, self.encode(value, version, context))), version, context)

    def _fail(self, problem):
        raise CgroupError("%s: %s" % (self.key, problem))


class SizeLimit(Limit):
    """Bytes; None is no limit. The kernel rounds down to whole pages on v1 and v2."""

    def __init__(self, key, v1, v2, summary, minimum_pages):
        Limit.__init__(self, key, v1, v2, summary)
        self.minimum_pages = minimum_pages

    def desired(self, params, host, warnings):
        try:
            size = parse_size(params[self.key])
        except UnitError as exc:
            self._fail(str(exc))
        if size is not None:
            size -= size % host.page_size
            if size < self.minimum_pages * host.page_size:
                self._fail("%s is below one memory page (%d bytes), which the kernel rounds to nothing; "
                           "give at least a few megabytes, e.g. 64M" % (params[self.key], host.page_size))
        return size

    def encode(self, value, version, context):
        if value is None:
            return ("-1" if version == "v1" else "max",)
        return (str(value - value % context["page_size"]),)

    def decode(self, texts, version, context):
        return _decode_bytes(texts[self.files(version)[0]])

    def report(self, value):
        return {self.key: "max" if value is None else value}


def _decode_bytes(text):
    if text in ("max", "-1"):
        return None
    value = int(text)
    return None if value >= V1_UNLIMITED_THRESHOLD else value


class SwapLimit(SizeLimit):
    """docker's --memory-swap: memory plus swap. v1 holds the total; v2's memory.swap.max only the swap."""

    def desired(self, params, host, warnings):
        if params.get("memory") is None:
            self._fail("memory_swap (memory plus swap) needs memory in the same task: add memory")
        total = SizeLimit.desired(self, params, host, warnings)
        try:
            memory = parse_size(params["memory"])
        except UnitError as exc:
            raise CgroupError("memory: %s" % exc)
        if total is not None and (memory is None or total < memory):
            self._fail("%s is less than memory (%s): memory_swap counts memory plus swap, so give at least "
                       "the memory limit (equal means no swap), or max" % (params[self.key], params["memory"]))
        return total

    def encode(self, value, version, context):
        if version == "v1" or value is None:
            return SizeLimit.encode(self, value, version, context)
        memory = context.get("memory")
        swap = value - (memory or 0)
        return (str(swap - swap % context["page_size"]),)

    def decode(self, texts, version, context):
        swap = _decode_bytes(texts[self.files(version)[0]])
        if version == "v1" or swap is None:
            return swap
        memory = context.get("memory")
        return None if memory is None else memory + swap


class CpuBandwidthLimit(Limit):
    """cfs bandwidth: (quota or None, period) in microseconds, set by cpus or cpu_quota + cpu_period."""

    def desired(self, params, host, warnings):
        period = params.get("cpu_period")
        if period is None:
            period = DEFAULT_CPU_PERIOD
        if params.get("cpus") is None and params.get("cpu_quota") is None:
            self._fail("cpu_period alone sets nothing: give cpus or cpu_quota with it")
        if params.get("cpus") is not None and params.get("cpu_quota") is not None:
            self._fail("give cpus or cpu_quota, not both: cpus is cpu_quota / cpu_period")
        if not isinstance(period, int) or isinstance(period, bool) or not \
                CPU_PERIOD_RANGE[0] <= period <= CPU_PERIOD_RANGE[1]:
            raise CgroupError("cpu_period: %r is outside the kernel's range %d..%d microseconds (1 ms to 1 s): "
                              "leave it out for the default %d" % ((period,) + CPU_PERIOD_RANGE + (DEFAULT_CPU_PERIOD,)))
        if params.get("cpus") is not None:
            try:
                cpus = parse_cpus(params["cpus"])
            except UnitError as exc:
                raise CgroupError("cpus: %s" % exc)
            quota = None if cpus is None else int(round(cpus * period))
            what = "cpus %s at cpu_period %d gives a quota of %s microseconds" % (params["cpus"], period, quota)
        else:
            try:
                quota = parse_count(params["cpu_quota"])
            except UnitError as exc:
                raise CgroupError("cpu_quota: %s" % exc)
            what = "cpu_quota %s" % quota
        if quota is not None and quota < CPU_QUOTA_MINIMUM:
            raise CgroupError("%s, below the kernel's minimum of %d (1 ms per period): raise it, or use a longer "
                              "cpu_period" % (what, CPU_QUOTA_MINIMUM))
        if quota is not None and quota > period * len(host.cpus):
            warnings.append("%s, which is %.2f CPUs, but this host has %d: the kernel accepts the limit, but it "
                            "cannot bind until the host has more CPUs" % (what, quota / period, len(host.cpus)))
        return (quota, period)

    def encode(self, value, version, context):
        quota, period = value
        if version == "v1":
            # Period first: a quota is checked against the period already there.
            return (str(period), "-1" if quota is None else str(quota))
        return ("%s %d" % ("max" if quota is None else quota, period),)

    def decode(self, texts, version, context):
        if version == "v1":
            period_file, quota_file = self.files(version)
            quota = int(texts[quota_file])
            return (None if quota < 0 else quota, int(texts[period_file]))
        quota, period = texts[self.files(version)[0]].split()
        return (None if quota == "max" else int(quota), int(period))

    def report(self, value):
        quota, period = value
        return {
            "cpus": "max" if quota is None else round(quota / period, 4),
            "cpu_quota": "max" if quota is None else quota,
            "cpu_period": period,
        }


class WeightLimit(Limit):
    """A relative weight on v2's 1..10000 scale; v1 keeps it on its own scale, converted as runc does."""

    def __init__(self, key, v1, v2, summary, to_v1, from_v1, alternatives=False):
        Limit.__init__(self, key, v1, v2, summary, alternatives=alternatives)
        self.to_v1, self.from_v1 = to_v1, from_v1

    def desired(self, params, host, warnings):
        weight = params[self.key]
        if isinstance(weight, bool) or not isinstance(weight, int) or not WEIGHT_RANGE[0] <= weight <= WEIGHT_RANGE[1]:
            self._fail("%r is outside %d..%d: weights are relative, 100 is the kernel's default"
                       % ((weight,) + WEIGHT_RANGE))
        return weight

    def encode(self, value, version, context):
        return (str(self.to_v1(value) if version == "v1" else value),)

    def decode(self, texts, version, context):
        # One file, whichever alternative: "100", or v2 io.weight's
        # "default 100" followed by per-device lines.
        (text,) = texts.values()
        number = int(text.splitlines()[0].split()[-1])
        return self.from_v1(number) if version == "v1" else number


class CountLimit(Limit):
    """A whole number; None is no limit (the kernel's ``max``)."""

    def desired(self, params, host, warnings):
        try:
            count = parse_count(params[self.key])
        except UnitError as exc:
            self._fail(str(exc))
        if count == 0:
            self._fail("0 would refuse every new process, including the container's own start: "
                       "give at least 1, or max")
        return count

    def encode(self, value, version, context):
        return ("max" if value is None else str(value),)

    def decode(self, texts, version, context):
        text = texts[self.files(version)[0]]
        return None if text == "max" else int(text)

    def report(self, value):
        return {self.key: "max" if value is None else value}


class CpuListLimit(Limit):
    """A set of CPUs or memory nodes, which must exist on the host (cpuset)."""

    def __init__(self, key, v1, v2, summary, host_attribute, noun):
        Limit.__init__(self, key, v1, v2, summary)
        self.host_attribute, self.noun = host_attribute, noun

    def desired(self, params, host, warnings):
        try:
            numbers = parse_cpu_list(params[self.key])
        except UnitError as exc:
            self._fail(str(exc))
        available = getattr(host, self.host_attribute)
        if not numbers:
            self._fail("the list is empty: name at least one %s, e.g. %s" % (self.noun, format_cpu_list(available[:1])))
        outside = sorted(set(numbers) - set(available))
        if outside:
            self._fail("%s %s not on this host, which has %s %s: pick from those"
                       % (self.noun + ("s" if len(outside) > 1 else ""), format_cpu_list(outside),
                          self.noun + "s", format_cpu_list(available)))
        return numbers

    def encode(self, value, version, context):
        return (format_cpu_list(value),)

    def decode(self, texts, version, context):
        return parse_cpu_list(texts[self.files(version)[0]])

    def report(self, value):
        return {self.key: format_cpu_list(value)}


LIMITS = (
    SizeLimit("memory", ("memory", "memory.limit_in_bytes"), ("memory", "memory.max"),
              "hard memory limit; the OOM killer acts beyond it", minimum_pages=1),
    SwapLimit("memory_swap", ("memory", "memory.memsw.limit_in_bytes"), ("memory", "memory.swap.max"),
              "memory plus swap, as docker's --memory-swap; v2 holds memory_swap - memory", minimum_pages=1),
    SizeLimit("memory_reservation", ("memory", "memory.soft_limit_in_bytes"), ("memory", "memory.low"),
              "soft limit: v1 reclaims down to it under pressure, v2 protects up to it", minimum_pages=0),
    CpuBandwidthLimit("cpus", ("cpu", "cpu.cfs_period_us", "cpu.cfs_quota_us"), ("cpu", "cpu.max"),
                      "CPU time per period: quota = cpus x period", options=("cpus", "cpu_quota", "cpu_period")),
    WeightLimit("cpu_weight", ("cpu", "cpu.shares"), ("cpu", "cpu.weight"),
                "relative CPU share; v1 cpu.shares converted as runc does (100 <-> 1024)",
                to_v1=weight_to_cpu_shares, from_v1=cpu_shares_to_weight),
    CountLimit("pids_max", ("pids", "pids.max"), ("pids", "pids.max"),
               "most processes and threads; fork fails beyond it"),
    CpuListLimit("cpuset_cpus", ("cpuset", "cpuset.cpus"), ("cpuset", "cpuset.cpus"),
                 "CPUs the processes may run on", host_attribute="cpus", noun="CPU"),
    CpuListLimit("cpuset_mems", ("cpuset", "cpuset.mems"), ("cpuset", "cpuset.mems"),
                 "memory nodes the processes may allocate from", host_attribute="mems", noun="memory node"),
    # CFQ's blkio.weight left the kernel in 5.0; BFQ names its own. v2's
    # io.weight belongs to iocost, on v2's 1..10000 scale.
    WeightLimit("io_weight", ("blkio", "blkio.weight", "blkio.bfq.weight"), ("io", "io.weight"),
                "relative block I/O share; v1 blkio weight 10..1000 converted as runc does",
                to_v1=io_weight_to_blkio_weight, from_v1=blkio_weight_to_io_weight, alternatives=True),
)

LIMIT_OPTIONS = tuple(option for limit in LIMITS for option in limit.options)


def mapping_table():
    """LIMITS as plain rows for the documentation: options, v1 and v2 controller and files, summary.

    ``joiner`` says how to read several files: all written ("and") or
    alternatives of which the first present is used ("or").
    """
    return [{
        "options": limit.options,
        "v1_controller": limit.v1_controller,
        "v1_files": limit.v1_files,
        "v2_controller": limit.v2_controller,
        "v2_files": limit.v2_files,
        "joiner": " or " if limit.alternatives else " and ",
        "summary": limit.summary,
    } for limit in LIMITS]


def mapping_notes():
    """One line per LIMITS row in ansible-doc markup; the module's DOCUMENTATION notes repeat them verbatim."""
    def files(row, version):
        return row["joiner"].join("C(%s)" % filename for filename in row[version + "_files"])
    return ["%s: v1 %s (%s hierarchy); v2 %s. %s." % (
        ", ".join("O(%s)" % option for option in row["options"]), files(row, "v1"), row["v1_controller"],
        files(row, "v2"), row["summary"][0].upper() + row["summary"][1:]) for row in mapping_table()]


# --------------------------------------------------------------------------
# Statistics: name -> v1 (controller, files, key or None, divisor), v2 (files, key or None).
# A value read from several files is their sum; a key picks one line of a
# "key value" file; the divisor turns v1's nanoseconds into microseconds.
# --------------------------------------------------------------------------

STATS = (
    ("memory_current", ("memory", ("memory.usage_in_bytes",), None, 1), (("memory.current",), None)),
    ("memory_peak", ("memory", ("memory.max_usage_in_bytes",), None, 1), (("memory.peak",), None)),
    # v1 has no count of OOM situations: it counts the times the memory limit,
    # or the memory+swap limit (checked first when swap is accounted), was hit.
    ("oom", ("memory", ("memory.failcnt", "memory.memsw.failcnt"), None, 1), (("memory.events",), "oom")),
    ("oom_kill", ("memory", ("memory.oom_control",), "oom_kill", 1), (("memory.events",), "oom_kill")),
    ("cpu_usage_usec", ("cpuacct", ("cpuacct.usage",), None, 1000), (("cpu.stat",), "usage_usec")),
    ("nr_periods", ("cpu", ("cpu.stat",), "nr_periods", 1), (("cpu.stat",), "nr_periods")),
    ("nr_throttled", ("cpu", ("cpu.stat",), "nr_throttled", 1), (("cpu.stat",), "nr_throttled")),
    ("throttled_usec", ("cpu", ("cpu.stat",), "throttled_time", 1000), (("cpu.stat",), "throttled_usec")),
    ("pids_current", ("pids", ("pids.current",), None, 1), (("pids.current",), None)),
)


def read_host_facts(cgroup):
    """Page size, and the CPUs and memory nodes the project's cgroups may use."""
    cpus = mems = None
    if cgroup.version == "v1" and "cpuset" in cgroup.hierarchies:
        base = cgroup.hierarchies["cpuset"]
        cpus, mems = _read_or_none(os.path.join(base, "cpuset.cpus")), _read_or_none(os.path.join(base, "cpuset.mems"))
    elif cgroup.version == "v2":
        base = cgroup.hierarchies["unified"]
        cpus = _read_or_none(os.path.join(base, "cpuset.cpus.effective"))
        mems = _read_or_none(os.path.join(base, "cpuset.mems.effective"))
    cpus = cpus or _read_or_none("/sys/devices/system/cpu/online") or "0-%d" % ((os.cpu_count() or 1) - 1)
    mems = mems or _read_or_none("/sys/devices/system/node/online") or "0"
    return HostFacts(os.sysconf("SC_PAGE_SIZE"), parse_cpu_list(cpus), parse_cpu_list(mems))


# --------------------------------------------------------------------------
# A cgroup
# --------------------------------------------------------------------------

class Cgroup:
    """A named cgroup below ``handmade``: in every v1 hierarchy it needs, or the one v2 directory."""

    def __init__(self, name, root=DEFAULT_ROOT, version="auto"):
        self.name = validate_name(name)
        self.root = root
        self.layout = detect_layout(root)
        self.version = _resolve_version(version, self.layout, root)
        if self.version == "v1":
            self.hierarchies = v1_hierarchies(_read_mountinfo(), root)
            if not self.hierarchies:
                raise CgroupError("no cgroup v1 hierarchy is mounted under %s: mount the controllers, "
                                  "or use version: v2 on a v2 host" % root)
        else:
            self.hierarchies = {"unified": root if self.layout == "unified" else os.path.join(root, "unified")}

    # -- where it lives -----------------------------------------------------

    @property
    def paths(self):
        """controller -> absolute directory (v1), or {"unified": directory} (v2)."""
        return dict((controller, os.path.join(mount, self.name)) for controller, mount in self.hierarchies.items())

    def _directories(self):
        """The distinct directories of this cgroup (co-mounted v1 controllers share one)."""
        return _unique(self.paths.values())

    def path_of(self, controller):
        """Directory holding ``controller``'s files, or None when the host lacks the controller."""
        if self.version == "v2":
            return self.paths["unified"]
        return self.paths.get(controller)

    def exists(self):
        """True when the cgroup's directory exists in at least one hierarchy."""
        return any(os.path.isdir(directory) for directory in self._directories())

    def complete(self):
        """True when it exists in every hierarchy this host has for it."""
        return all(os.path.isdir(directory) for directory in self._directories())

    # -- processes ----------------------------------------------------------

    def attach(self, pid):
        """Move process ``pid`` (and so its future children) into this cgroup, in every hierarchy."""
        directories = [directory for directory in self._directories() if os.path.isdir(directory)]
        if not directories:
            raise CgroupError("cgroup %r does not exist on this host: create it first with "
                              "handmade.containers.cgroup" % self.name)
        for directory in directories:
            try:
                _write(os.path.join(directory, "cgroup.procs"), str(pid))
            except (IOError, OSError) as exc:
                hint = ""
                if exc.errno == errno.EBUSY:
                    hint = ": it has child cgroups with controllers enabled (v2 puts processes only in leaves)"
                elif exc.errno == errno.ESRCH:
                    hint = ": the process has exited"
                raise CgroupError("cannot move process %d into %s: %s%s" % (pid, directory, exc.strerror, hint))

    def pids(self):
        """Every process in this cgroup and its descendants, in any of its hierarchies."""
        found = set()
        for directory in self._directories():
            for current, _subdirs, files in os.walk(directory):
                if "cgroup.procs" in files:
                    text = _read_or_none(os.path.join(current, "cgroup.procs")) or ""
                    found.update(int(pid) for pid in text.split())
        return found

    def kill(self, timeout=10.0):
        """SIGKILL every process in it (and its descendants) and wait until none is left.

        A process that forks while being killed could escape a plain kill
        loop, so the cgroup is frozen first where the kernel can: v2's
        cgroup.kill does all of it atomically (Linux 5.14+); otherwise v2's
        cgroup.freeze or v1's freezer hierarchy stop everything, the frozen
        processes get SIGKILL, and thawing lets them die.
        """
        if not self.exists():
            return
        if os.getpid() in self.pids():
            raise CgroupError("refusing to kill cgroup %r: this very process (%d) runs inside it; run the task "
                              "from outside the cgroup" % (self.name, os.getpid()))
        deadline = time.monotonic() + timeout
        if self.version == "v2" and os.path.exists(os.path.join(self.paths["unified"], "cgroup.kill")):
            _write(os.path.join(self.paths["unified"], "cgroup.kill"), "1")
        else:
            freezer = self._freezer()
            if freezer:
                freeze, thaw = freezer
                freeze(deadline)
                try:
                    self._signal_all(signal.SIGKILL)
                finally:
                    thaw()
        # Whatever was not frozen (no freezer, or moved in meanwhile) is
        # killed in a loop until the cgroup is empty.
        while True:
            remaining = self.pids()
            if not remaining:
                return
            if time.monotonic() > deadline:
                raise CgroupError("processes %s in cgroup %r survived SIGKILL for %.0f s (stuck in the kernel, "
                                  "e.g. on I/O): wait and run again" % (sorted(remaining), self.name, timeout))
            self._signal_all(signal.SIGKILL)
            time.sleep(0.01)

    def _signal_all(self, signum):
        for pid in self.pids():
            try:
                os.kill(pid, signum)
            except OSError as exc:
                if exc.errno != errno.ESRCH:
                    raise

    def _freezer(self):
        """(freeze(deadline), thaw()) for this cgroup, or None when the host cannot freeze it."""
        if self.version == "v2":
            directory = self.paths["unified"]
            control = os.path.join(directory, "cgroup.freeze")
            if not os.path.exists(control):
                return None

            def frozen():
                return _flat_keyed(_read_or_none(os.path.join(directory, "cgroup.events"))).get("frozen") == 1
            on, off = "1", "0"
        else:
            directory = self.paths.get("freezer")
            if not directory or not os.path.isdir(directory):
                return None
            control = os.path.join(directory, "freezer.state")

            def frozen():
                return _read_or_none(control) == "FROZEN"
            on, off = "FROZEN", "THAWED"

        def freeze(deadline):
            _write(control, on)
            # A freeze completes asynchronously; a process stuck in the
            # kernel may never freeze: then the kill loop does the rest.
            while not frozen() and time.monotonic() < deadline:
                time.sleep(0.002)

        def thaw():
            _write(control, off)
        return freeze, thaw

    def stats(self):
        """Usage counters from the kernel's files; None where the host does not provide one."""
        result = {}
        for name, v1, v2 in STATS:
            if self.version == "v1":
                controller, filenames, key, divisor = v1
                directory = self.path_of(controller)
            else:
                (filenames, key), divisor = v2, 1
                directory = self.paths["unified"]
            values = []
            for filename in filenames:
                text = _read_or_none(os.path.join(directory, filename)) if directory else None
                value = None if text is None else int(text) if key is None else _flat_keyed(text).get(key)
                if value is not None:
                    values.append(value)
            result[name] = sum(values) // divisor if values else None
        result["procs"] = sorted(self.pids())
        return result

    # -- limits -------------------------------------------------------------

    def limit_directory(self, limit):
        return self.path_of(limit.controller(self.version))

    def available(self, limit):
        """None when the host can hold ``limit`` in this version, else why not."""
        controller = limit.controller(self.version)
        if self.version == "v1":
            if controller not in self.hierarchies:
                return ("the %s controller is not mounted on this host (no v1 hierarchy for it under %s)"
                        % (controller, self.root))
            return None
        controllers = (_read_or_none(os.path.join(self.hierarchies["unified"], "cgroup.controllers")) or "").split()
        if controller not in controllers:
            why = "the %s controller is not available in cgroup v2 on this host (%s/cgroup.controllers lists: %s)" % (
                controller, self.hierarchies["unified"], " ".join(controllers) or "nothing")
            if self.layout == "hybrid":
                why += "; on this hybrid host the v1 hierarchies hold the controllers, so use version: auto or v1"
            return why
        return None

    def read_limits(self):
        """Canonical value of every limit the cgroup's files hold; limits it cannot read are left out."""
        values = {}
        context = {"page_size": os.sysconf("SC_PAGE_SIZE")}
        for limit in LIMITS:
            directory = self.limit_directory(limit)
            if directory is None:
                continue
            texts = {}
            for filename in limit.files(self.version, directory):
                texts[filename] = _read_or_none(os.path.join(directory, filename))
            if any(text is None for text in texts.values()):
                continue
            values[limit.key] = limit.decode(texts, self.version, context)
            context[limit.key] = values[limit.key]
        return values

    def write_limit(self, limit, value, context):
        """Write one limit's canonical value into its files."""
        directory = self.limit_directory(limit)
        files = limit.files(self.version, directory)
        for filename, text in zip(files, limit.encode(value, self.version, context)):
            path = os.path.join(directory, filename)
            if not os.path.exists(path):
                missing = ("neither " + " nor ".join(limit.declared_files(self.version)) if limit.alternatives
                           else "no " + filename)
                raise CgroupError("%s: %s has %s, so this kernel cannot hold this limit%s" % (
                    limit.key, directory, missing,
                    _MISSING_FILE_HINTS.get(filename, ": leave the option out on this host")))
            try:
                _write(path, text)
            except (IOError, OSError) as exc:
                raise CgroupError("%s: the kernel refused %r in %s: %s%s" % (
                    limit.key, text, path, exc.strerror, _WRITE_HINTS.get((limit.key, exc.errno), "")))

    # -- create and remove --------------------------------------------------

    def create(self, required_controllers=()):
        """Make the cgroup (and the project's parent) where missing; returns the directories made.

        On v1 each hierarchy gets its directory; cpuset needs cpus and mems
        copied from the parent before a process may join. On v2 the
        controllers are enabled from the root down. If anything fails, the
        directories made by this call are removed again before raising.
        """
        created = []
        try:
            if self.version == "v1":
                for mount in _unique(self.hierarchies.values()):
                    self._make_path(mount, created, cpuset=mount == self.hierarchies.get("cpuset"))
            else:
                self._make_v2(required_controllers, created)
        except BaseException:
            _remove_directories(created)
            raise
        return created

    def _make_path(self, mount, created, cpuset=False):
        parent = mount
        for component in self.name.split("/"):
            current = os.path.join(parent, component)
            self._make_directory(current, created)
            if cpuset:
                # v1 cpuset refuses processes until cpus and mems are set, and
                # a child starts with both empty (unless clone_children). Every
                # level below the root is the project's: one left empty by
                # another tool (a bare mkdir) is filled in too.
                for filename in ("cpuset.cpus", "cpuset.mems"):
                    if not _read_or_none(os.path.join(current, filename)):
                        _write(os.path.join(current, filename), _read(os.path.join(parent, filename)))
            parent = current

    def _make_v2(self, required_controllers, created):
        parent = self.hierarchies["unified"]
        for component in self.name.split("/"):
            # Each level passes the controllers down to the next; the
            # leaf's own subtree_control stays empty, it holds processes.
            self._enable_controllers(parent, required_controllers)
            parent = os.path.join(parent, component)
            self._make_directory(parent, created)

    def _make_directory(self, directory, created):
        """mkdir unless it exists; True when this call made it."""
        if os.path.isdir(directory):
            return False
        try:
            os.mkdir(directory)
        except OSError as exc:
            if exc.errno == errno.EEXIST and not os.path.isdir(directory):
                raise CgroupError("cannot create cgroup %r: %s is a control file of the cgroup above, not a "
                                  "cgroup; pick another name" % (self.name, directory))
            if exc.errno != errno.EEXIST:
                raise CgroupError("cannot create %s: %s" % (directory, exc.strerror))
            return False
        created.append(directory)
        return True

    def _enable_controllers(self, directory, required):
        """Enable the project's controllers for the children of ``directory`` (v2).

        Required ones (a limit needs them) fail loudly; the others are
        enabled when the kernel allows it, for the statistics.
        """
        available = (_read_or_none(os.path.join(directory, "cgroup.controllers")) or "").split()
        enabled = (_read_or_none(os.path.join(directory, "cgroup.subtree_control")) or "").split()
        for controller in V2_CONTROLLERS:
            if controller in enabled:
                continue
            if controller not in available:
                if controller in required:
                    raise CgroupError("the %s controller is not available in %s (cgroup.controllers: %s): the "
                                      "cgroup above does not pass it down; enable it there first"
                                      % (controller, directory, " ".join(available) or "nothing"))
                continue
            try:
                _write(os.path.join(directory, "cgroup.subtree_control"), "+" + controller)
            except (IOError, OSError) as exc:
                if controller not in required:
                    continue
                if exc.errno == errno.EBUSY:
                    raise CgroupError(
                        "cannot enable the %s controller below %s: that cgroup holds processes itself, and v2 "
                        "lets only cgroups without processes pass controllers down (no internal processes "
                        "rule); move those processes into a child cgroup" % (controller, directory))
                raise CgroupError("cannot enable the %s controller below %s: %s%s" % (
                    controller, directory, exc.strerror,
                    "; the cpu controller cannot be enabled while realtime processes run outside the root "
                    "cgroup" if controller == "cpu" and exc.errno == errno.EINVAL else ""))

    def remove(self, kill=True, timeout=10.0):
        """Kill what runs inside (when ``kill``), then remove child cgroups bottom-up and the cgroup itself."""
        if not self.exists():
            return False
        if kill:
            self.kill(timeout=timeout)
        elif self.pids():
            raise CgroupError("cgroup %r still holds processes %s: stop them first, or use kill: true"
                              % (self.name, sorted(self.pids())))
        deadline = time.monotonic() + timeout
        for directory in self._directories():
            if not os.path.isdir(directory):
                continue
            nested = [current for current, _subdirs, _files in os.walk(directory)]
            for current in reversed(nested):
                _rmdir_when_empty(current, deadline)
        return True


def _unique(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _rmdir_when_empty(directory, deadline):
    # Killed processes leave a cgroup asynchronously: rmdir answers EBUSY
    # until the last one has finished exiting.
    while True:
        try:
            os.rmdir(directory)
            return
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError("cannot remove %s: %s: processes may still be inside; run again with kill: true"
                                  % (directory, exc.strerror))
            time.sleep(0.01)


def _remove_directories(created):
    for directory in reversed(created):
        try:
            os.rmdir(directory)
        except OSError:
            pass  # the project's parent may have gained a sibling meanwhile: leave it


def _resolve_version(version, layout, root):
    if version == "auto":
        return "v2" if layout == "unified" else "v1"
    if version == "v1" and layout == "unified":
        raise CgroupError("version: v1 was asked, but this host has only cgroup v2 (%s is cgroup2): use version: "
                          "auto or v2" % root)
    if version == "v2" and layout == "legacy":
        raise CgroupError("version: v2 was asked, but this host has only cgroup v1 (no cgroup2 under %s): use "
                          "version: auto or v1, or boot with systemd.unified_cgroup_hierarchy=1" % root)
    if version not in ("v1", "v2"):
        raise CgroupError("version must be auto, v1 or v2, not %r" % (version,))
    return version


_MISSING_FILE_HINTS = {
    "memory.memsw.limit_in_bytes": ": swap accounting is off; boot with swapaccount=1, or leave memory_swap out",
    "memory.swap.max": ": the kernel has no swap controller; leave memory_swap out",
    "cpu.cfs_period_us": ": the kernel has no CFS bandwidth control; leave cpus and cpu_quota out",
    "cpu.max": ": the kernel has no CFS bandwidth control; leave cpus and cpu_quota out",
    "blkio.weight": ": no disk uses a proportional I/O scheduler (BFQ); select bfq for the disk, or leave "
                    "io_weight out",
    "io.weight": ": the kernel has no iocost controller; leave io_weight out",
}

_WRITE_HINTS = {
    ("memory", errno.EBUSY): ": the processes inside use more and the kernel could not reclaim enough; raise "
                             "the limit or stop them first",
    ("memory", errno.EINVAL): ": on v1 memory must not exceed the memory+swap limit; give memory_swap too",
    ("memory_swap", errno.EINVAL): ": memory_swap must be at least memory",
    ("cpus", errno.EINVAL): ": the parent cgroup allows less CPU time than this",
    ("cpuset_cpus", errno.EINVAL): ": the parent cgroup does not allow all of these CPUs",
    ("cpuset_mems", errno.EINVAL): ": the parent cgroup does not allow all of these memory nodes",
}


def open_existing(name, root=DEFAULT_ROOT, version="auto"):
    """The Cgroup called ``name``; raises CgroupError when it does not exist."""
    cgroup = Cgroup(name, root=root, version=version)
    if not cgroup.exists():
        raise CgroupError("cgroup %r does not exist on this host: create it first with "
                          "handmade.containers.cgroup" % name)
    return cgroup


# --------------------------------------------------------------------------
# The module's two states
# --------------------------------------------------------------------------

def ensure_present(name, params, version="auto", root=DEFAULT_ROOT, check_mode=False):
    """Make cgroup ``name`` exist with the limits in ``params`` (option -> value, None = leave alone).

    Returns changed, version, layout, paths, limits (every option, as the
    kernel holds it), stats, diff (before/after of the asked limits) and
    warnings. Limits are compared after the kernel's normalisation, read
    back from the files; only those that differ are written, in place.
    """
    cgroup = Cgroup(name, root=root, version=version)
    host = read_host_facts(cgroup)
    warnings = []
    requested = [limit for limit in LIMITS if limit.requested(params)]
    for limit in requested:
        why = cgroup.available(limit)
        if why:
            raise CgroupError("%s: %s" % (limit.key, why))
    desired = dict((limit.key, limit.desired(params, host, warnings)) for limit in requested)
    context = dict(desired, page_size=host.page_size)

    existed = cgroup.complete()
    was_there = cgroup.exists()
    before = cgroup.read_limits() if was_there else {}
    target = dict((limit.key, limit.normalise(desired[limit.key], cgroup.version, context,
                                              cgroup.limit_directory(limit) if existed else None))
                  for limit in requested)
    changing = [limit for limit in requested if limit.key not in before or before[limit.key] != target[limit.key]]

    if not check_mode and (changing or not existed):
        created = cgroup.create(required_controllers=set(limit.v2_controller for limit in requested))
        try:
            _write_limits(cgroup, _write_order(cgroup.version, changing, before, target), before, context)
        except BaseException:
            _remove_directories(created)
            raise
    after = cgroup.read_limits() if cgroup.exists() else {}
    if check_mode:
        after = dict(after, **target)

    def shown(values):
        view = {}
        for limit in requested:
            if limit.key in values:
                view.update(limit.report(values[limit.key]))
        return view

    return {
        "changed": bool(changing) or not existed,
        "name": name,
        "version": cgroup.version,
        "layout": cgroup.layout,
        "paths": cgroup.paths,
        "limits": report_limits(after),
        "stats": cgroup.stats() if cgroup.exists() else None,
        "diff": {
            "before": dict(shown(before), state="present") if was_there else {"state": "absent"},
            "after": dict(shown(dict(before, **target)), state="present"),
        },
        "warnings": warnings,
    }


def report_limits(values):
    """Canonical values -> the options' spelling, every option present (None: not readable here)."""
    report = {}
    for limit in LIMITS:
        if limit.key in values:
            report.update(limit.report(values[limit.key]))
        else:
            report.update((option, None) for option in limit.options)
    return report


def _write_order(version, changing, before, target):
    """v1 keeps memory <= memory+swap at every moment: raise memsw before memory, lower it after."""
    keys = [limit.key for limit in changing]
    if version != "v1" or "memory_swap" not in keys:
        return changing
    swap = [limit for limit in changing if limit.key == "memory_swap"]
    others = [limit for limit in changing if limit.key != "memory_swap"]
    old, new = before.get("memory_swap"), target["memory_swap"]
    raising = new is None or (old is not None and new >= old)
    return swap + others if raising else others + swap


def _write_limits(cgroup, limits, before, context):
    """Write the limits in order; if one is refused, put back the ones already written."""
    written = []
    try:
        for limit in limits:
            cgroup.write_limit(limit, context[limit.key], context)
            written.append(limit)
    except CgroupError:
        for limit in reversed(written):
            if limit.key in before:
                try:
                    cgroup.write_limit(limit, before[limit.key], dict(context, **before))
                except CgroupError:
                    pass  # the first error is the one to report
        raise


def ensure_absent(name, kill=True, version="auto", root=DEFAULT_ROOT, check_mode=False, timeout=10.0):
    """Remove cgroup ``name`` and its children, killing what runs inside first when ``kill``."""
    cgroup = Cgroup(name, root=root, version=version)
    result = {"changed": False, "name": name, "version": cgroup.version, "layout": cgroup.layout,
              "paths": cgroup.paths, "killed": [], "warnings": [],
              "diff": {"before": {"state": "absent"}, "after": {"state": "absent"}}}
    if not cgroup.exists():
        return result
    result["changed"] = True
    result["diff"]["before"] = {"state": "present"}
    result["killed"] = sorted(cgroup.pids()) if kill else []
    if not check_mode:
        cgroup.remove(kill=kill, timeout=timeout)
    return result
