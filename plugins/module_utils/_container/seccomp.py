# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seccomp: a Docker-format profile -> a classic BPF program -> the kernel.

``docker run`` confines every container with moby's default seccomp profile
(seccomp_default.py) through runc and libseccomp. This file does the same
with the standard library only:

* ``load_profile(value)``: the option ``seccomp``: ``default`` (Docker's
  profile), ``unconfined`` (no filter) or the absolute path of a profile in
  Docker's JSON format, checked here so that a bad file fails the task with
  a sentence, never a half-built filter;
* ``compile_filter(profile, capabilities)``: the profile's rules for the
  capabilities the container keeps, this architecture and this kernel, as a
  list of classic BPF instructions ``(code, jt, jf, k)``;
* ``install(program)``: seccomp(SECCOMP_SET_MODE_FILTER) for the calling
  thread (inherited by everything it execs and forks).

The program, in order:

1. ``seccomp_data.arch`` must be this architecture's (AUDIT_ARCH_X86_64 or
   AUDIT_ARCH_AARCH64), else the process is killed. Docker also admits the
   32-bit ABIs (i386, arm) under the same rules; here only the native one
   exists, so an ``int $0x80`` on x86_64 ends the process instead of reaching
   the i386 table with its own, unchecked numbers;
2. on x86_64, an x32 call (number with bit 30 set) fails with ENOSYS, as on
   a kernel built without x32;
3. a binary search over the syscall number, with the numbers folded into
   intervals of equal outcome (the default profile's 361 allowed names make 66
   intervals on x86_64): a lookup costs six or seven comparisons;
4. a syscall whose rules compare arguments gets a block that tests each rule
   in turn: 64-bit arguments are compared as two 32-bit halves (classic BPF
   loads 32 bits at a time), the conditions of one rule are ANDed;
5. numbers above the highest one the profile names fail with ENOSYS unless
   the default action lets calls through, as runc does, so that programs
   probing for a newer syscall take their fallback path;
6. everything else gets the default action.

Rule semantics follow Docker and runc: ``includes``/``excludes`` by
capabilities (all included ones kept, no excluded one kept), by architecture
(Go's names: ``amd64``, ``arm64``) and by ``minKernel``; names this
architecture lacks are skipped; several conditions on the same argument
become separate rules (ORed), as runc passes them to libseccomp. Of the
rules for one syscall, those with conditions are tried first, in profile
order, then the first one without conditions; the first that matches
decides. Jumps in classic BPF reach 255 instructions at most: every
conditional jump here is local, and where a subtree is longer than that the
jump goes through ``BPF_JA``, whose offset has 32 bits.

The default path imports no ``json``, ``re`` or ``enum`` (each costs more
than building the filter in a fresh interpreter); ``json`` is imported only
to read a profile file.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import struct

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_
from ansible_collections.handmade.containers.plugins.module_utils._capabilities import CAPABILITY_NAMES
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.seccomp_default import DEFAULT_PROFILE
from ansible_collections.handmade.containers.plugins.module_utils._container.seccomp_syscalls import (
    ARCHES,
    table as syscall_table,
)

DEFAULT = "default"
UNCONFINED = "unconfined"

# Classic BPF opcodes (include/uapi/linux/filter.h, bpf_common.h).
BPF_LD_W_ABS = 0x20     # A = 32-bit word at offset k of seccomp_data
BPF_ALU_AND_K = 0x54    # A &= k
BPF_JMP_JA = 0x05       # pc += k (32-bit offset)
BPF_JMP_JEQ_K = 0x15    # pc += (A == k) ? jt : jf
BPF_JMP_JGT_K = 0x25    # unsigned A > k
BPF_JMP_JGE_K = 0x35    # unsigned A >= k
BPF_JMP_JSET_K = 0x45   # A & k != 0
BPF_RET_K = 0x06        # return k
BPF_MAXINSNS = 4096     # the kernel's limit per program
MAX_JUMP = 255          # jt and jf are 8 bits

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
DATA_NR = 0
DATA_ARCH = 4
DATA_ARGS = 16

# Filter return values (include/uapi/linux/seccomp.h).
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000
# The names an architecture goes by in a profile's "arches" (Docker compares
# Go's GOARCH; the kernel's name is accepted too).
_ARCH_NAMES = {"x86_64": ("amd64", "x86_64"), "aarch64": ("arm64", "aarch64")}
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}
# Errno values shared by every Linux architecture this file supports.
EPERM = 1
ENOSYS = 38
MAX_ERRNO = 4095

