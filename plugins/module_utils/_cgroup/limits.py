# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The table of limits (``LIMITS``) and of usage counters (``STATS``).

``LIMITS`` has one row per limit: the options that set it and their types,
its files on v1 and on v2, how the kernel spells and normalises its value,
and how it is compared. Creating, reading, comparing, the cgroup module's
argument_spec, its documentation and docs/cgroup.md all follow it.

Each row stands on its own: it declares every file it reads (on v2 the
memory_swap row reads memory.max beside memory.swap.max) and every other
limit whose value it needs to write (``inputs``), so no row depends on the
order in which the others are read or written.

Nothing here touches the filesystem; the drivers (v1.py, v2.py) read and
write the files a row names.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import math

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._units import (
    UnitError,
    format_cpu_list,
    parse_count,
    parse_cpu_list,
    parse_cpus,
    parse_size,
)

# v1 memory files report "no limit" as PAGE_COUNTER_MAX pages in bytes
# (9223372036854771712 with 4K pages): anything this large means unlimited.
V1_UNLIMITED_THRESHOLD = 1 << 62
DEFAULT_CPU_PERIOD = 100000          # microseconds, the kernel's default
CPU_PERIOD_RANGE = (1000, 1000000)   # cfs bandwidth accepts 1 ms .. 1 s
CPU_QUOTA_MINIMUM = 1000             # 1 ms per period
CPU_SHARES_RANGE = (2, 262144)       # v1 cpu.shares
WEIGHT_RANGE = (1, 10000)            # v2 cpu.weight and io.weight
BLKIO_WEIGHT_RANGE = (10, 1000)      # v1 blkio.weight (CFQ); BFQ accepts 1..1000


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


def decode_bytes(text):
    """A memory file's text -> bytes, or None for no limit (``max``, ``-1`` or v1's huge page count)."""
    if text in ("max", "-1"):
        return None
    value = int(text)
    return None if value >= V1_UNLIMITED_THRESHOLD else value


# --------------------------------------------------------------------------
# The rows
# --------------------------------------------------------------------------

class HostFacts:
    """What validation needs to know about the host: page size and CPUs/memory nodes."""

    def __init__(self, page_size, cpus, mems):
        self.page_size = page_size
        self.cpus = tuple(cpus)
        self.mems = tuple(mems)


LEAVE_IT_OUT = ": leave the option out on this host"


class KernelFiles:
    """How one cgroup version holds a limit: the controller and the files.

    ``names`` are written in this order. With ``alternatives`` they are
    instead the names one file has under different kernel configurations
    (blkio.weight under CFQ, blkio.bfq.weight under BFQ): the first one
    present is read and written. ``also_reads`` are files that are read but
    never written, because the written value is relative to them.
    ``missing_hint`` ends the message given when the kernel lacks the file.
    """

    def __init__(self, controller, *names, alternatives=False, also_reads=(), missing_hint=LEAVE_IT_OUT):
        self.controller = controller
        self.names = names
        self.alternatives = alternatives
        self.also_reads = tuple(also_reads)
        self.missing_hint = missing_hint

    @property
    def joiner(self):
        """How the documentation joins several names: all written ("and"), or the first present ("or")."""
        return " or " if self.alternatives else " and "


class Limit:
    """One row of LIMITS: the options that set it, its files, its value rules.

    A value has three spellings: what the user writes (the options), the
    canonical value compared and reported (a number, a tuple, or None for
    "no limit") and the text in the kernel's files for v1 or v2. ``encode``
    writes the canonical value as the kernel wants it; ``decode`` reads the
    kernel's text back into a canonical value. Comparing
    ``decode(encode(desired))`` with what the files hold compares after the
    kernel's own normalisation, so an unchanged limit is never rewritten.

    Texts are tuples in the order of the version's KernelFiles: ``encode``
    gives one per written file, ``decode`` takes one per written file
    followed by one per ``also_reads`` file.
    """

    # The Ansible type of the row's option, unless ``options`` says otherwise.
    option_type = "raw"

    def __init__(self, key, v1, v2, summary, options=None, refused_hints=None, exclusive=(), requires=()):
        self.key = key
        self.option_types = tuple(options or ((key, self.option_type),))
        self.options = tuple(option for option, _type in self.option_types)
        self.v1, self.v2 = v1, v2
        self.summary = summary
        # errno of a refused write -> the end of the message explaining it.
        self.refused_hints = refused_hints or {}
        # Module-level rules between options: pairs that exclude each other,
        # and options that need another option in the same task.
        self.exclusive = tuple(exclusive)
        self.requires = tuple(requires)

    def kernel_files(self, version):
        """The KernelFiles of ``version`` (``v1`` or ``v2``)."""
        return {"v1": self.v1, "v2": self.v2}[version]

    def requested(self, params):
        return any(params.get(option) is not None for option in self.options)

    def inputs(self, version):
        """Keys of other limits whose desired value ``encode`` needs on ``version``; none for most rows."""
        return ()

    def write_position(self, version, old, new):
        """-1 to write before the other changing limits, 1 after them, 0 anywhere."""
        return 0

    def desired(self, params, host, warnings):
        """The canonical value the options in ``params`` ask for; raises CgroupError when invalid."""
        raise NotImplementedError

    def encode(self, value, version, page_size, inputs=None):
        """Canonical value -> the texts to write, one per written file."""
        raise NotImplementedError

    def decode(self, texts, version):
        """Texts read from the files -> the canonical value."""
        raise NotImplementedError

    def report(self, value):
        return {self.key: value}

    def normalise(self, value, version, page_size, inputs=None):
        """The canonical value as the kernel will hold it after writing ``value``."""
        return self.decode(self.encode(value, version, page_size, inputs), version)

    def _fail(self, problem):
        raise CgroupError("%s: %s" % (self.key, problem))


