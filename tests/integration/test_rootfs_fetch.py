"""rootfs_fetch on the real filesystem, as root, against the loopback Alpine mirror.

Every test works in its own directory (dest, cache) and removes it; nothing
here writes outside it. The malicious tarballs aim at paths inside that
directory too, so a regression in the extractor cannot damage the machine
running the tests: it would show up as a file in ``outside/``.
"""

import hashlib
import io
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

import pytest

from conftest import COLLECTIONS_PATH, MODULE_PACKAGE, _module_env, alpine_mirror_builder

STAMP = ".handmade-rootfs.json"


# ----------------------------------------------------------------- helpers

@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="test-rootfs_fetch-", dir="/var/tmp")
    os.mkdir(os.path.join(path, "outside"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mirror(alpine_mirror):
    """The session mirror, with its faults and request log reset around each test."""
    alpine_mirror.server.faults.clear()
    del alpine_mirror.server.requests[:]
    yield alpine_mirror
    alpine_mirror.server.faults.clear()


@pytest.fixture
def fetch(run_module, mirror, workdir):
    """``fetch(**options)``: run the module with this test's dest, cache and mirror as defaults."""
    def call(check_mode=False, diff=False, **options):
        args = {"dest": os.path.join(workdir, "rootfs"), "cache_dir": os.path.join(workdir, "cache"),
                "mirror": mirror.url}
        if "url" in options or "src" in options:
            del args["mirror"]
        args.update(options)
        return run_module("rootfs_fetch", args, check_mode=check_mode, diff=diff)
    return call


def path_of(mirror, version, arch="x86_64"):
    """The URL path (as the server logs it) of a release tarball."""
    return mirror.tarball_url(version, arch)[len(mirror.url):]


def leftovers(workdir):
    """Temporary files and directories a run could leave: none may survive a failure."""
    found = []
    for directory, names, files in os.walk(workdir):
        found += [os.path.join(directory, name) for name in names + files
                  if ".tmp-" in name or name.startswith((".download-", ".key-"))]
        if directory == workdir:
            names[:] = [name for name in names if name != "rootfs"]  # do not walk the tree itself
    return found


def assert_failed_cleanly(result, workdir, *phrases):
    assert result["failed"], result
    for phrase in phrases:
        assert phrase in result["msg"], result["msg"]
    assert not os.path.lexists(os.path.join(workdir, "rootfs")), "dest was created by a failed run"
    assert leftovers(workdir) == []
    cache = os.path.join(workdir, "cache")
    assert not os.path.isdir(cache) or [name for name in os.listdir(cache) if not name.startswith(("sha256-", "sha512-"))] == []
    assert os.listdir(os.path.join(workdir, "outside")) == []


def make_tarball(path, members):
    """Write a .tar.gz of ``members``: (name, kind, payload) with kind file/dir/symlink/hardlink/chardev."""
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if kind == "file":
                data = payload.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "chardev": tarfile.CHRTYPE}[kind]
            info.mode = 0o755
            if kind in ("symlink", "hardlink"):
                info.linkname = payload
            if kind == "chardev":
                info.devmajor, info.devminor = 1, 3
            tar.addfile(info)
    return "sha256:" + sha256_of(path)


def sha256_of(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture
def serve(workdir):
    """``serve(path) -> URL``: serve one file of the test on 127.0.0.1."""
    servers = []
    root = os.path.join(workdir, "served")
    os.mkdir(root)

    def start(path):
        name = os.path.basename(path)
        if os.path.dirname(path) != root:
            shutil.copy(path, os.path.join(root, name))
        if not servers:
            servers.append(alpine_mirror_builder.serving(root))
            servers.append(servers[0].__enter__())
        return "%s/%s" % (servers[1].url, name)
    yield start
    if servers:
        servers[0].__exit__(None, None, None)


# ----------------------------------------------------------------- the mirror itself

def test_mirror_serves_the_cdn_layout(alpine_mirror):
    version = alpine_mirror.versions[-1]
    url = alpine_mirror.tarball_url(version)
    body = urllib.request.urlopen(url, timeout=10).read()
    sidecar = urllib.request.urlopen(url + ".sha256", timeout=10).read().decode()
    assert sidecar == "%s  %s\n" % (hashlib.sha256(body).hexdigest(), os.path.basename(url))
    index = urllib.request.urlopen(alpine_mirror.url + "/latest-stable/releases/x86_64/latest-releases.yaml",
                                   timeout=10).read().decode()
    assert "flavor: alpine-minirootfs" in index
    assert "version: %s" % version in index


def test_busybox_rootfs_looks_like_alpine(busybox_rootfs):
    busybox = os.path.join(busybox_rootfs, "bin", "busybox")
    assert os.readlink(os.path.join(busybox_rootfs, "bin", "sh")) == "/bin/busybox"
    assert os.stat(busybox).st_mode & stat.S_IXUSR
    bbsuid = os.lstat(os.path.join(busybox_rootfs, "bin", "bbsuid"))
    assert stat.S_IMODE(bbsuid.st_mode) == 0o4111
    shadow = os.lstat(os.path.join(busybox_rootfs, "etc", "shadow"))
    assert (stat.S_IMODE(shadow.st_mode), shadow.st_uid) == (0o640, 0)
    assert stat.S_IMODE(os.lstat(os.path.join(busybox_rootfs, "tmp")).st_mode) == 0o1777
    issue = os.lstat(os.path.join(busybox_rootfs, "etc", "issue"))
    assert issue.st_nlink == 2
    with open(os.path.join(busybox_rootfs, "etc", "os-release")) as handle:
        assert "test fixture" in handle.read()


# ----------------------------------------------------------------- fetching and idempotence

def tree_listing(top):
    """Every entry's type, mode, owner, mtime, link target and content digest."""
    listing = {}
    for directory, names, files in os.walk(top):
        for name in names + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            entry = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid,
                     int(info.st_mtime))
            if stat.S_ISLNK(info.st_mode):
                entry += (os.readlink(path),)
            elif stat.S_ISREG(info.st_mode):
                entry += (sha256_of(path), info.st_nlink)
            listing[os.path.relpath(path, top)] = entry
    return listing


def test_first_run_installs_the_release_exactly_as_gnu_tar_would(fetch, mirror, workdir, busybox_rootfs):
    version = mirror.versions[-1]
    result = fetch(version=version)
    assert result["changed"] and not result["failed"], result
    dest = os.path.join(workdir, "rootfs")
    assert result["dest"] == dest
    assert result["version"] == version
    assert result["url"] == mirror.tarball_url(version)
    assert result["checksum"] == "sha256:" + sha256_of(mirror.tarball_path(version))
    assert result["size"] == os.path.getsize(mirror.tarball_path(version))
    assert result["cached"] is False and result["checksum_verified"] is True
    assert result["signature_verified"] is False
    assert result["files"] > 300 and result["elapsed"] > 0
    # busybox_rootfs is the same tarball extracted by GNU tar as root.
    ours = tree_listing(dest)
    assert ours.pop(STAMP)
    assert ours == tree_listing(busybox_rootfs)
    top, reference = os.stat(dest), os.stat(busybox_rootfs)
    assert (stat.S_IMODE(top.st_mode), int(top.st_mtime)) == (stat.S_IMODE(reference.st_mode), int(reference.st_mtime))
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "bin", "bbsuid")).st_mode) == 0o4111
    # The download is kept under both of its checksums.
    cache = sorted(os.listdir(os.path.join(workdir, "cache")))
    assert [name.split("-")[0] for name in cache] == ["sha256", "sha512"]