# Profile action -> (return value without data, takes errnoRet as data).
ACTIONS = {
    "SCMP_ACT_ALLOW": (RET_ALLOW, False),
    "SCMP_ACT_ERRNO": (RET_ERRNO, True),
    "SCMP_ACT_KILL": (RET_KILL_THREAD, False),
    "SCMP_ACT_KILL_THREAD": (RET_KILL_THREAD, False),
    "SCMP_ACT_KILL_PROCESS": (RET_KILL_PROCESS, False),
    "SCMP_ACT_TRAP": (RET_TRAP, False),
    "SCMP_ACT_TRACE": (RET_TRACE, True),
    "SCMP_ACT_LOG": (RET_LOG, False),
}
# Actions under which a call goes on: runc then adds no ENOSYS for syscalls
# newer than the profile (a tracer or a log should see them as they are).
_LETS_THROUGH = (RET_ALLOW, RET_LOG)
OPERATORS = ("SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT", "SCMP_CMP_GE",
             "SCMP_CMP_MASKED_EQ")
MAX_ARGS = 6
_UINT64 = 1 << 64
_LOW = 0xFFFFFFFF

# A jump to the instruction after the rule being built; resolved per rule.
_FAIL = -1
_SOCK_FILTER = struct.Struct("=HBBI")


# ---------------------------------------------------------------------------
# The option and the profile file.
# ---------------------------------------------------------------------------

