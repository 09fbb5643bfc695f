# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (
    RECORD_FORMAT,
    ContainerRecord,
    StateDir,
    config_digest,
    find_strays,
    parse_start_time,
    process_start_time,
)

# A real /proc/<pid>/stat line, the command name holding a space and ")".
STAT_LINE = ("4242 (my prog) x) S 1 4242 4242 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0 "
             "987654 2400000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n")


def test_start_time_is_the_22nd_field_even_with_parentheses_in_the_name():
    assert parse_start_time(STAT_LINE) == 987654


def test_a_zombie_has_no_start_time():
    assert parse_start_time(STAT_LINE.replace(") S ", ") Z ")) is None


def _fake_proc(tmp_path, pid, line):
    directory = tmp_path / str(pid)
    directory.mkdir()
    (directory / "stat").write_text(line)
    return str(tmp_path)


def test_record_is_running_only_with_the_same_start_time(tmp_path):
    proc = _fake_proc(tmp_path, 4242, STAT_LINE)
    assert process_start_time(4242, proc) == 987654
    assert ContainerRecord(pid=4242, start_time=987654).is_running(proc)
    # Same pid, another process: a reused pid is not the container.
    assert not ContainerRecord(pid=4242, start_time=987653).is_running(proc)
    assert not ContainerRecord(pid=4343, start_time=987654).is_running(proc)
    assert not ContainerRecord().is_running(proc)


def test_config_digest_ignores_key_order_and_sees_values():
    first = config_digest({"command": ["/bin/sh"], "hostname": "a"})
    assert first == config_digest({"hostname": "a", "command": ["/bin/sh"]})
    assert first != config_digest({"hostname": "b", "command": ["/bin/sh"]})
    assert len(first) == 64


def test_state_dir_round_trips_a_record_and_ignores_garbage(tmp_path):
    state_dir = StateDir("web", str(tmp_path))
    assert state_dir.read() is None
    os.makedirs(state_dir.path)
    record = ContainerRecord(name="web", pid=12, start_time=34, config_digest="d", config={"a": 1},
                             log_path=state_dir.log_path, created=1.5)
    state_dir.write(record)
    assert state_dir.read().to_dict() == record.to_dict()
    with open(state_dir.record_path, "w") as handle:
        handle.write("{half a record")
    assert state_dir.read() is None
    with open(state_dir.record_path, "w") as handle:
        handle.write("[1, 2]")
    assert state_dir.read() is None


def test_strays_are_found_by_their_stdin_fifo(tmp_path):
    state_dir = StateDir("web", str(tmp_path / "run"))
    proc = tmp_path / "proc"
    for pid, stdin in ((10, state_dir.fifo_path), (11, state_dir.fifo_path + " (deleted)"), (12, "/dev/null")):
        (proc / str(pid) / "fd").mkdir(parents=True)
        os.symlink(stdin, str(proc / str(pid) / "fd" / "0"))
    (proc / "self").mkdir()
    assert sorted(find_strays(state_dir, str(proc))) == [10, 11]


def test_a_record_carries_its_format_and_a_newer_one_is_refused(tmp_path):
    state_dir = StateDir("web", str(tmp_path))
    os.makedirs(state_dir.path)
    state_dir.write(ContainerRecord(name="web", pid=12, start_time=34))
    with open(state_dir.record_path) as handle:
        assert '"format": %d' % RECORD_FORMAT in handle.read()
    with open(state_dir.record_path, "w") as handle:
        handle.write('{"format": %d, "name": "web", "pid": 12}' % (RECORD_FORMAT + 1))
    with pytest.raises(ContainerError) as caught:
        state_dir.read()
    assert "newer than this collection reads" in str(caught.value)


def test_a_record_without_a_format_is_the_first_one(tmp_path):
    state_dir = StateDir("web", str(tmp_path))
    os.makedirs(state_dir.path)
    with open(state_dir.record_path, "w") as handle:
        handle.write('{"name": "web", "pid": 12, "start_time": 34, "config": {"workdir": "/srv"}}')
    record = state_dir.read()
    assert record.format == 1 and record.pid == 12 and record.config == {"workdir": "/srv"}