def test_second_run_changes_nothing_and_downloads_nothing(fetch, mirror):
    version = mirror.versions[-1]
    assert fetch(version=version)["changed"]
    del mirror.server.requests[:]
    again = fetch(version=version)
    assert again["changed"] is False and not again["failed"], again
    assert again["version"] == version and again["cached"] is True
    assert mirror.server.requests == []  # a pinned release: not even the sidecar


def test_a_branch_resolves_through_the_index_and_only_the_index_is_fetched_again(fetch, mirror):
    first = fetch(version="3.18")
    assert first["version"] == "3.18.5" and first["changed"]
    del mirror.server.requests[:]
    assert fetch(version="3.18")["changed"] is False
    assert mirror.server.requests == ["/v3.18/releases/x86_64/latest-releases.yaml"]
    stable = fetch(version="latest-stable", arch="aarch64")
    assert stable["version"] == mirror.versions[-1] and stable["changed"]
    assert stable["url"].endswith("/latest-stable/releases/aarch64/alpine-minirootfs-%s-aarch64.tar.gz"
                                  % mirror.versions[-1])


def test_check_mode_reports_the_change_and_touches_nothing(fetch, mirror, workdir):
    version = mirror.versions[-1]
    result = fetch(version=version, check_mode=True, diff=True)
    assert result["changed"] and not result["failed"], result
    assert result["checksum"] == "sha256:" + sha256_of(mirror.tarball_path(version))
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["version"] == version
    assert not os.path.exists(os.path.join(workdir, "rootfs"))
    assert not os.path.exists(os.path.join(workdir, "cache"))
    assert path_of(mirror, version) not in mirror.server.requests  # only the small sidecar
    fetch(version=version)
    assert fetch(version=version, check_mode=True)["changed"] is False


