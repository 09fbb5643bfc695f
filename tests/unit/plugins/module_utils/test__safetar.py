# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tar header reader and the safety rules of _safetar, on names alone (no files written)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import tarfile

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._safetar import (
    BLOCKDEV,
    CHARDEV,
    ArchiveError,
    DIRECTORY,
    HARDLINK,
    Member,
    REGULAR,
    SYMLINK,
    _Replay,
    _Rules,
    iter_members,
    member_path,
    parse_pax,
    symlink_escapes,
)


class BytesReader:
    """The reader interface iter_members uses, over bytes in memory."""

    def __init__(self, data):
        self.stream = io.BytesIO(data)

    def read(self, size):
        return self.stream.read(size)


def archive(entries, tar_format=tarfile.GNU_FORMAT):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def info(name, kind=tarfile.REGTYPE, size=0, **fields):
    entry = tarfile.TarInfo(name)
    entry.type, entry.size = kind, size
    for key, value in fields.items():
        setattr(entry, key, value)
    return entry


def read_all(data):
    """(name, type, linkname, mode, uid, gid, size, mtime, payload) of every member."""
    reader, found = BytesReader(data), []
    for member in iter_members(reader):
        payload = reader.read(member.size) if member.type == REGULAR else b""
        reader.read(-member.size % 512 if member.type == REGULAR else 0)
        found.append((member.name, member.type, member.linkname, member.mode, member.uid, member.gid,
                      member.size, member.mtime, payload))
    return found


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_members_read_as_tarfile_wrote_them(tar_format):
    data = archive([
        (info("./etc", tarfile.DIRTYPE, mode=0o755, mtime=1700000000), None),
        (info("./etc/shadow", size=5, mode=0o640, uid=0, gid=42, mtime=1700000001), b"root:"),
        (info("./bin/bbsuid", size=2, mode=0o4111, mtime=1700000002), b"#!"),
        (info("./bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox"), None),
        (info("./etc/issue.net", tarfile.LNKTYPE, linkname="./etc/shadow"), None),
    ], tar_format)
    assert read_all(data) == [
        ("./etc/", DIRECTORY, "", 0o755, 0, 0, 0, 1700000000, b""),
        ("./etc/shadow", REGULAR, "", 0o640, 0, 42, 5, 1700000001, b"root:"),
        ("./bin/bbsuid", REGULAR, "", 0o4111, 0, 0, 2, 1700000002, b"#!"),
        ("./bin/sh", SYMLINK, "/bin/busybox", 0o644, 0, 0, 0, 0, b""),
        ("./etc/issue.net", HARDLINK, "./etc/shadow", 0o644, 0, 0, 0, 0, b""),
    ]


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_and_link_targets(tar_format):
    name, target = "./usr/" + "d" * 120 + "/file", "/" + "t" * 150
    data = archive([(info(name, size=3), b"abc"), (info("./link", tarfile.SYMTYPE, linkname=target), None)],
                   tar_format)
    members = read_all(data)
    assert [(m[0], m[2], m[8]) for m in members] == [(name, "", b"abc"), ("./link", target, b"")]


def test_large_ids_in_base_256():
    data = archive([(info("./f", uid=3000000000, gid=2 ** 33, mtime=2 ** 40), None)], tarfile.GNU_FORMAT)
    assert read_all(data)[0][4:6] == (3000000000, 2 ** 33)
    assert read_all(data)[0][7] == 2 ** 40


def test_pax_records():
    assert parse_pax(b"30 mtime=1700000000.123456789\n14 path=\xc3\xa9t\xc3\xa9\n") == {
        "mtime": "1700000000.123456789", "path": u"\u00e9t\u00e9"}
    with pytest.raises(ArchiveError, match="damaged"):
        parse_pax(b"99 path=short\n")


def test_a_damaged_header_is_reported():
    data = bytearray(archive([(info("./f", size=3), b"abc")]))
    data[0:1] = b"X"  # the name changes, the stored checksum does not
    with pytest.raises(ArchiveError, match="wrong checksum"):
        read_all(bytes(data))


def test_a_header_cut_short_is_reported():
    with pytest.raises(ArchiveError, match="truncated"):
        read_all(archive([(info("./f", size=3), b"abc")])[:300])


