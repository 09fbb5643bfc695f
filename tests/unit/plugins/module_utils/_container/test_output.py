# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import os
import stat

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._container import output
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.launch import (
    check_timeout,
    failure_message,
)


def feed_in_chunks(capture, data, size):
    for start in range(0, len(data), size):
        capture.feed(data[start:start + size])


@pytest.mark.parametrize("chunk", [1, 7, 64, 65536])
def test_short_output_comes_back_whole_whatever_the_chunks(chunk):
    capture = output.StreamCapture("stdout", 100)
    data = bytes(bytearray(range(100)))
    feed_in_chunks(capture, data, chunk)
    assert capture.data() == data and not capture.truncated and capture.total == 100


@pytest.mark.parametrize("chunk", [1, 13, 4096, 10 ** 6])
def test_long_output_keeps_exactly_its_head_and_tail(chunk):
    capture = output.StreamCapture("stderr", 10)
    data = b"".join(b"%06d" % i for i in range(20000))
    feed_in_chunks(capture, data, chunk)
    kept = capture.data()
    assert capture.truncated and capture.total == len(data)
    assert kept.startswith(data[:5]) and kept.endswith(data[-5:])
    marker = kept[5:-5].decode()
    assert marker == ("\n[... %d bytes of stderr cut here: output_limit is 10 bytes; keep_output: true keeps "
                      "all of it ...]\n" % (len(data) - 10))


def test_memory_stays_bounded_by_twice_the_limit():
    capture = output.StreamCapture("stdout", 1000)
    for _round in range(2000):
        capture.feed(b"x" * 333)
        assert len(capture.head) <= 500 and len(capture.tail) <= 2 * 500 + 333


def test_an_odd_limit_splits_head_and_tail_and_zero_returns_only_the_marker():
    odd = output.StreamCapture("stdout", 5)
    odd.feed(b"abcdefghij")
    assert odd.data().startswith(b"ab\n[...") and odd.data().endswith(b"...]\nhij")
    none = output.StreamCapture("stdout", 0)
    none.feed(b"secret")
    assert none.truncated and b"secret" not in none.data() and none.data().startswith(b"\n[... 6 bytes")
    empty = output.StreamCapture("stdout", 0)
    assert empty.data() == b"" and not empty.truncated


def test_invalid_utf8_and_a_cut_through_a_character_are_replaced():
    capture = output.StreamCapture("stdout", 4)
    capture.feed(u"é\xff".encode("utf-8") + b"\xff" + u"€€".encode("utf-8"))
    text = capture.text()
    assert text.startswith(u"é") and u"\ufffd" in text


def test_kept_files_get_every_byte_mode_0600_and_are_never_reused(tmp_path):
    directory = tmp_path / "out"
    settings = output.OutputSettings(limit=8, keep=True, directory=str(directory), label="web")
    capture = output.Capture(settings)
    capture["stdout"].feed(b"0123456789" * 100)
    capture["stderr"].feed(b"oops\n")
    results = capture.results()
    assert stat.S_IMODE(os.stat(str(directory)).st_mode) == 0o700
    with open(results["stdout_path"], "rb") as handle:
        assert handle.read() == b"0123456789" * 100
    with open(results["stderr_path"], "rb") as handle:
        assert handle.read() == b"oops\n"
    for name in ("stdout_path", "stderr_path"):
        assert stat.S_IMODE(os.stat(results[name]).st_mode) == 0o600
        assert os.path.basename(results[name]).startswith("web-")
    assert results["stdout_truncated"] and not results["stderr_truncated"]
    assert ("the whole stdout is in %s" % results["stdout_path"]) in results["stdout"]
    again = output.Capture(settings).results()
    assert again["stdout_path"] != results["stdout_path"]


def test_without_keep_nothing_is_written_and_no_path_is_returned(tmp_path):
    directory = tmp_path / "out"
    results = output.Capture(output.OutputSettings(limit=8, directory=str(directory))).results()
    assert "stdout_path" not in results and not directory.exists()
    assert results == {"stdout": "", "stderr": "", "stdout_truncated": False, "stderr_truncated": False}


def test_a_symlinked_output_dir_is_refused(tmp_path):
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ContainerError, match="not a symlink"):
        output.Capture(output.OutputSettings(keep=True, directory=str(tmp_path / "link")))
    assert os.listdir(str(tmp_path / "real")) == []


def test_an_output_dir_others_can_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(ContainerError, match="only root can write"):
        output.Capture(output.OutputSettings(keep=True, directory=str(shared)))
    assert os.listdir(str(shared)) == []


def test_a_full_disk_stops_the_file_not_the_result():
    capture = output.StreamCapture("stdout", 100, fd=os.open("/dev/full", os.O_WRONLY), path="/dev/full")
    capture.feed(b"data")
    capture.feed(b"more")
    assert capture.fd is None and "No space left" in capture.write_error
    assert capture.data() == b"datamore"


@pytest.mark.parametrize("params, message", [
    ({"output_limit": -1}, "output_limit must be a number of bytes >= 0"),
    ({"output_limit": True}, "output_limit must be a number of bytes >= 0"),
    ({"output_dir": "relative/dir"}, "output_dir must be an absolute path"),
])
def test_bad_output_settings_are_refused(params, message):
    with pytest.raises(ContainerError, match=message):
        output.OutputSettings.from_params(params, label="run")


def test_last_lines_quotes_the_end_of_stderr_on_one_line():
    assert output.last_lines("a\n\nb\nc\nd\ne\nf\n") == "b | c | d | e | f"
    assert output.last_lines("") == ""
    long = output.last_lines("x" * 5000)
    assert long.startswith("...") and len(long) == 1003


@pytest.mark.parametrize("value", [-1, -0.001, float("nan"), float("inf"), float("-inf"), "soon", True])
def test_a_timeout_that_is_no_deadline_is_refused(value):
    with pytest.raises(ContainerError, match=r"^timeout must be a finite number of seconds >= 0 \(got "):
        check_timeout(value)


def test_zero_or_none_means_no_timeout_and_huge_finite_values_are_kept():
    assert check_timeout(None) is None and check_timeout(0) is None and check_timeout(0.0) is None
    assert check_timeout(1.5) == 1.5
    assert check_timeout(1e300) == 1e300 and not math.isinf(check_timeout(1e300))


@pytest.mark.parametrize("result, timeout, expected", [
    ({"rc": 0, "stderr": "noise"}, None, None),
    ({"rc": None}, None, None),
    ({"rc": 3, "stderr": "first\nlast\n"}, None, "command exited with rc 3: first | last"),
    ({"rc": 2, "stderr": ""}, None, "command exited with rc 2 (stderr is empty)"),
    ({"rc": 137, "timed_out": True, "stderr": "working\n"}, 2.5,
     "command timed out after 2.5 s and was killed (rc 137): working"),
    ({"rc": 137, "oom_killed": True, "stderr": "Killed\n"}, None,
     "command exited with rc 137: the cgroup's memory limit was hit and the OOM killer killed it: Killed"),
])
def test_failure_message_says_the_rc_and_the_end_of_stderr(result, timeout, expected):
    assert failure_message(result, timeout) == expected