def test_a_new_version_replaces_the_tree_and_says_what_changed(fetch, mirror, workdir):
    old, new = mirror.versions[-2], mirror.versions[-1]
    fetch(version=old)
    dest = os.path.join(workdir, "rootfs")
    with open(os.path.join(dest, "root", "marker"), "w") as handle:
        handle.write("from the old tree")
    result = fetch(version=new, diff=True)
    assert result["changed"] and result["version"] == new
    assert result["diff"]["before"]["version"] == old and result["diff"]["after"]["version"] == new
    assert not os.path.exists(os.path.join(dest, "root", "marker"))
    with open(os.path.join(dest, "etc", "alpine-release")) as handle:
        assert handle.read().strip() == new
    assert sorted(os.listdir(workdir)) == ["cache", "outside", "rootfs"]


def test_a_second_dest_from_the_same_release_comes_from_the_cache(fetch, mirror, workdir):
    version = mirror.versions[-1]
    fetch(version=version)
    del mirror.server.requests[:]
    other = fetch(version=version, dest=os.path.join(workdir, "rootfs2"))
    assert other["changed"] and other["cached"] is True
    assert path_of(mirror, version) not in mirror.server.requests


def test_force_extracts_again(fetch, mirror):
    version = mirror.versions[-1]
    fetch(version=version)
    assert fetch(version=version, force=True)["changed"] is True


def test_a_replaced_tree_with_a_copied_stamp_is_not_trusted(fetch, mirror, workdir):
    version = mirror.versions[-1]
    fetch(version=version)
    dest = os.path.join(workdir, "rootfs")
    subprocess.run(["cp", "-a", dest, dest + ".copy"], check=True)
    shutil.rmtree(dest)
    os.rename(dest + ".copy", dest)
    assert fetch(version=version)["changed"] is True


def test_url_with_a_checksum_file_and_checksum_skip(fetch, mirror):
    url = mirror.tarball_url(mirror.versions[0])
    pinned = fetch(url=url, checksum="sha256:%s.sha256" % url, version="fixture-old")
    assert pinned["changed"] and pinned["checksum_verified"] is True and pinned["version"] == "fixture-old"
    assert fetch(url=url, checksum="sha256:%s.sha256" % url)["changed"] is False
    skipped = fetch(url=url, checksum="skip", force=True)
    assert skipped["checksum_verified"] is False
    assert "without checksum verification" in str(skipped.get("warnings"))


def test_src_on_the_host_and_its_replacement(fetch, mirror, workdir):
    src = os.path.join(workdir, "image.tar.gz")
    shutil.copy(mirror.tarball_path(mirror.versions[0]), src)
    first = fetch(src=src, checksum="sha512:" + hashlib.sha512(open(src, "rb").read()).hexdigest())
    assert first["changed"] and first["url"] is None and first["checksum_verified"]
    assert fetch(src=src)["changed"] is False
    shutil.copy(mirror.tarball_path(mirror.versions[-1]), src)
    assert fetch(src=src)["changed"] is True