def load_profile(path_or_None=None):
    """The profile the option ``seccomp`` names: Docker's default, None for unconfined, or a JSON file.

    ``None`` and ``"default"`` give ``DEFAULT_PROFILE`` (shared: do not modify
    it); ``"unconfined"`` gives None (no filter). Anything else is the absolute
    path of a profile in Docker's format, read and checked here; a missing
    file or a malformed profile raises ContainerError saying what and where.
    """
    if path_or_None is None or path_or_None == DEFAULT:
        return DEFAULT_PROFILE
    if path_or_None == UNCONFINED:
        return None
    path = path_or_None
    if not isinstance(path, str) or not os.path.isabs(path):
        raise ContainerError("seccomp: %r is neither %s, %s nor an absolute path: give the absolute path of a "
                             "Docker-format seccomp profile on the managed host" % (path, DEFAULT, UNCONFINED))
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError as exc:
        raise ContainerError("seccomp: cannot read the profile %s: %s: give the path of a Docker-format seccomp "
                             "profile (JSON) on the managed host, or %s or %s"
                             % (path, exc.strerror or exc, DEFAULT, UNCONFINED))
    import json  # only for a user's profile: the default path stays free of it
    try:
        profile = json.loads(text.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise ContainerError("seccomp: the profile %s is not valid JSON (%s): fix the file (Docker's format, as "
                             "moby's profiles/seccomp/default.json)" % (path, exc))
    check_profile(profile, path)
    return profile


def _bad(source, where, problem, fix):
    raise ContainerError("seccomp: the profile %s: %s%s: %s" % (source, where and where + ": ", problem, fix))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_errno(source, where, value, key):
    if not _is_int(value) or not 0 <= value <= MAX_ERRNO:
        _bad(source, where, "%s %r is not an errno number" % (key, value),
             "give a number from 0 to %d (1 is EPERM, 38 is ENOSYS)" % MAX_ERRNO)


def _check_action(source, where, action):
    if action == "SCMP_ACT_NOTIFY":
        _bad(source, where, "SCMP_ACT_NOTIFY is not supported (it needs a supervisor listening on a "
             "notification descriptor)", "use SCMP_ACT_ERRNO, SCMP_ACT_LOG or another action")
    if action not in ACTIONS:
        _bad(source, where, "unknown action %r" % (action,), "use one of %s" % ", ".join(sorted(ACTIONS)))


def _check_filter(source, where, key, value):
    if value is None:
        return
    if not isinstance(value, dict):
        _bad(source, where, "%s must be an object" % key, 'write it as {"caps": [...], "arches": [...], '
             '"minKernel": "4.8"}')
    for field in ("caps", "arches"):
        entries = value.get(field)
        if entries is not None and (not isinstance(entries, (list, tuple))
                                    or not all(isinstance(entry, str) for entry in entries)):
            _bad(source, where, "%s.%s must be a list of strings" % (key, field),
                 'write it as ["CAP_SYS_ADMIN"]' if field == "caps" else 'write it as ["amd64", "arm64"]')
    minimum = value.get("minKernel")
    if minimum is not None and _version(minimum) is None:
        _bad(source, where, "%s.minKernel %r is not a kernel version" % (key, minimum), 'write it as "4.8"')


def _check_arg(source, where, arg):
    if not isinstance(arg, dict):
        _bad(source, where, "an entry of args is not an object",
             'write each as {"index": 0, "value": 40, "op": "SCMP_CMP_NE"}')
    index = arg.get("index")
    if not _is_int(index) or not 0 <= index < MAX_ARGS:
        _bad(source, where, "arg index %r is out of range" % (index,),
             "syscalls take at most %d arguments: use an index from 0 to %d" % (MAX_ARGS, MAX_ARGS - 1))
    for key in ("value", "valueTwo"):
        value = arg.get(key, 0)
        if not _is_int(value) or not 0 <= value < _UINT64:
            _bad(source, where, "arg %s %r is not an unsigned 64-bit number" % (key, value),
                 "give a number from 0 to %d" % (_UINT64 - 1))
    if arg.get("op") not in OPERATORS:
        _bad(source, where, "unknown op %r" % (arg.get("op"),), "use one of %s" % ", ".join(OPERATORS))


def check_profile(profile, source="(given)"):
    """Raise ContainerError, naming ``source`` and the rule, unless ``profile`` is a usable Docker-format profile."""
    if not isinstance(profile, dict):
        _bad(source, "", "the top level is not a JSON object",
             'start from {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [...]}')
    if "defaultAction" not in profile:
        _bad(source, "", "defaultAction is missing", 'add "defaultAction": "SCMP_ACT_ERRNO" (Docker\'s default)')
    _check_action(source, "defaultAction", profile["defaultAction"])
    if profile.get("defaultErrnoRet") is not None:
        _check_errno(source, "", profile["defaultErrnoRet"], "defaultErrnoRet")
    rules = profile.get("syscalls")
    if rules is None:
        return
    if not isinstance(rules, (list, tuple)):
        _bad(source, "", "syscalls must be a list of rules", 'write it as [{"names": [...], "action": ...}]')
    for position, rule in enumerate(rules):
        where = "syscalls[%d]" % position
        if not isinstance(rule, dict):
            _bad(source, where, "the rule is not an object", 'write it as {"names": ["read"], "action": ...}')
        names = rule.get("names")
        if names is None and rule.get("name") is not None:
            names = [rule["name"]]  # the format before Docker 1.13
        if (not isinstance(names, (list, tuple)) or not names
                or not all(isinstance(name, str) and name for name in names)):
            _bad(source, where, "the rule names no syscall", 'give "names": ["syscall", ...]')
        where = "%s (%s)" % (where, ", ".join(names[:3]) + (", ..." if len(names) > 3 else ""))
        if "action" not in rule:
            _bad(source, where, "the rule has no action", 'add "action": "SCMP_ACT_ALLOW" or another action')
        _check_action(source, where, rule["action"])
        if rule.get("errnoRet") is not None:
            if not ACTIONS[rule["action"]][1]:
                _bad(source, where, "errnoRet is given for %s" % rule["action"],
                     "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take it: remove it")
            _check_errno(source, where, rule["errnoRet"], "errnoRet")
        args = rule.get("args")
        if args is not None:
            if not isinstance(args, (list, tuple)):
                _bad(source, where, "args must be a list", 'write it as [{"index": 0, "value": 1, "op": ...}]')
            for arg in args:
                _check_arg(source, where, arg)
        _check_filter(source, where, "includes", rule.get("includes"))
        _check_filter(source, where, "excludes", rule.get("excludes"))


# ---------------------------------------------------------------------------
# Profile -> the rules of each syscall number.
# ---------------------------------------------------------------------------

def _version(text):
    """``"6.18.44-fc"``, ``"4.8"`` or ``(6, 18)`` -> ``(6, 18)``; None if it is not a version."""
    if isinstance(text, tuple):
        return tuple(text[:2])
    if not isinstance(text, str):
        return None
    numbers = []
    for part in text.split(".", 2)[:2]:
        try:
            numbers.append(int(part))
        except ValueError:
            digits = ""  # "1-rc2": the leading digits
            for char in part:
                if not char.isdigit():
                    break
                digits += char
            if not digits:
                return None
            numbers.append(int(digits))
            break
    return (numbers[0], numbers[1] if len(numbers) > 1 else 0) if numbers else None


def _native_arch(arch):
    machine = (arch or os.uname().machine).lower()
    machine = _MACHINE_ALIASES.get(machine, machine)
    if machine not in ARCHES:
        raise ContainerError("seccomp: filters are built for %s only, and this host is %s: set seccomp to %s here"
                             % (" and ".join(ARCHES), machine, UNCONFINED))
    return machine


def _capability_set(capabilities):
    """A 64-bit mask or names (``"SYS_ADMIN"``, ``"CAP_SYS_ADMIN"``) -> {"CAP_SYS_ADMIN", ...}."""
    if _is_int(capabilities):
        return set("CAP_" + name for number, name in enumerate(CAPABILITY_NAMES) if capabilities >> number & 1)
    return set(_cap_name(name) for name in capabilities)


def _cap_name(name):
    name = name.strip().upper()
    return name if name.startswith("CAP_") else "CAP_" + name


def _applies(rule, caps, arch_names, kernel):
    """Docker's includes/excludes: every included cap kept, no excluded one; arches; minKernel."""
    includes = rule.get("includes")
    if includes:
        arches = includes.get("arches")
        if arches and not any(name in arches for name in arch_names):
            return False
        for cap in includes.get("caps") or ():
            if cap not in caps and _cap_name(cap) not in caps:
                return False
        minimum = includes.get("minKernel")
        if minimum and kernel < _version(minimum):
            return False
    excludes = rule.get("excludes")
    if excludes:
        arches = excludes.get("arches")
        if arches and any(name in arches for name in arch_names):
            return False
        for cap in excludes.get("caps") or ():
            if cap in caps or _cap_name(cap) in caps:
                return False
        minimum = excludes.get("minKernel")
        if minimum and kernel >= _version(minimum):
            return False
    return True


def _action_value(action, errno_ret, fallback_errno):
    base, takes_data = ACTIONS[action]
    if not takes_data:
        return base
    data = errno_ret if errno_ret is not None else fallback_errno
    return base | (data & 0xFFFF)


def _condition_sets(args):
    """A rule's args -> the condition tuples it stands for (ORed); ``((),)`` when it has none.

    Conditions on distinct arguments are ANDed. runc hands several
    conditions on the same argument to libseccomp as one rule each (ORed),
    and so does this.
    """
    if not args:
        return ((),)
    conditions = tuple((arg["index"], arg["op"], arg.get("value", 0), arg.get("valueTwo", 0)) for arg in args)
    indexes = [condition[0] for condition in conditions]
    if len(set(indexes)) < len(indexes):
        return tuple((condition,) for condition in conditions)
    return (conditions,)


def _resolve(profile, capabilities, arch, kernel):
    """``(default_ret, returns, blocks, highest)`` for the rules that apply here.

    ``returns`` maps a syscall number to the return value its rules give
    whatever the arguments; ``blocks`` maps a number whose rules compare
    arguments to ``(rules, fallback)``, ``rules`` being ``(ret, conditions)``
    pairs tried in order; ``highest`` is the highest number the profile names.
    """
    table = syscall_table(arch)
    arch_names = _ARCH_NAMES[arch]
    kernel = _version(kernel) if kernel is not None else _version(os.uname().release)
    caps = _capability_set(capabilities)
    default_errno = profile.get("defaultErrnoRet")
    if default_errno is None:
        default_errno = EPERM
    default_ret = _action_value(profile["defaultAction"], default_errno, EPERM)
    conditional = {}
    returns = {}
    number_of = table.get
    for rule in profile.get("syscalls") or ():
        if (rule.get("includes") or rule.get("excludes")) and not _applies(rule, caps, arch_names, kernel):
            continue
        ret = _action_value(rule["action"], rule.get("errnoRet"), default_errno)
        names = rule.get("names")
        if names is None:
            names = (rule["name"],)
        numbers = set(map(number_of, names))
        numbers.discard(None)  # names this architecture lacks (chown32, socketcall, ...)
        if not rule.get("args"):
            if returns:
                setdefault = returns.setdefault  # an earlier rule keeps its number
                for number in numbers:
                    setdefault(number, ret)
            else:
                # Typically the allowlist of 361 names: one call, in C.
                returns = dict.fromkeys(numbers, ret)
            continue
        condition_sets = _condition_sets(rule["args"])
        for number in numbers:
            conditional.setdefault(number, []).extend([(ret, conditions) for conditions in condition_sets])
    highest = max([-1, *returns, *conditional])
    blocks = {}
    for number, rules in conditional.items():
        fallback = returns.get(number, default_ret)
        while rules and rules[-1][0] == fallback:
            rules.pop()  # a last rule giving what the fallback gives changes nothing
        if rules:
            blocks[number] = (tuple(rules), fallback)
            returns.pop(number, None)
        else:
            returns[number] = fallback
    return default_ret, returns, blocks, highest


def syscall_rules(profile, capabilities, arch=None, kernel=None):
    """What the profile says per syscall number here: ``(default_ret, outcomes, highest_named)``.

    ``outcomes`` maps a number to a return value, or to ``(rules, fallback)``
    where ``rules`` is a tuple of ``(ret, conditions)`` tried in order.
    """
    default_ret, returns, blocks, highest = _resolve(profile, capabilities, _native_arch(arch), kernel)
    returns.update(blocks)
    return default_ret, returns, highest


# ---------------------------------------------------------------------------
# Rules -> classic BPF.
# ---------------------------------------------------------------------------

def _halves(index, value):
    low = DATA_ARGS + 8 * index  # x86_64 and aarch64 are little-endian: the low word comes first
    return low + 4, low, value >> 32, value & _LOW


def _condition_code(condition):
    """Instructions that fall through when ``condition`` holds and jump to _FAIL when it does not."""
    index, op, value, value_two = condition
    hi_at, lo_at, hi, lo = _halves(index, value)
    load_hi = (BPF_LD_W_ABS, 0, 0, hi_at)
    load_lo = (BPF_LD_W_ABS, 0, 0, lo_at)
    if op == "SCMP_CMP_EQ":
        return [load_hi, (BPF_JMP_JEQ_K, 0, _FAIL, hi), load_lo, (BPF_JMP_JEQ_K, 0, _FAIL, lo)]
    if op == "SCMP_CMP_NE":
        # Holds when either half differs: a differing high half skips the low test.
        return [load_hi, (BPF_JMP_JEQ_K, 0, 2, hi), load_lo, (BPF_JMP_JEQ_K, _FAIL, 0, lo)]
    if op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        low_test = BPF_JMP_JGT_K if op == "SCMP_CMP_GT" else BPF_JMP_JGE_K
        return [load_hi, (BPF_JMP_JGT_K, 3, 0, hi), (BPF_JMP_JEQ_K, 0, _FAIL, hi), load_lo,
                (low_test, 0, _FAIL, lo)]
    if op in ("SCMP_CMP_LT", "SCMP_CMP_LE"):
        # A < v is not (A >= v); A <= v is not (A > v).
        low_test = BPF_JMP_JGE_K if op == "SCMP_CMP_LT" else BPF_JMP_JGT_K
        return [load_hi, (BPF_JMP_JGE_K, 0, 3, hi), (BPF_JMP_JEQ_K, 0, _FAIL, hi), load_lo,
                (low_test, _FAIL, 0, lo)]
    # SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo, one half at a time.
    code = []
    for load, mask, datum in ((load_hi, hi, value_two >> 32), (load_lo, lo, value_two & _LOW)):
        if mask == 0 and datum == 0:
            continue  # (half & 0) == 0 always holds
        code.append(load)
        if mask != _LOW:
            code.append((BPF_ALU_AND_K, 0, 0, mask))
        code.append((BPF_JMP_JEQ_K, 0, _FAIL, datum))
    return code


def _block(rules, fallback):
    """The code for one syscall with argument rules: each rule in turn, then ``fallback``."""
    code = []
    for ret, conditions in rules:
        rule = []
        for condition in conditions:
            rule.extend(_condition_code(condition))
        rule.append((BPF_RET_K, 0, 0, ret))
        end = len(rule)  # _FAIL means: the first instruction of the next rule
        for pc, (op, jt, jf, k) in enumerate(rule):
            if jt == _FAIL:
                jt = end - pc - 1
            if jf == _FAIL:
                jf = end - pc - 1
            code.append((op, jt, jf, k))
    code.append((BPF_RET_K, 0, 0, fallback))
    return code


def _intervals(returns, blocks, default_ret, tail_ret, size):
    """``(starts, kinds)``: outcome ``kinds[i]`` holds from number ``starts[i]`` up to ``starts[i + 1]``.

    An outcome is a return value, or ``~i`` (negative) for ``blocks_list[i]``.
    Numbers from ``size`` on get ``tail_ret``. Built from a dense list, with
    most of the looping done in C: this runs once per task, in a fresh
    interpreter (and itertools, which would do the rest, is not imported).
    """
    if not size:  # the profile names nothing this architecture has
        return [0], [tail_ret], []
    codes = dict(returns)
    block_list = list(blocks.values())
    for index, number in enumerate(blocks):
        codes[number] = ~index
    dense = list(map(codes.get, range(size), [default_ret] * size))
    starts = [0]
    starts.extend([number for number, changed in enumerate(map(int.__ne__, dense[1:], dense), 1) if changed])
    kinds = [dense[start] for start in starts]
    if kinds[-1] != tail_ret:
        starts.append(size)
        kinds.append(tail_ret)
    return starts, kinds, block_list


def _emit(starts, kinds, block_list, first, stop, out):
    """Append to ``out`` a binary search over intervals [first, stop) (at least two) on A = syscall number."""
    middle = (first + stop) // 2
    at = len(out)
    out.append(None)  # the comparison, once the length of what it jumps over is known
    # A one-interval side is its leaf, written here rather than by a call.
    kind = kinds[first]
    if middle - first > 1:
        _emit(starts, kinds, block_list, first, middle, out)
    elif kind >= 0:
        out.append((BPF_RET_K, 0, 0, kind))
    else:
        out.extend(_block(*block_list[~kind]))
    below = len(out) - at - 1
    if below <= MAX_JUMP:
        out[at] = (BPF_JMP_JGE_K, below, 0, starts[middle])
    else:
        # Too far for an 8-bit jump: JGE lands on a JA that carries the long
        # offset. Jumps inside the subtree are relative, so the insertion
        # leaves them right.
        out[at] = (BPF_JMP_JGE_K, 0, 1, starts[middle])
        out.insert(at + 1, (BPF_JMP_JA, 0, 0, below))
    kind = kinds[middle]
    if stop - middle > 1:
        _emit(starts, kinds, block_list, middle, stop, out)
    elif kind >= 0:
        out.append((BPF_RET_K, 0, 0, kind))
    else:
        out.extend(_block(*block_list[~kind]))


def compile_filter(profile, capabilities, arch=None, kernel=None):
    """The classic BPF program for ``profile`` (as load_profile returns it) and the kept capabilities.

    ``capabilities``: the 64-bit capability mask the container keeps, or
    names (``"NET_RAW"``, ``"CAP_NET_RAW"``). ``arch``: ``x86_64`` or
    ``aarch64``, default this host's; ``kernel``: ``(major, minor)`` or a
    release string for ``minKernel``, default the running kernel's.
    Returns a list of ``(code, jt, jf, k)`` tuples; ``pack`` makes the bytes
    the kernel reads.
    """
    arch = _native_arch(arch)
    default_ret, returns, blocks, highest = _resolve(profile, capabilities, arch, kernel)
    tail_ret = default_ret
    if default_ret not in _LETS_THROUGH and default_ret & 0xFFFF0000 != RET_TRACE:
        tail_ret = RET_ERRNO | ENOSYS
    starts, kinds, block_list = _intervals(returns, blocks, default_ret, tail_ret, highest + 1)
    program = [
        (BPF_LD_W_ABS, 0, 0, DATA_ARCH),
        (BPF_JMP_JEQ_K, 1, 0, AUDIT_ARCH[arch]),
        (BPF_RET_K, 0, 0, RET_KILL_PROCESS),
        (BPF_LD_W_ABS, 0, 0, DATA_NR),
    ]
    if arch == "x86_64":
        program.append((BPF_JMP_JGE_K, 0, 1, X32_SYSCALL_BIT))
        program.append((BPF_RET_K, 0, 0, RET_ERRNO | ENOSYS))
    if len(starts) > 1:
        _emit(starts, kinds, block_list, 0, len(starts), program)
    elif kinds[0] >= 0:
        program.append((BPF_RET_K, 0, 0, kinds[0]))
    else:
        program.extend(_block(*block_list[0]))
    if len(program) > BPF_MAXINSNS:
        raise ContainerError("seccomp: the profile makes a filter of %d instructions, more than the kernel's %d: "
                             "merge rules that share an action" % (len(program), BPF_MAXINSNS))
    return program


def pack(program):
    """``(code, jt, jf, k)`` tuples -> the ``struct sock_filter`` array the kernel reads."""
    pack_one = _SOCK_FILTER.pack
    return b"".join([pack_one(*instruction) for instruction in program])


def prepare(value, capabilities, arch=None, kernel=None):
    """The option's value -> the packed program to install, or None for ``unconfined``.

    Meant for the parent, before any fork: a bad profile then fails the task
    with its sentence, and the child only has to call ``install``.
    """
    profile = load_profile(value)
    if profile is None:
        return None
    return pack(compile_filter(profile, capabilities, arch, kernel))


def install(program):
    """Confine the calling thread, and all it forks and execs, with ``program`` (tuples or packed bytes).

    Raises OSError naming the call (seccomp, or prctl on kernels before 3.17).

    The kernel accepts a filter only from a thread that has no_new_privs set
    or holds CAP_SYS_ADMIN, and from then on the filter also judges every
    call the caller itself still makes. So order it as runc does:

    * ``no_new_privileges`` true: set PR_SET_NO_NEW_PRIVS, drop capabilities
      and switch user, then install the filter as the very last step before
      execve, so the set-up calls are not judged by the container's rules;
    * ``no_new_privileges`` false: install the filter while CAP_SYS_ADMIN is
      still held, that is before the capabilities are dropped; what follows
      (prctl, setgroups, setgid/setuid, capset, chdir, the rt_sig* resets,
      execve) must then be allowed by the profile, as Docker's default does.
    """
    if not isinstance(program, bytes):
        program = pack(program)
    sys_.seccomp_set_mode_filter(program)
