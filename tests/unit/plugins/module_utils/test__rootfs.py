# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsing and mapping in _rootfs: versions, URLs, the release index, checksum files."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._alpine_key import ALPINE_FINGERPRINT, ALPINE_KEY
from ansible_collections.handmade.containers.plugins.module_utils._rootfs import (
    RootfsError,
    Source,
    _network_timeout,
    _stamp_matches,
    host_arch,
    signing_key_file,
    listing_links,
    minirootfs_file_name,
    parse_checksum,
    parse_checksum_file,
    parse_latest_releases,
    parse_version,
    pick_minirootfs,
    releases_url,
)

# Shaped like the CDN's file: quoted multi-line desc, several flavors.
INDEX = """---
-
  title: "Standard"
  desc: "Alpine as it was intended.
    Just enough to get you started.
    Network connection is required."
  branch: v3.19
  arch: x86_64
  version: 3.19.1
  flavor: alpine-standard
  file: alpine-standard-3.19.1-x86_64.iso
  iso: alpine-standard-3.19.1-x86_64.iso
  date: 2024-01-26
  time: 18:56:02
  size: 207618048
  sha256: 1dd1e5d1a6b1b6b4f4d1a6a7f6c5c4b3a2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7
  sha512: 00
-
  title: "Mini root filesystem"
  desc: "Minimal root filesystem.
    For use in containers
    and minimal chroots."
  branch: v3.19
  arch: x86_64
  version: 3.19.1
  flavor: alpine-minirootfs
  file: alpine-minirootfs-3.19.1-x86_64.tar.gz
  iso: alpine-minirootfs-3.19.1-x86_64.tar.gz
  date: 2024-01-26
  time: 18:56:02
  size: 3400218
  sha256: CA359A3C9DEE969764CA1A30A369B6B16E5B88807362A0E8193CE8A0585E76FC
  sha512: 11
"""


@pytest.mark.parametrize("text, expected", [
    ("3.19", ("v3.19", None)),
    ("v3.19", ("v3.19", None)),
    ("3.19.1", ("v3.19", "3.19.1")),
    ("3.20.0_rc1", ("v3.20", "3.20.0_rc1")),
    ("latest-stable", ("latest-stable", None)),
])
def test_parse_version(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["edge", "3", "three.nineteen", "3.19.1.2", "../v3.19"])
def test_parse_version_refuses_what_is_not_a_release(text):
    with pytest.raises(RootfsError, match="3.19.1, a branch like 3.19, or latest-stable"):
        parse_version(text)


def test_release_urls_follow_the_cdn_layout():
    assert releases_url("https://dl-cdn.alpinelinux.org/alpine/", "v3.19", "x86_64") == \
        "https://dl-cdn.alpinelinux.org/alpine/v3.19/releases/x86_64"
    assert minirootfs_file_name("3.19.1", "aarch64") == "alpine-minirootfs-3.19.1-aarch64.tar.gz"


@pytest.mark.parametrize("machine, arch", [
    ("x86_64", "x86_64"), ("aarch64", "aarch64"), ("armv7l", "armv7"), ("armv6l", "armhf"),
    ("i686", "x86"), ("ppc64le", "ppc64le"), ("mips64", "mips64"),
])
def test_host_arch_uses_alpines_names(machine, arch):
    assert host_arch(machine) == arch


def test_parse_latest_releases_reads_every_field_and_folds_quoted_lines():
    entries = parse_latest_releases(INDEX)
    assert [entry["flavor"] for entry in entries] == ["alpine-standard", "alpine-minirootfs"]
    mini = entries[1]
    assert mini["desc"] == "Minimal root filesystem. For use in containers and minimal chroots."
    assert (mini["branch"], mini["arch"], mini["version"], mini["size"]) == ("v3.19", "x86_64", "3.19.1", "3400218")
    assert (mini["date"], mini["time"]) == ("2024-01-26", "18:56:02")
    assert mini["title"] == "Mini root filesystem"


def test_parse_latest_releases_accepts_inline_list_items_and_comments():
    entries = parse_latest_releases("# index\n- flavor: alpine-minirootfs\n  version: '3.18.5'\n- flavor: x\n")
    assert entries == [{"flavor": "alpine-minirootfs", "version": "3.18.5"}, {"flavor": "x"}]


def test_parse_latest_releases_refuses_other_shapes():
    with pytest.raises(RootfsError, match="list of releases"):
        parse_latest_releases("<html>not found</html>\n")


def test_pick_minirootfs_skips_other_flavors():
    entry = pick_minirootfs(parse_latest_releases(INDEX), "x86_64")
    assert entry["file"] == "alpine-minirootfs-3.19.1-x86_64.tar.gz"


def test_pick_minirootfs_says_what_the_index_offers():
    entries = parse_latest_releases(INDEX)[:1]
    with pytest.raises(RootfsError, match="no alpine-minirootfs for x86_64 .it lists: alpine-standard"):
        pick_minirootfs(entries, "x86_64")