def test_signature_checked_with_the_pinned_key(fetch, mirror):
    version = mirror.versions[-1]
    result = fetch(version=version, verify_signature=True, gpg_key=mirror.key_file,
                   gpg_fingerprint=mirror.fingerprint)
    assert result["signature_verified"] is True, result
    assert fetch(version=version, verify_signature=True, gpg_key=mirror.key_file,
                 gpg_fingerprint=mirror.fingerprint)["changed"] is False


def test_signature_checks_under_a_long_cache_dir(fetch, mirror, workdir):
    # gpg's agent socket lives in its home directory and a socket path has at
    # most 107 bytes: the home must not be placed under cache_dir.
    cache_dir = os.path.join(workdir, "a-cache-directory-with-a-rather-long-name" * 2, "cache")
    result = fetch(version=mirror.versions[-1], verify_signature=True, cache_dir=cache_dir,
                   gpg_key=mirror.key_file, gpg_fingerprint=mirror.fingerprint)
    assert result["signature_verified"] is True, result


def test_a_stale_cached_signature_is_fetched_again(fetch, mirror, workdir):
    version = mirror.versions[-1]
    options = dict(version=version, verify_signature=True, gpg_key=mirror.key_file,
                   gpg_fingerprint=mirror.fingerprint)
    first = fetch(**options)
    assert first["signature_verified"] is True, first
    # A cached signature of other bytes, as if the mirror re-signed the release
    # with a new key after it was cached; the mirror itself serves the good one.
    cached = [os.path.join(top, name) for top, _dirs, names in os.walk(os.path.join(workdir, "cache"))
              for name in names if name.endswith(".asc")]
    assert len(cached) == 1, cached
    shutil.copy(mirror.tarball_path(mirror.versions[0]) + ".asc", cached[0])
    del mirror.server.requests[:]
    second = fetch(force=True, **options)
    assert second["signature_verified"] is True, second
    assert any(request.endswith(path_of(mirror, version) + ".asc") for request in mirror.server.requests), \
        mirror.server.requests


def test_check_mode_and_diff_through_ansible(ansible_module, mirror, workdir):
    args = {"dest": os.path.join(workdir, "rootfs"), "cache_dir": os.path.join(workdir, "cache"),
            "mirror": mirror.url, "version": mirror.versions[-1]}
    planned = ansible_module("rootfs_fetch", args, check_mode=True, diff=True)
    assert planned["changed"] and not os.path.exists(args["dest"])
    assert ansible_module("rootfs_fetch", args)["changed"]
    again = ansible_module("rootfs_fetch", args)
    assert again["changed"] is False and again["size"] == os.path.getsize(mirror.tarball_path(mirror.versions[-1]))


# ----------------------------------------------------------------- bad input: clear message, nothing left

def test_unknown_version_lists_what_the_mirror_offers(fetch, workdir):
    result = fetch(version="3.19.7")
    assert_failed_cleanly(result, workdir, "3.19.7", "3.19.0", "3.19.1", "set version")


def test_unknown_branch_lists_the_branches(fetch, workdir):
    assert_failed_cleanly(fetch(version="3.5"), workdir, "v3.5", "v3.18", "v3.19", "latest-stable")


def test_unknown_arch_lists_the_arches(fetch, workdir):
    assert_failed_cleanly(fetch(version="3.19", arch="riscv64"), workdir, "riscv64", "aarch64", "x86_64", "set arch")


@pytest.mark.parametrize("status, phrase", [(404, "HTTP 404"), (500, "HTTP 500")])
def test_http_errors(fetch, mirror, workdir, status, phrase):
    version = mirror.versions[-1]
    mirror.server.faults[path_of(mirror, version)] = status
    assert_failed_cleanly(fetch(version=version), workdir, phrase, mirror.tarball_url(version))
    if status == 500:
        assert mirror.server.requests.count(path_of(mirror, version)) == 3  # retried