class SizeLimit(Limit):
    """Bytes; None is no limit. The kernel rounds down to whole pages on v1 and v2."""

    def __init__(self, key, v1, v2, summary, minimum_pages, **kwargs):
        Limit.__init__(self, key, v1, v2, summary, **kwargs)
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

    def encode(self, value, version, page_size, inputs=None):
        if value is None:
            # v1 takes -1 for "no limit" (and shows a huge page count); v2 takes max.
            return ("-1" if version == "v1" else "max",)
        return (str(value - value % page_size),)

    def decode(self, texts, version):
        return decode_bytes(texts[0])

    def report(self, value):
        return {self.key: "max" if value is None else value}


class SwapLimit(SizeLimit):
    """docker's --memory-swap: memory plus swap.

    v1's memory.memsw.limit_in_bytes holds that total. v2's memory.swap.max
    holds only the swap, so on v2 this row reads memory.max as well (the
    total is the sum of both) and writing needs the memory limit that the
    same task sets, passed in as ``inputs["memory"]``.
    """

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

    def _holds_swap_only(self, version):
        # The version whose file holds the swap alone is the one that also reads memory.max.
        return bool(self.kernel_files(version).also_reads)

    def inputs(self, version):
        return ("memory",) if self._holds_swap_only(version) else ()

    def write_position(self, version, old, new):
        # Where the file holds the total (v1), the kernel refuses memory above
        # it at any moment: raise the total before memory, lower it after.
        # The swap-only file (v2) is independent of memory.max.
        if self._holds_swap_only(version):
            return 0
        raising = new is None or (old is not None and new >= old)
        return -1 if raising else 1

    def encode(self, value, version, page_size, inputs=None):
        if not self._holds_swap_only(version) or value is None:
            return SizeLimit.encode(self, value, version, page_size)
        swap = value - (inputs["memory"] or 0)
        return (str(swap - swap % page_size),)

    def decode(self, texts, version):
        if not self._holds_swap_only(version):
            return decode_bytes(texts[0])
        swap, memory = decode_bytes(texts[0]), decode_bytes(texts[1])
        if swap is None or memory is None:
            return None
        return memory + swap

    def normalise(self, value, version, page_size, inputs=None):
        texts = self.encode(value, version, page_size, inputs)
        if self._holds_swap_only(version):
            # memory.max as it will be held after this task writes memory.
            texts += SizeLimit.encode(self, inputs["memory"], version, page_size)
        return self.decode(texts, version)


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

    def encode(self, value, version, page_size, inputs=None):
        quota, period = value
        if version == "v1":
            # Period first: a quota is checked against the period already there.
            return (str(period), "-1" if quota is None else str(quota))
        return ("%s %d" % ("max" if quota is None else quota, period),)

    def decode(self, texts, version):
        if version == "v1":
            period, quota = int(texts[0]), int(texts[1])
            return (None if quota < 0 else quota, period)
        quota, period = texts[0].split()
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

    option_type = "int"

    def __init__(self, key, v1, v2, summary, to_v1, from_v1, **kwargs):
        Limit.__init__(self, key, v1, v2, summary, **kwargs)
        self.to_v1, self.from_v1 = to_v1, from_v1

    def desired(self, params, host, warnings):
        weight = params[self.key]
        if isinstance(weight, bool) or not isinstance(weight, int) or not WEIGHT_RANGE[0] <= weight <= WEIGHT_RANGE[1]:
            self._fail("%r is outside %d..%d: weights are relative, 100 is the kernel's default"
                       % ((weight,) + WEIGHT_RANGE))
        return weight

    def encode(self, value, version, page_size, inputs=None):
        return (str(self.to_v1(value) if version == "v1" else value),)

    def decode(self, texts, version):
        # "100", or v2 io.weight's "default 100" followed by per-device lines.
        number = int(texts[0].splitlines()[0].split()[-1])
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

    def encode(self, value, version, page_size, inputs=None):
        return ("max" if value is None else str(value),)

    def decode(self, texts, version):
        return None if texts[0] == "max" else int(texts[0])

    def report(self, value):
        return {self.key: "max" if value is None else value}


