# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.paths import find_executable, resolve_in_root


def test_absolute_symlinks_resolve_inside_the_root(root):
    assert resolve_in_root(root, "/bin/sh") == (os.path.join(root, "bin", "busybox"), True)


def test_relative_symlinks_and_missing_tails(root):
    assert resolve_in_root(root, "/var/tools/busybox") == (os.path.join(root, "bin", "busybox"), True)
    assert resolve_in_root(root, "/var/tools/new/dir") == (os.path.join(root, "bin", "new", "dir"), False)


def test_a_symlink_climbing_out_of_the_root_is_refused(root):
    os.symlink("../../../../etc", os.path.join(root, "var", "evil"))
    with pytest.raises(ContainerError) as caught:
        resolve_in_root(root, "/var/evil/x", "mount dest")
    assert "escapes the rootfs" in str(caught.value) and "/var/evil -> ../../../../etc" in str(caught.value)


def test_dotdot_above_the_root_is_refused(root):
    with pytest.raises(ContainerError):
        resolve_in_root(root, "/../etc")


def test_symlink_loops_are_reported(root):
    os.symlink("loop-b", os.path.join(root, "loop-a"))
    os.symlink("loop-a", os.path.join(root, "loop-b"))
    with pytest.raises(ContainerError) as caught:
        resolve_in_root(root, "/loop-a")
    assert "loops" in str(caught.value)


def test_find_executable_in_path_and_by_path(root):
    assert find_executable(root, "sh", "/usr/bin:/bin", "/") == "/bin/sh"
    assert find_executable(root, "/bin/busybox", "/bin", "/") == "/bin/busybox"


def test_find_executable_names_the_missing_program_and_the_rootfs(root):
    with pytest.raises(ContainerError) as caught:
        find_executable(root, "/bin/nope", "/bin", "/")
    assert "rootfs %s has no /bin/nope" % root in str(caught.value)
    with pytest.raises(ContainerError) as caught:
        find_executable(root, "nope", "/usr/bin:/bin", "/")
    assert "no nope in PATH /usr/bin:/bin" in str(caught.value)


def test_find_executable_refuses_a_file_without_x_bit(root):
    with pytest.raises(ContainerError) as caught:
        find_executable(root, "/etc/readme", "/bin", "/")
    assert "not executable" in str(caught.value) and "644" in str(caught.value)
