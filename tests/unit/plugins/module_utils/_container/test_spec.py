# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.spec import (
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
