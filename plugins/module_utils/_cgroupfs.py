# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Transitional: the old import path of the _cgroup package, kept until its last importers move to
_cgroup.manager. Delete this file then; nothing new should import it."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import (
    CgroupError,
    ensure_absent,
    ensure_present,
    open_existing,
)

__all__ = ["CgroupError", "ensure_absent", "ensure_present", "open_existing"]
