# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""inspect.py: the log tail read from the end of a file, its bounds, and the ISO 8601 times."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._container import inspect
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError


def last_lines(tmp_path, data, count, budget=inspect.MAX_TAIL_BYTES, chunk=None, monkeypatch=None):
    path = tmp_path / "log"
    path.write_bytes(data)
    if chunk is not None:
        monkeypatch.setattr(inspect, "READ_CHUNK", chunk)
    fd = os.open(str(path), os.O_RDONLY)
    try:
        newest, used = inspect._last_lines(fd, count, budget)
    finally:
        os.close(fd)
    return list(reversed(newest)), used


@pytest.mark.parametrize("chunk", [3, 7, 65536])
def test_the_last_lines_whatever_the_chunks(tmp_path, monkeypatch, chunk):
    data = b"".join(b"line%d\n" % number for number in range(50))
    assert last_lines(tmp_path, data, 3, chunk=chunk, monkeypatch=monkeypatch)[0] == ["line47", "line48", "line49"]
    assert last_lines(tmp_path, data, 100, chunk=chunk, monkeypatch=monkeypatch)[0] == [
        "line%d" % number for number in range(50)]


def test_a_last_line_without_its_newline_counts(tmp_path):
    assert last_lines(tmp_path, b"a\nb\nstill writing", 2)[0] == ["b", "still writing"]


def test_an_empty_log_has_no_lines(tmp_path):
    assert last_lines(tmp_path, b"", 5) == ([], 0)


def test_a_long_line_is_cut_and_says_how_much(tmp_path):
    lines = last_lines(tmp_path, b"x" * (inspect.MAX_LINE_BYTES + 100) + b"\nend\n", 2)[0]
    assert lines[0] == "x" * inspect.MAX_LINE_BYTES + " [100 more bytes]" and lines[1] == "end"


def test_no_more_than_the_budget_is_read_and_a_partial_line_is_not_returned(tmp_path):
    data = b"first line, read only in part\n" + b"".join(b"l%d\n" % number for number in range(10))
    lines, used = last_lines(tmp_path, data, 100, budget=20)
    assert used == 20 and lines[-1] == "l9" and all(line.startswith("l") and len(line) == 2 for line in lines)


def test_one_line_longer_than_the_budget_gives_its_end_marked_as_cut(tmp_path):
    lines, used = last_lines(tmp_path, b"y" * 100, 1, budget=40)
    assert used == 40 and lines == ["[cut] " + "y" * 40]


def test_invalid_bytes_do_not_break_the_result(tmp_path):
    assert last_lines(tmp_path, b"caf\xe9\n", 1)[0] == ["caf\ufffd"]


@pytest.mark.parametrize("value", [0, -1, 10001, True, "5", 1.5])
def test_logs_tail_outside_its_range_is_refused(value):
    with pytest.raises(ContainerError, match="logs_tail must be a number of lines from 1 to 10000"):
        inspect.check_logs_tail(value)


def test_times_are_iso_8601_in_utc_to_the_millisecond():
    assert inspect._iso(0) == "1970-01-01T00:00:00.000Z"
    assert inspect._iso(1796163303.5125) == "2026-12-01T22:15:03.512Z"
    assert inspect._iso(None) is None


def test_what_is_returned_is_bounded_as_json_escapes_it(monkeypatch):
    # An invalid byte decodes to U+FFFD, six bytes once JSON escapes it.
    monkeypatch.setattr(inspect, "MAX_TAIL_BYTES", 100)
    lines = ["\ufffd" * 10] * 5
    kept = inspect._within(lines, inspect.MAX_TAIL_BYTES)
    assert kept[0].startswith("[4 older lines left out: the result holds at most 100 bytes of log]")
    assert kept[1:] == lines[-1:]
