# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._units import (
    UnitError,
    format_cpu_list,
    parse_count,
    parse_cpu_list,
    parse_cpus,
    parse_size,
)


@pytest.mark.parametrize("text, expected", [
    ("1024", 1024),
    (1024, 1024),
    ("512M", 512 << 20),
    ("512m", 512 << 20),
    ("512MB", 512 << 20),
    ("512MiB", 512 << 20),
    ("1G", 1 << 30),
    ("1.5G", 3 << 29),
    ("64k", 64 << 10),
    ("2T", 2 << 40),
    (" 256M ", 256 << 20),
    ("10b", 10),
    ("0", 0),
    ("max", None),
    ("MAX", None),
    ("-1", None),
    (-1, None),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["12XB", "", "M", "1.2.3G", "one", "5 G B", True, "-5M", -2])
def test_parse_size_refuses(text):
    with pytest.raises(UnitError):
        parse_size(text)


def test_parse_size_message_names_value_and_fix():
    with pytest.raises(UnitError) as caught:
        parse_size("12XB")
    assert "12XB" in str(caught.value) and "512M" in str(caught.value)


@pytest.mark.parametrize("value, expected", [("0.5", 0.5), (0.5, 0.5), (2, 2.0), ("1.25", 1.25), ("max", None)])
def test_parse_cpus(value, expected):
    assert parse_cpus(value) == expected


@pytest.mark.parametrize("value", ["0", 0, -1, "-0.5", "half", "nan", "inf", True, None])
def test_parse_cpus_refuses(value):
    with pytest.raises(UnitError):
        parse_cpus(value)


@pytest.mark.parametrize("value, expected", [(64, 64), ("64", 64), ("max", None), (-1, None), ("-1", None), (0, 0)])
def test_parse_count(value, expected):
    assert parse_count(value) == expected


@pytest.mark.parametrize("value", ["-5", -5, "1.5", 1.5, "many", True])
def test_parse_count_refuses(value):
    with pytest.raises(UnitError):
        parse_count(value)


@pytest.mark.parametrize("text, expected", [
    ("0-3,6", (0, 1, 2, 3, 6)),
    ("0", (0,)),
    (0, (0,)),
    ("3,1,2", (1, 2, 3)),
    ("0-1, 1-2", (0, 1, 2)),
    ("", ()),
])
def test_parse_cpu_list(text, expected):
    assert parse_cpu_list(text) == expected


@pytest.mark.parametrize("text", ["3-1", "a", "0-", "1,,2", "0-1-2"])
def test_parse_cpu_list_refuses(text):
    with pytest.raises(UnitError):
        parse_cpu_list(text)


@pytest.mark.parametrize("numbers, expected", [
    ((0, 1, 2, 3, 6), "0-3,6"), ((0,), "0"), ((1, 3, 5), "1,3,5"), ((), ""), ((4, 5, 7, 8, 9), "4-5,7-9"),
])
def test_format_cpu_list(numbers, expected):
    assert format_cpu_list(numbers) == expected
    assert parse_cpu_list(expected) == tuple(numbers)