class CpuListLimit(Limit):
    """A set of CPUs or memory nodes, which must exist on the host (cpuset)."""

    def __init__(self, key, v1, v2, summary, host_attribute, noun, **kwargs):
        Limit.__init__(self, key, v1, v2, summary, **kwargs)
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

    def encode(self, value, version, page_size, inputs=None):
        return (format_cpu_list(value),)

    def decode(self, texts, version):
        return parse_cpu_list(texts[0])

    def report(self, value):
        return {self.key: format_cpu_list(value)}


_NO_CFS_BANDWIDTH = ": the kernel has no CFS bandwidth control; leave cpus and cpu_quota out"

LIMITS = (
    SizeLimit("memory",
              KernelFiles("memory", "memory.limit_in_bytes"),
              KernelFiles("memory", "memory.max"),
              "hard memory limit; the OOM killer acts beyond it", minimum_pages=1,
              refused_hints={
                  errno.EBUSY: ": the processes inside use more and the kernel could not reclaim enough; raise "
                               "the limit or stop them first",
                  errno.EINVAL: ": on v1 memory must not exceed the memory+swap limit; give memory_swap too",
              }),
    SwapLimit("memory_swap",
              KernelFiles("memory", "memory.memsw.limit_in_bytes",
                          missing_hint=": swap accounting is off; boot with swapaccount=1, or leave memory_swap out"),
              KernelFiles("memory", "memory.swap.max", also_reads=("memory.max",),
                          missing_hint=": the kernel has no swap controller; leave memory_swap out"),
              "memory plus swap, as docker's --memory-swap; v2 holds memory_swap - memory", minimum_pages=1,
              refused_hints={errno.EINVAL: ": memory_swap must be at least memory"},
              requires=("memory",)),
    SizeLimit("memory_reservation",
              KernelFiles("memory", "memory.soft_limit_in_bytes"),
              KernelFiles("memory", "memory.low"),
              "soft limit: v1 reclaims down to it under pressure, v2 protects up to it", minimum_pages=0),
    CpuBandwidthLimit("cpus",
                      KernelFiles("cpu", "cpu.cfs_period_us", "cpu.cfs_quota_us", missing_hint=_NO_CFS_BANDWIDTH),
                      KernelFiles("cpu", "cpu.max", missing_hint=_NO_CFS_BANDWIDTH),
                      "CPU time per period: quota = cpus x period",
                      options=(("cpus", "raw"), ("cpu_quota", "raw"), ("cpu_period", "int")),
                      refused_hints={errno.EINVAL: ": the parent cgroup allows less CPU time than this"},
                      exclusive=(("cpus", "cpu_quota"),)),
    WeightLimit("cpu_weight",
                KernelFiles("cpu", "cpu.shares"),
                KernelFiles("cpu", "cpu.weight"),
                "relative CPU share; v1 cpu.shares converted as runc does (100 <-> 1024)",
                to_v1=weight_to_cpu_shares, from_v1=cpu_shares_to_weight),
    CountLimit("pids_max",
               KernelFiles("pids", "pids.max"),
               KernelFiles("pids", "pids.max"),
               "most processes and threads; fork fails beyond it"),
    CpuListLimit("cpuset_cpus",
                 KernelFiles("cpuset", "cpuset.cpus"),
                 KernelFiles("cpuset", "cpuset.cpus"),
                 "CPUs the processes may run on", host_attribute="cpus", noun="CPU",
                 refused_hints={errno.EINVAL: ": the parent cgroup does not allow all of these CPUs"}),
    CpuListLimit("cpuset_mems",
                 KernelFiles("cpuset", "cpuset.mems"),
                 KernelFiles("cpuset", "cpuset.mems"),
                 "memory nodes the processes may allocate from", host_attribute="mems", noun="memory node",
                 refused_hints={errno.EINVAL: ": the parent cgroup does not allow all of these memory nodes"}),
    # CFQ's blkio.weight left the kernel in 5.0; BFQ names its own. v2's
    # io.weight belongs to iocost, on v2's 1..10000 scale.
    WeightLimit("io_weight",
                KernelFiles("blkio", "blkio.weight", "blkio.bfq.weight", alternatives=True,
                            missing_hint=": no disk uses a proportional I/O scheduler (BFQ); select bfq for the "
                                         "disk, or leave io_weight out"),
                KernelFiles("io", "io.weight", missing_hint=": the kernel has no iocost controller; leave io_weight out"),
                "relative block I/O share; v1 blkio weight 10..1000 converted as runc does",
                to_v1=io_weight_to_blkio_weight, from_v1=blkio_weight_to_io_weight),
)

