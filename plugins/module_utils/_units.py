# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Human units for resource limits: sizes, CPU counts and CPU lists.

Users write ``512M``, ``0.5`` or ``0-3,6``; the kernel wants bytes, a
quota in microseconds or a list of numbers. These helpers translate both
ways and know nothing about cgroups: ``max`` (no limit) comes back as None.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import re

UNLIMITED = "max"

# Sizes are 1024-based whatever the spelling, as docker's --memory reads them:
# "512M", "512MB" and "512MiB" are all 512 * 1024 * 1024 bytes.
_SIZE_FACTORS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)


class UnitError(ValueError):
    """A value that is not a size, a CPU count or a CPU list."""


def parse_size(value):
    """``512M``, ``1.5G``, ``1024``, 1024, ``max`` or -1 -> bytes, or None for no limit."""
    if isinstance(value, bool):
        raise UnitError("%r is not a size: use bytes or a number with K, M, G or T (1024-based), or max" % (value,))
    if isinstance(value, int):
        if value == -1:
            return None
        if value < 0:
            raise UnitError("%d is negative: use a positive size, or max (or -1) for no limit" % value)
        return value
    text = str(value).strip()
    if text.lower() == UNLIMITED or text == "-1":
        return None
    if text.startswith("-"):
        raise UnitError("%s is negative: use a positive size, or max (or -1) for no limit" % text)
    match = _SIZE_PATTERN.match(text)
    if not match:
        raise UnitError("%r is not a size: use bytes or a number with K, M, G or T (1024-based), "
                        "e.g. 512M or 1G, or max" % (value,))
    number, suffix = match.groups()
    # Whole bytes: "1.5K" is 1536, a fraction of a byte is dropped.
    return int(float(number) * _SIZE_FACTORS[suffix.lower()])


def parse_cpus(value):
    """``0.5``, 2, ``1.25`` -> float CPUs; ``max`` -> None (no limit)."""
    if isinstance(value, bool):
        raise UnitError("%r is not a number of CPUs: use e.g. 0.5 or 2, or max" % (value,))
    if isinstance(value, str) and value.strip().lower() == UNLIMITED:
        return None
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise UnitError("%r is not a number of CPUs: use e.g. 0.5 for half a core or 2 for two, or max" % (value,))
    if math.isnan(cpus) or math.isinf(cpus):
        raise UnitError("%r is not a number of CPUs: use e.g. 0.5 or 2, or max" % (value,))
    if cpus <= 0:
        raise UnitError("%s CPUs would let nothing run: use a number above 0 (e.g. 0.5), or max for no limit" % value)
    return cpus


def parse_count(value):
    """A whole number such as a pids limit: 64, ``64``, ``max`` or -1 -> int, or None for no limit."""
    if isinstance(value, bool):
        raise UnitError("%r is not a whole number: use e.g. 64, or max" % (value,))
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == UNLIMITED:
            return None
        if not re.match(r"^-?\d+$", text):
            raise UnitError("%r is not a whole number: use e.g. 64, or max" % (value,))
        value = int(text)
    if not isinstance(value, int):
        raise UnitError("%r is not a whole number: use e.g. 64, or max" % (value,))
    if value == -1:
        return None
    if value < 0:
        raise UnitError("%d is negative: use a positive number, or max (or -1) for no limit" % value)
    return value


def parse_cpu_list(value):
    """The kernel's list format ``0-3,6`` (also ``0,1`` or 2) -> sorted tuple of numbers."""
    text = str(value).strip()
    if not text:
        return ()
    numbers = set()
    for part in text.split(","):
        match = re.match(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$", part)
        if not match:
            raise UnitError("%r is not a CPU or memory node list: use the kernel's format, e.g. 0-3,6" % (value,))
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise UnitError("%r has the range %s backwards: write it low-high, e.g. 0-3" % (value, part.strip()))
        numbers.update(range(first, last + 1))
    return tuple(sorted(numbers))


def format_cpu_list(numbers):
    """Sorted numbers -> the kernel's list format: (0, 1, 2, 3, 6) -> ``0-3,6``."""
    ranges = []
    for number in sorted(numbers):
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ",".join(str(first) if first == last else "%d-%d" % (first, last) for first, last in ranges)
