# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._container import spec
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.spec import (
    _argv,
    _environment,
    _stop_timeout,
    parse_user,
    valid_hostname,
    valid_name,
)


@pytest.mark.parametrize("name, valid", [
    ("web", True), ("a", True), ("web-1.test_2", True), ("x" * 63, True),
    ("", False), ("-web", False), ("web/1", False), ("x" * 64, False), ("wéb", False), (None, False),
])
def test_container_names(name, valid):
    assert valid_name(name) is valid


def test_hostnames():
    assert valid_hostname("box-1.local") and valid_hostname("web_1")
    assert not valid_hostname(".box") and not valid_hostname("a b") and not valid_hostname("x" * 65)


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


@pytest.mark.parametrize("command, expected", [
    (None, ["/bin/sh"]), ("", ["/bin/sh"]), ([], ["/bin/sh"]), ("echo 'a b' c", ["echo", "a b", "c"]),
    (["/bin/echo", 1, 2.5], ["/bin/echo", "1", "2.5"]),
])
def test_commands_become_argv(command, expected):
    assert _argv(command) == expected


@pytest.mark.parametrize("command, message", [
    ({"a": 1}, "command must be a list of strings or a string, got a dict"),
    (["/bin/echo", ["x"]], "command argument 1 is a list"),
    (["/bin/echo", None], "command argument 1 is a NoneType"),
    (["/bin/echo", "a\0b"], "command argument 1 holds a NUL byte"),
    ("echo 'open", "cannot be split like a shell would"),
])
def test_commands_that_no_program_can_receive_are_refused(command, message):
    with pytest.raises(ContainerError) as caught:
        _argv(command)
    assert message in str(caught.value)


def test_environment_values_become_strings_and_structures_are_refused():
    assert _environment({"A": 1, "B": "x", "C": True}) == {"A": "1", "B": "x", "C": "True"}
    for env, message in (({"A": [1]}, "env A is a list"), ({"": "x"}, "non-empty"),
                         ({"A=B": "x"}, "no '='"), ([("A", "B")], "mapping")):
        with pytest.raises(ContainerError) as caught:
            _environment(env)
        assert message in str(caught.value)


@pytest.mark.parametrize("user, message", [
    ("99999999999", "uid 99999999999 is out of range"), ("4294967295", "uid 4294967295 is out of range"),
    ("0:99999999999", "gid 99999999999 is out of range"), (["root"], "as a string"),
])
def test_ids_beyond_the_kernels_range_are_refused(root, user, message):
    with pytest.raises(ContainerError) as caught:
        parse_user(root, user)
    assert message in str(caught.value)


def test_the_largest_id_is_taken(root):
    assert parse_user(root, "4294967294:4294967294") == (4294967294, 4294967294)


@pytest.mark.parametrize("value", [-1, float("inf"), float("nan"), "soon", None])
def test_stop_timeouts_are_finite_and_not_negative(value):
    with pytest.raises(ContainerError) as caught:
        _stop_timeout(value)
    assert "stop_timeout" in str(caught.value)
    assert _stop_timeout("2.5") == 2.5 and _stop_timeout(0) == 0


def test_init_on_a_machine_without_a_built_in_init_names_the_ones_there_are(monkeypatch):
    monkeypatch.setattr(spec.os, "uname", lambda: ("Linux", "host", "6.1", "#1", "riscv64"))
    with pytest.raises(ContainerError, match="the built-in init exists for aarch64 and x86_64, and this host "
                                             "is riscv64: leave init out"):
        spec._init_program()


def test_init_on_this_machine_is_the_built_in_program():
    assert spec._init_program()[:4] == b"\x7fELF"