LIMIT_OPTIONS = tuple(option for limit in LIMITS for option in limit.options)


# --------------------------------------------------------------------------
# The cgroup module's limit options, from the rows
# --------------------------------------------------------------------------

def argument_spec():
    """option -> {"type": ...} for every limit option, as AnsibleModule's argument_spec takes it."""
    return dict((option, {"type": option_type}) for limit in LIMITS for option, option_type in limit.option_types)


def mutually_exclusive():
    """Pairs of limit options that exclude each other, for AnsibleModule."""
    return [pair for limit in LIMITS for pair in limit.exclusive]


def required_by():
    """option -> the options it needs in the same task, for AnsibleModule."""
    return dict((limit.key, list(limit.requires)) for limit in LIMITS if limit.requires)


# --------------------------------------------------------------------------
# The documentation's view of the rows
# --------------------------------------------------------------------------

def mapping_table():
    """LIMITS as plain rows for the documentation: options, v1 and v2 controller and files, summary.

    ``v1_joiner`` and ``v2_joiner`` say how to read several files: all
    written ("and") or alternatives of which the first present is used
    ("or"). Files a row only reads are left out: another row writes them.
    """
    return [{
        "options": limit.options,
        "v1_controller": limit.v1.controller,
        "v1_files": limit.v1.names,
        "v1_joiner": limit.v1.joiner,
        "v2_controller": limit.v2.controller,
        "v2_files": limit.v2.names,
        "v2_joiner": limit.v2.joiner,
        "summary": limit.summary,
    } for limit in LIMITS]


def mapping_notes():
    """One line per LIMITS row in ansible-doc markup; the module's DOCUMENTATION notes repeat them verbatim."""
    def files(row, version):
        return row[version + "_joiner"].join("C(%s)" % filename for filename in row[version + "_files"])
    return ["%s: v1 %s (%s hierarchy); v2 %s. %s." % (
        ", ".join("O(%s)" % option for option in row["options"]), files(row, "v1"), row["v1_controller"],
        files(row, "v2"), row["summary"][0].upper() + row["summary"][1:]) for row in mapping_table()]


# --------------------------------------------------------------------------
# Usage counters
# --------------------------------------------------------------------------

class StatFiles:
    """Where one version keeps a counter.

    A value read from several files is their sum; ``key`` picks one line of
    a "key value" file (whole file when None); ``divisor`` turns v1's
    nanoseconds into microseconds.
    """

    def __init__(self, controller, names, key=None, divisor=1):
        self.controller = controller
        self.names = tuple(names)
        self.key = key
        self.divisor = divisor


class Stat:
    """One row of STATS: a counter of the module's ``stats`` result and its files on v1 and v2."""

    def __init__(self, name, v1, v2):
        self.name = name
        self.v1, self.v2 = v1, v2

    def kernel_files(self, version):
        return {"v1": self.v1, "v2": self.v2}[version]


STATS = (
    Stat("memory_current", StatFiles("memory", ("memory.usage_in_bytes",)), StatFiles("memory", ("memory.current",))),
    Stat("memory_peak", StatFiles("memory", ("memory.max_usage_in_bytes",)), StatFiles("memory", ("memory.peak",))),
    # v1 has no count of OOM situations: it counts the times the memory limit,
    # or the memory+swap limit (checked first when swap is accounted), was hit.
    Stat("oom", StatFiles("memory", ("memory.failcnt", "memory.memsw.failcnt")),
         StatFiles("memory", ("memory.events",), key="oom")),
    Stat("oom_kill", StatFiles("memory", ("memory.oom_control",), key="oom_kill"),
         StatFiles("memory", ("memory.events",), key="oom_kill")),
    Stat("cpu_usage_usec", StatFiles("cpuacct", ("cpuacct.usage",), divisor=1000),
         StatFiles("cpu", ("cpu.stat",), key="usage_usec")),
    Stat("nr_periods", StatFiles("cpu", ("cpu.stat",), key="nr_periods"),
         StatFiles("cpu", ("cpu.stat",), key="nr_periods")),
    Stat("nr_throttled", StatFiles("cpu", ("cpu.stat",), key="nr_throttled"),
         StatFiles("cpu", ("cpu.stat",), key="nr_throttled")),
    Stat("throttled_usec", StatFiles("cpu", ("cpu.stat",), key="throttled_time", divisor=1000),
         StatFiles("cpu", ("cpu.stat",), key="throttled_usec")),
    Stat("pids_current", StatFiles("pids", ("pids.current",)), StatFiles("pids", ("pids.current",))),
)