def test_sparse_members_are_refused():
    data = archive([(info("./sparse", size=0, pax_headers={"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}),
                     b"")], tarfile.PAX_FORMAT)
    with pytest.raises(ArchiveError, match="sparse"):
        read_all(data)


@pytest.mark.parametrize("name, path", [
    ("./etc/passwd", "etc/passwd"), ("etc//passwd", "etc/passwd"), (".", ""), ("./", ""),
    ("./a/./b/", "a/b"),
])
def test_member_path_cleans_names(name, path):
    assert member_path(name) == path


@pytest.mark.parametrize("name", ["/etc/passwd", "../etc/passwd", "a/../../b", "a/..", "//x"])
def test_member_path_refuses_escapes(name):
    assert member_path(name) is None


@pytest.mark.parametrize("path, target, escapes", [
    ("bin/sh", "/bin/busybox", False),            # absolute: resolves in the container
    ("etc/os-release", "../usr/lib/os-release", False),
    ("a/b/c", "../../x", False),
    ("a/b/c", "../../../x", True),
    ("link", "..", True),
    ("link", "./x/../../y", True),
    ("a/link", "x/../../y", False),
])
def test_symlink_escapes(path, target, escapes):
    assert symlink_escapes(path, target) is escapes


def member(name, kind=REGULAR, linkname=""):
    entry = Member()
    entry.name, entry.type, entry.linkname = name, kind, linkname
    entry.mode, entry.uid, entry.gid, entry.size, entry.mtime = 0o644, 0, 0, 0, 0
    entry.devmajor = entry.devminor = 0
    return entry


def admit_all(members, allow_devices=False):
    rules = _Rules(allow_devices)
    return [rules.admit(entry) for entry in members]


def test_rules_create_missing_parents_once_and_allow_repeated_names():
    admitted = admit_all([member("./usr/bin/a"), member("./usr/bin/b"), member("./usr/bin/a"),
                          member("./usr", DIRECTORY)])
    assert admitted == [("usr/bin/a", ["usr", "usr/bin"], False), ("usr/bin/b", [], False),
                        ("usr/bin/a", [], True), ("usr", [], False)]


@pytest.mark.parametrize("members, message", [
    ([member("link", SYMLINK, "/"), member("link/etc/passwd")], "through the symlink 'link'"),
    ([member("a", SYMLINK, "/tmp"), member("a/b/c", DIRECTORY)], "through the symlink 'a'"),
    ([member("f"), member("f/g")], "parent 'f' is not a directory"),
    ([member("d", DIRECTORY), member("d")], "replace the directory"),
    ([member("h", HARDLINK, "/etc/shadow")], "outside the tree"),
    ([member("h", HARDLINK, "later")], "not a file earlier in the archive"),
    ([member("s", SYMLINK, "../x")], "leaves the tree"),
    ([member("null", CHARDEV)], "device node"),
    ([member("f", b"S")], "not supported"),
    ([member(".", REGULAR)], "top of the tree must be a directory"),
], ids=["symlink-parent", "symlink-grandparent", "file-parent", "dir-replaced", "hardlink-abs",
        "hardlink-forward", "symlink-out", "device", "sparse-type", "top-file"])
def test_rules_refuse_naming_the_member(members, message):
    with pytest.raises(ArchiveError, match="refusing to extract %r: .*%s" % (members[-1].name, message)):
        admit_all(members)


def test_a_hard_link_to_a_symlink_is_a_symlink_for_the_rules():
    with pytest.raises(ArchiveError, match="through the symlink 'alias'"):
        admit_all([member("link", SYMLINK, "/"), member("alias", HARDLINK, "link"), member("alias/x")])


def test_devices_when_allowed():
    assert admit_all([member("dev/null", CHARDEV), member("dev/sda", BLOCKDEV)], allow_devices=True)[1][0] == "dev/sda"


def test_reads_and_skips_across_chunk_boundaries():
    reader = _Replay([b"abc", b"defg", b"h"])
    assert reader.read(2) == b"ab"
    assert reader.skip(3)  # c, d, e
    assert reader.read(10) == b"fgh"
    assert reader.read(1) == b""
    assert reader.skip(1) is False


@pytest.mark.parametrize("limit, kept", [(4, [b"ab", b"cd"]), (3, None)])
def test_kept_chunks_stop_at_the_limit(limit, kept):
    reader = _Replay([b"ab", b"cd"])
    reader.keep(limit)
    assert reader.read(4) == b"abcd"
    assert reader.kept == kept
