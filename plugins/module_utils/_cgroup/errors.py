# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error type of the _cgroup package."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class CgroupError(Exception):
    """A cgroup could not be made, read, limited or removed.

    The message is shown to the user as it is: it names the problem and the
    fix, for example "memory: '12XB' is not a size ...".
    """
