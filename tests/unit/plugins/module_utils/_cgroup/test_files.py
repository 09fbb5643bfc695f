# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control file formats of _cgroup.files."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.handmade.containers.plugins.module_utils._cgroup.files import parse_flat_keyed


def test_flat_keyed_files():
    assert parse_flat_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n") == {
        "oom_kill_disable": 0, "under_oom": 0, "oom_kill": 3}
    assert parse_flat_keyed("low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n")["oom_kill"] == 1


def test_flat_keyed_skips_lines_that_are_not_key_and_number():
    assert parse_flat_keyed("populated 1\nweird line here\nname text\n") == {"populated": 1}
    assert parse_flat_keyed(None) == {}
