# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Linux capability names, numbers and masks.

A container keeps a small set of root's powers and loses the rest for good
(the bounding set is dropped too, so no setuid binary or file capability can
bring them back). This file only maps names to bits and back; the calls that
apply a mask live in _syscalls.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

# Numbers from include/uapi/linux/capability.h, in order.
CAPABILITY_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
    "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
    "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
    "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
CAPABILITY_NUMBERS = dict((name, number) for number, name in enumerate(CAPABILITY_NAMES))

# What Docker keeps by default: enough for a package manager and most
# daemons run as root, without the powers that reach the host (SYS_ADMIN,
# NET_ADMIN, SYS_MODULE, SYS_PTRACE ...).
DEFAULT_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
    "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
    "AUDIT_WRITE",
)


class CapabilityError(ValueError):
    """A capability name this kernel or this table does not know."""


def normalize_capability(name):
    """``"cap_net_raw"``, ``"NET_RAW"`` -> ``"NET_RAW"``; unknown names raise."""
    text = str(name).strip().upper()
    if text.startswith("CAP_"):
        text = text[4:]
    if text not in CAPABILITY_NUMBERS:
        raise CapabilityError(
            "unknown capability %r: use names such as NET_BIND_SERVICE or CAP_CHOWN "
            "(see capabilities(7)); known: %s" % (name, ", ".join(CAPABILITY_NAMES)))
    return text


def capability_mask(names):
    """Names -> the 64-bit mask capset(2) takes."""
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITY_NUMBERS[normalize_capability(name)]
    return mask


def last_capability(proc_file="/proc/sys/kernel/cap_last_cap"):
    """The highest capability number the running kernel knows."""
    try:
        with open(proc_file) as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return len(CAPABILITY_NAMES) - 1
