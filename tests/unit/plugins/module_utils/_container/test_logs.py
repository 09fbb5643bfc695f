# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._container.logs import (
    CHUNK,
    RotatingWriter,
    StateFileError,
    check_limits,
)


@pytest.fixture
def log_dir(tmp_path):
    fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)


def _files(path):
    return dict((entry.name, entry.read_bytes()) for entry in path.iterdir())


def test_files_rotate_at_the_size_and_keep_the_newest_lines_whole(log_dir):
    path, fd = log_dir
    writer = RotatingWriter(fd, 100, 3)
    lines = [b"line %03d\n" % number for number in range(100)]  # 9 bytes each
    for line in lines:
        writer.write(line)
    writer.close()
    files = _files(path)
    assert sorted(files) == ["container.log", "container.log.1", "container.log.2"]
    assert all(len(data) <= 100 and data.endswith(b"\n") for data in files.values())
    kept = files["container.log.2"] + files["container.log.1"] + files["container.log"]
    assert b"".join(lines).endswith(kept) and len(kept) >= 2 * 99


def test_a_chunk_is_cut_after_its_last_whole_line_that_fits(log_dir):
    path, fd = log_dir
    writer = RotatingWriter(fd, 10, 2)
    writer.write(b"aaaa\nbbbb\ncc\n")
    writer.close()
    assert _files(path) == {"container.log.1": b"aaaa\nbbbb\n", "container.log": b"cc\n"}


def test_a_line_under_way_is_finished_before_rotating(log_dir):
    path, fd = log_dir
    writer = RotatingWriter(fd, 10, 2)
    writer.write(b"12345678")  # part of a line, as a pipe read may end
    writer.write(b"9ab\nnext\n")
    writer.close()
    assert _files(path) == {"container.log.1": b"123456789ab\n", "container.log": b"next\n"}


def test_a_line_longer_than_a_file_is_split_and_nothing_is_lost(log_dir):
    path, fd = log_dir
    writer = RotatingWriter(fd, 10, 5)
    writer.write(b"x" * 25 + b"\n")
    writer.close()
    files = _files(path)
    assert files["container.log.2"] + files["container.log.1"] + files["container.log"] == b"x" * 25 + b"\n"


def test_the_line_under_way_is_split_beyond_one_chunk(log_dir):
    path, fd = log_dir
    writer = RotatingWriter(fd, 1024, 200)
    data = b"y" * 1000 + b"y" * (CHUNK + 10) + b"\n"
    writer.write(data[:1000])
    writer.write(data[1000:])
    writer.close()
    files = _files(path)
    order = sorted(files, key=lambda entry: -int(entry.rsplit(".", 1)[1]) if entry != "container.log" else 1)
    assert all(len(files[entry]) <= 1024 for entry in order)
    assert b"".join(files[entry] for entry in order) == data


def test_one_file_means_the_log_starts_over(log_dir):
    path, fd = log_dir
    writer = RotatingWriter(fd, 10, 1)
    writer.write(b"old line\nnew line\n")
    writer.close()
    assert _files(path) == {"container.log": b"new line\n"}


def test_an_existing_log_is_appended_and_extra_rotated_files_go(log_dir):
    path, fd = log_dir
    (path / "container.log").write_bytes(b"before\n")
    for index in (1, 2, 3, 7):
        (path / ("container.log.%d" % index)).write_bytes(b"old %d\n" % index)
    (path / "container.log.x").write_bytes(b"not ours\n")
    writer = RotatingWriter(fd, 100, 2)
    writer.write(b"after\n")
    writer.close()
    assert _files(path) == {"container.log": b"before\nafter\n", "container.log.1": b"old 1\n",
                            "container.log.x": b"not ours\n"}


def test_planted_symlinks_are_refused_or_replaced_never_followed(log_dir, tmp_path):
    path, fd = log_dir
    victim = tmp_path.parent / ("%s-victim" % tmp_path.name)
    victim.write_bytes(b"secret\n")
    try:
        os.symlink(str(victim), str(path / "container.log"))
        with pytest.raises(StateFileError) as caught:
            RotatingWriter(fd, 10, 3)
        assert str(caught.value) == "container.log is a symlink, refused: remove it"
        os.unlink(str(path / "container.log"))
        os.symlink(str(victim), str(path / "container.log.1"))
        writer = RotatingWriter(fd, 10, 3)
        writer.write(b"aaaa\nbbbb\ncccc\n")
        writer.close()
        assert victim.read_bytes() == b"secret\n"
        assert not os.path.islink(str(path / "container.log.1"))
    finally:
        victim.unlink()


def test_a_fifo_where_the_log_belongs_is_refused_without_blocking(log_dir):
    path, fd = log_dir
    os.mkfifo(str(path / "container.log"))
    with pytest.raises(StateFileError) as caught:
        RotatingWriter(fd, 10, 3)
    assert "container.log is not a regular file" in str(caught.value)


@pytest.mark.parametrize("size, files, expected", [
    ("5m", 4, (5 * 1024 * 1024, 4)),
    (2048, "3", (2048, 3)),
    ("1k", 1, (1024, 1)),
])
def test_limits_are_read_as_bytes_and_a_count(size, files, expected):
    assert check_limits(size, files) == expected


@pytest.mark.parametrize("size, files, message", [
    ("lots", 4, "log_max_size: 'lots' is not a size"),
    ("512", 4, "log_max_size 512 is less than 1024 bytes"),
    ("max", 4, "the log of a detached container is always rotated"),
    ("5m", 0, "log_max_files 0 is out of range: give 1 to 1000"),
    ("5m", 1001, "log_max_files 1001 is out of range"),
    ("5m", "two", "log_max_files 'two' is not a whole number"),
])
def test_bad_limits_name_the_option_and_the_fix(size, files, message):
    with pytest.raises(ValueError) as caught:
        check_limits(size, files)
    assert message in str(caught.value)
