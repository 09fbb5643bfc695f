# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and writing cgroup control files.

A cgroup file is written in one write(2), and the errno of that write is
the kernel's answer (EINVAL: value refused, EBUSY: cannot do it now), so
callers catch OSError right where they write and turn it into a message.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re


def read_text(path):
    """The file's content without the trailing newline."""
    with open(path) as handle:
        return handle.read().strip()


def read_or_none(path):
    """Like read_text, or None when the file is missing or unreadable."""
    try:
        return read_text(path)
    except (IOError, OSError):
        return None


def write_text(path, text):
    """One write(2) of ``text``: the kernel parses each write on its own."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def parse_flat_keyed(text):
    """``key value`` lines (cpu.stat, memory.events, memory.oom_control) -> dict of ints."""
    values = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and re.match(r"^-?\d+$", parts[1]):
            values[parts[0]] = int(parts[1])
    return values
