# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""beneath.py: openat2 and the hand walk that replaces it agree, and nothing leads above the root."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os

import pytest

from ansible_collections.handmade.containers.plugins.module_utils import _syscalls as sys_
from ansible_collections.handmade.containers.plugins.module_utils._container import beneath

IN_ROOT = sys_.RESOLVE_IN_ROOT
BENEATH = sys_.RESOLVE_BENEATH
OWN = sys_.RESOLVE_BENEATH | sys_.RESOLVE_NO_SYMLINKS


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    """open_beneath through openat2, or forced onto the hand walk as on a kernel before 5.6."""
    if request.param == "walk":
        def no_openat2(*_args):
            raise OSError(errno.ENOSYS, "openat2: Function not implemented")
        monkeypatch.setattr(sys_, "openat2", no_openat2)
        monkeypatch.setattr(beneath._Openat2, "available", True)
    yield request.param
    monkeypatch.setattr(beneath._Openat2, "available", True)


@pytest.fixture
def tree(tmp_path):
    """A root and a host directory beside it that nothing may reach."""
    root, host = tmp_path / "root", tmp_path / "host"
    for directory in (root / "etc", root / "var" / "lib", host / "secret"):
        directory.mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root")
    os.symlink("/etc", str(root / "abs"))                        # absolute: starts again at the root
    os.symlink("../etc", str(root / "var" / "rel"))              # relative, climbing one level
    os.symlink("../../../../../../" + str(host).lstrip("/"), str(root / "var" / "out"))  # above the root
    os.symlink(str(host), str(root / "var" / "host"))            # an absolute host path
    os.symlink("loop-b", str(root / "loop-a"))
    os.symlink("loop-a", str(root / "loop-b"))
    fd = os.open(str(root), os.O_PATH | os.O_DIRECTORY)
    yield fd, root, host
    os.close(fd)


def _identity(fd):
    info = os.fstat(fd)
    os.close(fd)
    return info.st_dev, info.st_ino


def _same(path):
    info = os.lstat(str(path))
    return info.st_dev, info.st_ino


def _errno(call):
    with pytest.raises(OSError) as caught:
        call()
    return caught.value.errno


@pytest.mark.parametrize("path, expected", [
    ("etc/passwd", "etc/passwd"),
    ("/etc/passwd", "etc/passwd"),
    ("abs/passwd", "etc/passwd"),
    ("var/rel/passwd", "etc/passwd"),
    ("var/../etc", "etc"),
    ("../../etc", "etc"),                 # clamped at the root
    ("var/out/secret", None),             # the climb stops at the root: <root>/<host path>, not there
    ("var/host/secret", None),            # /<host path> inside the root: not there
    ("", ""),
])
def test_in_root_resolves_as_the_container_would(resolver, tree, path, expected):
    fd, root, _host = tree
    if expected is None:
        assert _errno(lambda: beneath.open_beneath(fd, path, os.O_PATH, IN_ROOT)) == errno.ENOENT
    else:
        assert _identity(beneath.open_beneath(fd, path, os.O_PATH, IN_ROOT)) == _same(root / expected)


@pytest.mark.parametrize("path, flags, resolve, code", [
    ("../etc", os.O_PATH, BENEATH, errno.EXDEV),
    ("abs/passwd", os.O_PATH, BENEATH, errno.EXDEV),
    ("var/out", os.O_PATH, BENEATH, errno.EXDEV),
    ("var/rel/passwd", os.O_PATH, OWN, errno.ELOOP),
    ("loop-a", os.O_PATH, IN_ROOT, errno.ELOOP),
    ("etc/passwd/x", os.O_PATH, IN_ROOT, errno.ENOTDIR),
    ("abs", os.O_RDONLY | os.O_NOFOLLOW, IN_ROOT, errno.ELOOP),
    ("etc/passwd", os.O_RDONLY | os.O_DIRECTORY, IN_ROOT, errno.ENOTDIR),
])
def test_ways_out_and_forbidden_links_fail_as_openat2_fails(resolver, tree, path, flags, resolve, code):
    fd, _root, _host = tree
    assert _errno(lambda: beneath.open_beneath(fd, path, flags, resolve)) == code


def test_o_path_and_o_nofollow_open_the_link_itself(resolver, tree):
    fd, root, _host = tree
    assert _identity(beneath.open_beneath(fd, "abs", os.O_PATH | os.O_NOFOLLOW, IN_ROOT)) == _same(root / "abs")


def test_a_readable_open_reads_the_file_below_the_root(resolver, tree):
    fd, _root, _host = tree
    opened = beneath.open_beneath(fd, "abs/passwd", os.O_RDONLY, IN_ROOT)
    try:
        assert os.read(opened, 10) == b"root"
    finally:
        os.close(opened)


