# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.handmade.containers.plugins.module_utils._container.launch import enter_command, exit_code


def test_exit_code_follows_the_shell_convention():
    assert exit_code(3 << 8) == 3
    assert exit_code(9) == 137  # killed by SIGKILL


def test_enter_command_lists_only_the_containers_namespaces():
    assert enter_command(42, ["pid", "mount", "uts"]) == \
        "nsenter --target 42 --mount --uts --pid --root --wd -- /bin/sh"