def test_connection_refused(fetch, workdir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = fetch(mirror="http://127.0.0.1:%d" % port, version="3.19.1")
    assert_failed_cleanly(result, workdir, "127.0.0.1:%d" % port, "refused", "mirror")


def test_truncated_download(fetch, mirror, workdir):
    version = mirror.versions[-1]
    mirror.server.faults[path_of(mirror, version)] = "truncate"
    assert_failed_cleanly(fetch(version=version), workdir, "closed before the end of the file")


def test_checksum_mismatch(fetch, mirror, workdir):
    result = fetch(version=mirror.versions[-1], checksum="sha256:" + "0" * 64)
    assert_failed_cleanly(result, workdir, "does not match its checksum", "0" * 64)


def test_src_that_does_not_match_its_checksum_is_left_alone(fetch, mirror, workdir):
    src = os.path.join(workdir, "outside", "image.tar.gz")
    shutil.copy(mirror.tarball_path(mirror.versions[-1]), src)
    result = fetch(src=src, checksum="sha256:" + "1" * 64)
    assert result["failed"] and "use the right file or fix checksum" in result["msg"], result
    assert os.listdir(os.path.join(workdir, "outside")) == ["image.tar.gz"]
    assert not os.path.exists(os.path.join(workdir, "rootfs")) and leftovers(workdir) == []


def test_corrupt_gzip_stream(fetch, serve, workdir, mirror):
    corrupt = os.path.join(workdir, "corrupt.tar.gz")
    with open(mirror.tarball_path(mirror.versions[-1]), "rb") as handle:
        data = bytearray(handle.read())
    data[len(data) // 2:len(data) // 2 + 64] = b"\xff" * 64
    with open(corrupt, "wb") as handle:
        handle.write(data)
    result = fetch(url=serve(corrupt), checksum="sha256:" + sha256_of(corrupt))
    assert_failed_cleanly(result, workdir, "damaged")


def test_bad_signature(fetch, mirror, workdir):
    version = mirror.versions[-1]
    # The signature of another release: a good signature, of other bytes.
    with open(mirror.tarball_path(mirror.versions[0]) + ".asc", "rb") as handle:
        mirror.server.faults[path_of(mirror, version) + ".asc"] = handle.read()
    result = fetch(version=version, verify_signature=True, gpg_key=mirror.key_file, gpg_fingerprint=mirror.fingerprint)
    assert_failed_cleanly(result, workdir, "signature does not match", mirror.tarball_url(version))


def test_signature_by_a_key_other_than_the_pinned_one(fetch, mirror, workdir):
    result = fetch(version=mirror.versions[-1], verify_signature=True, gpg_key=mirror.key_file)
    assert_failed_cleanly(result, workdir, "not by the pinned key", mirror.fingerprint, "gpg_fingerprint")


def test_signature_by_a_key_other_than_the_pinned_one_names_the_fix(fetch, mirror, workdir):
    result = fetch(version=mirror.versions[-1], verify_signature=True, gpg_key=mirror.key_file)
    assert_failed_cleanly(result, workdir, "set verify_signature: false to accept an unsigned download, or")


def test_without_gpg_key_the_release_must_be_signed_by_alpines_key(fetch, mirror, workdir):
    # The test mirror signs with its own throwaway key; the default key is
    # Alpine's, shipped with the collection, so nothing is downloaded for it.
    result = fetch(version=mirror.versions[-1], verify_signature=True)
    assert_failed_cleanly(result, workdir, mirror.tarball_url(mirror.versions[-1]),
                          "not signed by the pinned key 0482D84022F52DF1C4E7CD43293ACD0907D9495A",
                          "by key %s" % mirror.fingerprint, "Alpine's release key",
                          "set verify_signature: false to accept an unsigned download, or set gpg_key and "
                          "gpg_fingerprint")
    # The only .asc asked for is the release's signature.
    assert [path for path in mirror.server.requests if path.endswith(".asc")] == \
        [path_of(mirror, mirror.versions[-1]) + ".asc"]


def test_a_mirror_without_signatures_names_the_fix(fetch, mirror, workdir):
    version = mirror.versions[-1]
    mirror.server.faults[path_of(mirror, version) + ".asc"] = 404
    result = fetch(version=version, verify_signature=True, gpg_key=mirror.key_file, gpg_fingerprint=mirror.fingerprint)
    assert_failed_cleanly(result, workdir, "HTTP 404", "publishes no signature",
                          "set verify_signature: false to accept an unsigned download, or")
    # The same mirror without the check: the checksum alone.
    assert fetch(version=version)["signature_verified"] is False


def test_missing_gpg(fetch, mirror, workdir, monkeypatch):
    monkeypatch.setenv("PATH", os.path.join(workdir, "outside"))
    result = fetch(version=mirror.versions[-1], verify_signature=True, gpg_key=mirror.key_file)
    assert_failed_cleanly(result, workdir, "needs gpg", "install gnupg",
                          "set verify_signature: false to accept an unsigned download, or")


@pytest.mark.parametrize("members, phrase", [
    ([("../outside/passwd", "file", "owned")], "'..'"),
    ([("{outside}/passwd", "file", "owned")], "absolute paths"),
    ([("escape", "symlink", "/"), ("escape{outside}/owned", "file", "owned")], "through the symlink 'escape'"),
    ([("up", "symlink", "../../outside")], "leaves the tree"),
    ([("shadow", "hardlink", "/etc/shadow")], "hard link to '/etc/shadow'"),
    ([("bin", "dir", None), ("bin/null", "chardev", None)], "device node"),
], ids=["dotdot", "absolute", "symlink-then-file", "relative-symlink-out", "hardlink-outside", "device"])
def test_unsafe_tarballs_are_refused_naming_the_member(fetch, serve, workdir, members, phrase):
    outside = os.path.join(workdir, "outside")
    members = [(name.format(outside=outside), kind, payload) for name, kind, payload in members]
    tarball = os.path.join(workdir, "evil.tar.gz")
    checksum = make_tarball(tarball, [(".", "dir", None), ("etc", "dir", None)] + members)
    url = serve(tarball)
    os.mkdir(os.path.join(workdir, "cache"))
    before = os.stat(workdir).st_mtime_ns
    result = fetch(url=url, checksum=checksum)
    assert_failed_cleanly(result, workdir, "refusing to extract %r" % members[-1][0], phrase)
    # Refused before anything was created next to dest: not even a temporary directory.
    assert os.stat(workdir).st_mtime_ns == before


def test_device_nodes_when_allowed(fetch, serve, workdir):
    tarball = os.path.join(workdir, "dev.tar.gz")
    checksum = make_tarball(tarball, [("dev", "dir", None), ("dev/null", "chardev", None)])
    assert fetch(url=serve(tarball), checksum=checksum, allow_devices=True)["changed"]
    node = os.lstat(os.path.join(workdir, "rootfs", "dev", "null"))
    assert stat.S_ISCHR(node.st_mode) and (os.major(node.st_rdev), os.minor(node.st_rdev)) == (1, 3)


def test_dest_that_is_the_root_is_refused_before_anything(fetch, mirror, workdir):
    before = sorted(os.listdir("/"))
    result = fetch(dest="/", version=mirror.versions[-1])
    assert result["failed"] and "root directory" in result["msg"]
    result = fetch(dest="/var/..", version=mirror.versions[-1])
    assert result["failed"] and "root directory" in result["msg"]
    assert sorted(os.listdir("/")) == before and mirror.server.requests == []
    assert not os.path.exists(os.path.join(workdir, "cache"))


def test_dest_that_is_a_file_or_foreign_directory_is_refused(fetch, mirror, workdir):
    dest = os.path.join(workdir, "rootfs")
    with open(dest, "w") as handle:
        handle.write("not a directory")
    result = fetch(version=mirror.versions[-1])
    assert result["failed"] and "is not a directory" in result["msg"], result
    os.unlink(dest)
    os.mkdir(dest)
    with open(os.path.join(dest, "precious"), "w") as handle:
        handle.write("user data")
    result = fetch(version=mirror.versions[-1])
    assert result["failed"] and "did not install" in result["msg"] and "force" in result["msg"]
    assert os.listdir(dest) == ["precious"] and mirror.server.requests == []


@pytest.fixture
def small_tmpfs(workdir):
    mountpoint = os.path.join(workdir, "small")
    os.mkdir(mountpoint)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "test-rootfs_fetch", mountpoint], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", mountpoint], check=False)


def test_no_space_left_while_extracting(fetch, mirror, small_tmpfs):
    result = fetch(version=mirror.versions[-1], dest=os.path.join(small_tmpfs, "rootfs"))
    assert result["failed"] and "no space left" in result["msg"] and small_tmpfs in result["msg"], result
    assert os.listdir(small_tmpfs) == []


def test_no_space_left_while_downloading(fetch, mirror, small_tmpfs, workdir):
    result = fetch(version=mirror.versions[-1], cache_dir=small_tmpfs)
    assert result["failed"] and "no space left" in result["msg"] and "cache_dir" in result["msg"], result
    assert os.listdir(small_tmpfs) == []
    assert not os.path.exists(os.path.join(workdir, "rootfs"))


# ----------------------------------------------------------------- interruptions and running containers

def test_kill_at_any_point_leaves_old_or_new_tree_and_the_next_run_recovers(fetch, mirror, workdir):
    old, new = mirror.versions[-2], mirror.versions[-1]
    dest = os.path.join(workdir, "rootfs")
    args = {"dest": dest, "cache_dir": os.path.join(workdir, "cache"), "mirror": mirror.url, "version": new}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    try:
        # Kills spread over start-up, download, extraction and the swap.
        for delay in (0.05, 0.15, 0.25, 0.35, 0.5, 0.7, 1.0):
            assert fetch(version=old)["failed"] is False
            proc = subprocess.Popen([sys.executable, "-m", MODULE_PACKAGE + ".rootfs_fetch", handle.name],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_module_env())
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            with open(os.path.join(dest, "etc", "alpine-release")) as release:
                assert release.read().strip() in (old, new)
            recovered = fetch(version=new)
            assert recovered["failed"] is False, recovered
            assert leftovers(workdir) == []
            with open(os.path.join(dest, "etc", "alpine-release")) as release:
                assert release.read().strip() == new
    finally:
        os.unlink(handle.name)


def test_leftovers_of_a_killed_run_are_removed(fetch, mirror, workdir):
    dead = subprocess.Popen(["true"])
    dead.wait()
    os.makedirs(os.path.join(workdir, "cache"))
    os.mkdir(os.path.join(workdir, ".rootfs.tmp-%d-abc" % dead.pid))
    open(os.path.join(workdir, "cache", ".download-%d-abc" % dead.pid), "w").close()
    assert fetch(version=mirror.versions[-1])["changed"]
    assert leftovers(workdir) == []


def test_a_tree_in_use_by_a_running_process_is_not_replaced(fetch, mirror, workdir):
    fetch(version=mirror.versions[-2])
    dest = os.path.join(workdir, "rootfs")
    sleeper = subprocess.Popen(["chroot", dest, "/bin/busybox", "sleep", "60"])
    try:
        for _attempt in range(100):  # until the chroot has happened
            if os.stat("/proc/%d/root" % sleeper.pid).st_ino == os.stat(dest).st_ino:
                break
            time.sleep(0.02)
        result = fetch(version=mirror.versions[-1])
        assert result["failed"] and str(sleeper.pid) in result["msg"] and "stop that container" in result["msg"]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert fetch(version=mirror.versions[-1])["changed"]


def test_a_tarball_too_large_to_keep_is_streamed_twice_with_the_same_result(mirror, workdir, busybox_rootfs):
    """The path taken above KEEP_LIMIT: scan and extract each decompress the file."""
    sys.path.insert(0, COLLECTIONS_PATH)
    try:
        from ansible_collections.handmade.containers.plugins.module_utils import _safetar
    finally:
        sys.path.remove(COLLECTIONS_PATH)
    tarball = mirror.tarball_path(mirror.versions[-1])
    scanned = _safetar.scan(tarball, keep_limit=0)
    assert scanned.chunks is None and scanned.plan is None
    top = os.path.join(workdir, "streamed")
    os.mkdir(top)
    entries, sha256, _sha512 = _safetar.extract(tarball, top, scanned=scanned)
    assert (entries, sha256) == (scanned.entries, sha256_of(tarball))
    assert tree_listing(top) == tree_listing(busybox_rootfs)
