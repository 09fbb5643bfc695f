"""rootfs_fetch on the real filesystem, against the loopback Alpine mirror."""

import hashlib
import os
import stat
import urllib.request

import pytest


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
