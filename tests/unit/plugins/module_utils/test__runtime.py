# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._runtime import (
    ContainerError,
    enter_command,
    exit_code,
    find_executable,
    parse_user,
    resolve_in_root,
    valid_hostname,
    valid_name,
)


@pytest.fixture
def root(tmp_path):
    """A tiny rootfs tree: /bin/busybox, /bin/sh -> /bin/busybox, /etc/passwd."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "var").mkdir()
    busybox = tmp_path / "bin" / "busybox"
    busybox.write_text("")
    busybox.chmod(0o755)
    os.symlink("/bin/busybox", str(tmp_path / "bin" / "sh"))
    os.symlink("../bin", str(tmp_path / "var" / "tools"))
    (tmp_path / "etc" / "readme").write_text("not a program")
    (tmp_path / "etc" / "readme").chmod(0o644)
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nweb:x:1000:1001::/:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    return str(tmp_path)


@pytest.mark.parametrize("name, valid", [
    ("web", True), ("a", True), ("web-1.test_2", True), ("x" * 63, True),
    ("", False), ("-web", False), ("web/1", False), ("x" * 64, False), ("wéb", False), (None, False),
])
def test_container_names(name, valid):
    assert valid_name(name) is valid


def test_hostnames():
    assert valid_hostname("box-1.local") and valid_hostname("web_1")
    assert not valid_hostname(".box") and not valid_hostname("a b") and not valid_hostname("x" * 65)


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


@pytest.mark.parametrize("user, expected", [
    (None, (0, 0)), ("1000", (1000, 1000)), ("1000:50", (1000, 50)),
    ("web", (1000, 1001)), ("web:staff", (1000, 50)),
])
def test_parse_user(root, user, expected):
    assert parse_user(root, user) == expected


def test_unknown_user_names_the_file(root):
    with pytest.raises(ContainerError) as caught:
        parse_user(root, "ghost")
    assert "/etc/passwd" in str(caught.value)


def test_exit_code_follows_the_shell_convention():
    assert exit_code(3 << 8) == 3
    assert exit_code(9) == 137  # killed by SIGKILL


def test_enter_command_lists_only_the_containers_namespaces():
    assert enter_command(42, ["pid", "mount", "uts"]) == \
        "nsenter --target 42 --mount --uts --pid --root --wd -- /bin/sh"