@pytest.mark.parametrize("spec, expected", [
    (None, None),
    ("skip", ("skip", None, None)),
    ("sha256:" + "AB" * 32, ("sha256", "ab" * 32, None)),
    ("sha512:" + "cd" * 64, ("sha512", "cd" * 64, None)),
    ("sha256:https://example.org/SHA256SUMS", ("sha256", None, "https://example.org/SHA256SUMS")),
])
def test_parse_checksum(spec, expected):
    assert parse_checksum(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("md5:" + "0" * 32, "not understood"),
    ("ab" * 32, "not understood"),
    ("sha256:abc", "not 64 hexadecimal digits"),
    ("sha512:" + "0" * 64, "not 128 hexadecimal digits"),
])
def test_parse_checksum_refuses_with_the_accepted_forms(spec, message):
    with pytest.raises(RootfsError, match=message):
        parse_checksum(spec)


SUMS = ("%s  alpine-minirootfs-3.19.0-x86_64.tar.gz\n"
        "%s *alpine-minirootfs-3.19.1-x86_64.tar.gz\n"
        "SHA256 (other.tar.gz) = %s\n") % ("1" * 64, "2" * 64, "3" * 64)


@pytest.mark.parametrize("name, digest", [
    ("alpine-minirootfs-3.19.0-x86_64.tar.gz", "1" * 64),
    ("alpine-minirootfs-3.19.1-x86_64.tar.gz", "2" * 64),
    ("other.tar.gz", "3" * 64),
])
def test_parse_checksum_file_finds_the_line_for_the_file(name, digest):
    assert parse_checksum_file(SUMS, name, "sha256") == digest


def test_parse_checksum_file_accepts_a_bare_digest():
    assert parse_checksum_file("A" * 128 + "\n", "anything.tar.xz", "sha512") == "a" * 128


def test_parse_checksum_file_names_what_it_holds_when_the_file_is_missing():
    with pytest.raises(RootfsError, match="no line for missing.tar.gz .it names: alpine-minirootfs-3.19.0"):
        parse_checksum_file(SUMS, "missing.tar.gz", "sha256")
    with pytest.raises(RootfsError, match="no sha512 digest"):
        parse_checksum_file(SUMS, "other.tar.gz", "sha512")


def test_listing_links_reads_nginx_and_http_server_pages():
    nginx = '<a href="../">../</a>\n<a href="v3.18/">v3.18/</a> 01-Jan\n<a href="latest-stable/">latest-stable/</a>'
    assert listing_links(nginx) == ["v3.18", "latest-stable"]
    python = '<li><a href="alpine-minirootfs-3.19.0-x86_64.tar.gz">x</a></li><a href="https://elsewhere/">e</a>'
    assert listing_links(python) == ["alpine-minirootfs-3.19.0-x86_64.tar.gz"]


STAMP = {"url": "http://mirror/v3.19/releases/x86_64/alpine-minirootfs-3.19.1-x86_64.tar.gz",
         "sha256": "a" * 64, "sha512": "b" * 128, "checksum_verified": True, "signature_verified": False}


def alpine_source(digest=None, checksum_url=None, url=STAMP["url"]):
    source = Source("alpine", url, version="3.19.1")
    source.digest, source.checksum_url = digest, checksum_url
    source.published_sidecar = checksum_url is not None
    return source


@pytest.mark.parametrize("source, verify, matches", [
    (alpine_source(digest="a" * 64), False, True),
    (alpine_source(digest="c" * 64), False, False),                      # a re-spun release
    (alpine_source(checksum_url=STAMP["url"] + ".sha256"), False, True),  # pinned: no network needed
    (alpine_source(digest="a" * 64), True, False),                       # now asks for a signature
    (alpine_source(digest="a" * 64, url=STAMP["url"].replace("3.19.1", "3.19.0")), False, False),
])
def test_stamp_matches_only_the_same_verified_source(source, verify, matches):
    assert _stamp_matches(STAMP, source, verify) is matches


def test_stamp_for_sha512_checksums():
    source = Source("url", STAMP["url"])
    source.expect(("sha512", "b" * 128, None))
    assert _stamp_matches(STAMP, source, False)


class NoDownloads:
    """A downloader that fails the test if anything is fetched."""

    def text(self, url, limit=None):
        raise AssertionError("downloaded %s" % url)


def test_the_default_key_file_is_alpines_shipped_key(tmp_path):
    path, name = signing_key_file({"gpg_key": None}, str(tmp_path), NoDownloads())
    assert path.startswith(str(tmp_path) + "/")
    with open(path) as handle:
        assert handle.read() == ALPINE_KEY
    assert "Alpine's release key" in name
    assert ALPINE_FINGERPRINT == "0482D84022F52DF1C4E7CD43293ACD0907D9495A"


def test_a_gpg_key_file_is_used_as_it_is(tmp_path):
    own = tmp_path / "own.asc"
    own.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    path, name = signing_key_file({"gpg_key": str(own)}, str(scratch), NoDownloads())
    assert path == str(own) and str(own) in name
    assert list(scratch.iterdir()) == []


def test_a_gpg_key_that_is_neither_file_nor_url_is_refused(tmp_path):
    with pytest.raises(RootfsError, match="neither a URL nor a file"):
        signing_key_file({"gpg_key": str(tmp_path / "missing.asc")}, str(tmp_path), NoDownloads())


@pytest.mark.parametrize("value, expected", [(None, 30), (1, 1), (120, 120)])
def test_network_timeout_takes_whole_seconds(value, expected):
    assert _network_timeout(value) == expected


@pytest.mark.parametrize("value", [0, -5, True, 1.5])
def test_network_timeout_refuses_what_a_socket_cannot_wait(value):
    with pytest.raises(RootfsError, match="timeout .* is not a number of seconds: give a whole number of at least 1"):
        _network_timeout(value)