def test_the_walk_gives_up_after_forty_links(tree):
    fd, root, _host = tree
    previous = "etc"
    for index in range(41):
        os.symlink(previous, str(root / ("chain%d" % index)))
        previous = "chain%d" % index
    assert _identity(beneath.walk(fd, "chain39", os.O_PATH, IN_ROOT)) == _same(root / "etc")
    assert _errno(lambda: beneath.walk(fd, "chain40", os.O_PATH, IN_ROOT)) == errno.ELOOP


def test_enosys_is_remembered_and_the_walk_takes_over(tree, monkeypatch):
    calls = []

    def no_openat2(*_args):
        calls.append(1)
        raise OSError(errno.ENOSYS, "openat2: Function not implemented")
    monkeypatch.setattr(sys_, "openat2", no_openat2)
    monkeypatch.setattr(beneath._Openat2, "available", True)
    fd, root, _host = tree
    for _round in range(3):
        assert _identity(beneath.open_beneath(fd, "abs/passwd", os.O_PATH, IN_ROOT)) == _same(root / "etc/passwd")
    assert calls == [1]
    monkeypatch.setattr(beneath._Openat2, "available", True)


def test_eagain_from_a_racing_rename_is_retried_then_walked(tree, monkeypatch):
    # The kernel answers EAGAIN to a ``..`` lookup that any rename or
    # mount on the host raced; a busy host must not turn that into an error.
    fd, root, _host = tree
    real_openat2 = sys_.openat2
    calls = []

    def raced_twice(*args):
        calls.append(1)
        if len(calls) <= 2:
            raise OSError(errno.EAGAIN, "openat2: Resource temporarily unavailable")
        return real_openat2(*args)
    monkeypatch.setattr(sys_, "openat2", raced_twice)
    monkeypatch.setattr(beneath._Openat2, "available", True)
    assert _errno(lambda: beneath.open_beneath(fd, "var/out", os.O_PATH, BENEATH)) == errno.EXDEV
    assert len(calls) == 3

    def always_raced(*_args):
        calls.append(1)
        raise OSError(errno.EAGAIN, "openat2: Resource temporarily unavailable")
    monkeypatch.setattr(sys_, "openat2", always_raced)
    del calls[:]
    assert _identity(beneath.open_beneath(fd, "abs/passwd", os.O_PATH, IN_ROOT)) == _same(root / "etc/passwd")
    assert _errno(lambda: beneath.open_beneath(fd, "var/out", os.O_PATH, BENEATH)) == errno.EXDEV
    assert len(calls) == 2 * beneath.OPENAT2_TRIES
    assert beneath._Openat2.available


def test_make_path_makes_what_is_missing_inside_and_takes_it_back(resolver, tree):
    fd, root, host = tree
    made = beneath.Made()
    os.symlink("/var", str(root / "var" / "lib" / "up"))
    # Through symlinks, as the container sees them: made inside the root.
    os.close(beneath.make_path(fd, "var/lib/up/new/dir", made=made))
    os.close(beneath.make_path(fd, "abs/conf/file", directory=False, mode=0o640, made=made))
    assert (root / "var" / "new" / "dir").is_dir()
    assert oct((root / "etc" / "conf" / "file").stat().st_mode & 0o777) == oct(0o640)
    assert oct((root / "etc" / "conf").stat().st_mode & 0o777) == oct(0o755)
    assert os.listdir(str(host)) == ["secret"]
    made.remove(fd)
    assert sorted(os.listdir(str(root / "var"))) == ["host", "lib", "out", "rel"]
    assert sorted(os.listdir(str(root / "etc"))) == ["passwd"]


def test_remove_never_deletes_through_a_symlink_swapped_in(resolver, tree):
    fd, root, host = tree
    made = beneath.Made()
    os.close(beneath.make_path(fd, "var/lib/point/inner", made=made))
    os.rmdir(str(root / "var" / "lib" / "point" / "inner"))
    os.rmdir(str(root / "var" / "lib" / "point"))
    os.symlink(str(host), str(root / "var" / "lib" / "point"))  # a link to the host by the same name
    (host / "inner").mkdir()
    made.remove(fd)
    assert os.path.islink(str(root / "var" / "lib" / "point"))
    assert sorted(os.listdir(str(host))) == ["inner", "secret"]


def test_make_path_never_follows_a_symlink_of_its_own_paths(resolver, tree):
    fd, root, host = tree
    os.symlink(str(host), str(root / "proc"))
    assert _errno(lambda: beneath.make_path(fd, "proc", resolve=OWN)) == errno.ELOOP
    (root / "file").write_text("")
    assert _errno(lambda: beneath.make_path(fd, "file", resolve=OWN)) == errno.ENOTDIR
    assert os.listdir(str(host)) == ["secret"]


def test_a_dangling_symlink_is_not_made_through(resolver, tree):
    fd, root, host = tree
    os.symlink(str(host) + "/absent", str(root / "dangling"))
    # The link is not followed to make its target: mkdirat finds the link itself there.
    assert _errno(lambda: beneath.make_path(fd, "dangling/x")) == errno.EEXIST
    assert os.listdir(str(host)) == ["secret"]
