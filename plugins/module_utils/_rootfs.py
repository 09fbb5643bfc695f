# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A root filesystem on disk: resolve, download, verify, extract, install.

The walkthrough's first step is ``wget`` plus ``tar -xzf`` with nothing
checked. This file is the step a fleet operator can trust, in the order it
runs:

1. resolve what to fetch: an Alpine release (through the branch's
   ``latest-releases.yaml``), any tarball URL, or a file on the host;
2. decide from the stamp file in ``dest`` whether anything needs doing;
3. download into a temporary file in the cache, hashing as it arrives,
   and keep it only when the checksum (and, if asked, the GPG signature)
   matches; the cache is keyed by checksum;
4. extract into a temporary sibling of ``dest``, refusing any member that
   could write outside it, while a second thread decompresses;
5. swap the new tree into place atomically and remove the old one.

Everything raises ``RootfsError`` with a message that names the problem and
the fix; nothing half-done is left behind. Standard library only (plus
``ansible.module_utils.urls`` for HTTP, which brings proxies and TLS).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import hashlib
import json
import os
import platform
import posixpath
import re
import shutil
import socket
import subprocess
import tempfile
import time

from urllib.error import HTTPError, URLError

from ansible_collections.handmade.containers.plugins.module_utils._alpine_key import ALPINE_FINGERPRINT, ALPINE_KEY

DEFAULT_MIRROR = "https://dl-cdn.alpinelinux.org/alpine"
# The walkthrough's branch. A branch resolves to its newest release.
DEFAULT_VERSION = "3.19"
DEFAULT_CACHE_DIR = "/var/cache/handmade-containers"
# Alpine's release key (ALPINE_KEY, ALPINE_FINGERPRINT) ships in _alpine_key:
# the default gpg_key needs no download. Its name in a scratch directory:
ALPINE_KEY_FILE_NAME = "alpine-release-key.asc"
# The fix for a download that cannot be verified, where turning the check
# off is an honest choice (a mirror without signatures, a host without gpg).
UNSIGNED_FIX = "set verify_signature: false to accept an unsigned download, or "
MINIROOTFS_FLAVOR = "alpine-minirootfs"
STAMP_NAME = ".handmade-rootfs.json"
STAMP_FORMAT = 1
CHECKSUM_ALGORITHMS = ("sha256", "sha512")

# uname -m -> the name Alpine uses in its release paths.
ALPINE_ARCH = {
    "x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64",
    "armv7l": "armv7", "armv8l": "armv7", "armv6l": "armhf", "i386": "x86", "i486": "x86",
    "i586": "x86", "i686": "x86", "ppc64le": "ppc64le", "s390x": "s390x",
    "riscv64": "riscv64", "loongarch64": "loongarch64",
}


class RootfsError(Exception):
    """Fetching or installing a root filesystem failed; the message says how to fix it."""


# ---------------------------------------------------------------------------
# What to fetch: versions, URLs, the release index, checksum specifications.

def host_arch(machine=None):
    """Alpine's name for this host's architecture (``uname -m`` mapped)."""
    machine = machine or platform.machine()
    return ALPINE_ARCH.get(machine, machine)


def parse_version(version):
    """``"3.19"`` -> ``("v3.19", None)``; ``"3.19.1"`` -> ``("v3.19", "3.19.1")``;
    ``"latest-stable"`` -> ``("latest-stable", None)``. A leading ``v`` is accepted."""
    text = str(version).strip()
    if text == "latest-stable":
        return text, None
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+)(?:_rc\d+)?)?$", text)
    if not match:
        raise RootfsError(
            "version %r is not an Alpine release: use a release like 3.19.1, a branch like 3.19, "
            "or latest-stable" % (version,))
    branch = "v%s.%s" % match.group(1, 2)
    if match.group(3) is None:
        return branch, None
    return branch, text.lstrip("v")


def minirootfs_file_name(release, arch):
    return "alpine-minirootfs-%s-%s.tar.gz" % (release, arch)


def releases_url(mirror, branch, arch):
    """The directory that holds a branch's releases for one architecture."""
    return "%s/%s/releases/%s" % (mirror.rstrip("/"), branch, arch)


def parse_latest_releases(text):
    """Parse a ``latest-releases.yaml`` into a list of dicts of strings.

    The file is a YAML list of flat mappings, written by Alpine's release
    scripts. Only that shape is read (standard library only on the managed
    host): ``key: value`` lines, double- or single-quoted values that may span
    lines (folded into spaces, as YAML does), and plain multi-line values.
    """
    entries, current, key, quote = [], None, None, None
    for raw in text.splitlines():
        line = raw.rstrip()
        if quote:
            # Inside a quoted value that continues on this line.
            piece = line.strip()
            if piece.endswith(quote):
                current[key] += " " + piece[:-1]
                quote = None
            else:
                current[key] += " " + piece
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
            continue
        if stripped == "-" or stripped.startswith("- "):
            current = {}
            entries.append(current)
            key = None
            stripped = stripped[1:].strip()
            if not stripped:
                continue
        match = re.match(r"^([A-Za-z0-9_-]+):(?:\s+(.*))?$", stripped)
        if current is None:
            raise RootfsError("latest-releases.yaml does not start with a list of releases: %r" % raw)
        if not match:
            if key is None:
                raise RootfsError("latest-releases.yaml has a line that is not 'key: value': %r" % raw)
            current[key] += " " + stripped  # a plain value folded onto the next line
            continue
        key, value = match.group(1), (match.group(2) or "").strip()
        if value[:1] in ("'", '"'):
            quote = value[0]
            if len(value) > 1 and value.endswith(quote):
                value, quote = value[1:-1], None
            else:
                value = value[1:]
        current[key] = value
    return entries


def pick_minirootfs(entries, arch):
    """The ``alpine-minirootfs`` entry for ``arch`` from a parsed index."""
    for entry in entries:
        if entry.get("flavor") == MINIROOTFS_FLAVOR and entry.get("arch", arch) == arch:
            missing = [field for field in ("version", "file", "sha256") if not entry.get(field)]
            if missing:
                raise RootfsError("latest-releases.yaml has a minirootfs entry without %s" % ", ".join(missing))
            return entry
    flavors = sorted(set(entry.get("flavor", "?") for entry in entries))
    raise RootfsError("latest-releases.yaml offers no %s for %s (it lists: %s)" % (
        MINIROOTFS_FLAVOR, arch, ", ".join(flavors) or "nothing"))


def parse_checksum(spec):
    """``"sha256:<hex>"`` -> ``("sha256", hex, None)``; ``"sha512:https://…"`` ->
    ``("sha512", None, url)``; ``"skip"`` -> ``("skip", None, None)``; ``None`` -> ``None``."""
    if spec is None or spec == "":
        return None
    text = str(spec).strip()
    if text.lower() == "skip":
        return "skip", None, None
    algorithm, sep, value = text.partition(":")
    algorithm = algorithm.lower()
    if not sep or algorithm not in CHECKSUM_ALGORITHMS:
        raise RootfsError(
            "checksum %r is not understood: write sha256:<hex>, sha512:<hex>, sha256:<URL of a checksum file> "
            "or skip" % (spec,))
    value = value.strip()
    if re.match(r"^[a-z][a-z0-9+.-]*://", value):
        return algorithm, None, value
    length = 64 if algorithm == "sha256" else 128
    if not re.match(r"^[0-9a-fA-F]{%d}$" % length, value):
        raise RootfsError("checksum %s:%s is not %d hexadecimal digits" % (algorithm, value, length))
    return algorithm, value.lower(), None


def parse_checksum_file(text, file_name, algorithm):
    """The digest for ``file_name`` in a ``sha256sum``-style (or BSD-style) file."""
    length = 64 if algorithm == "sha256" else 128
    found = {}
    for line in text.splitlines():
        line = line.strip()
        gnu = re.match(r"^([0-9a-fA-F]{%d})(?:\s+\*?(.+))?$" % length, line)
        bsd = re.match(r"^%s \((.+)\) = ([0-9a-fA-F]{%d})$" % (algorithm.upper(), length), line)
        if gnu:
            found[posixpath.basename(gnu.group(2) or "")] = gnu.group(1).lower()
        elif bsd:
            found[posixpath.basename(bsd.group(1))] = bsd.group(2).lower()
    if file_name in found:
        return found[file_name]
    if len(found) == 1 and "" in found:
        return found[""]  # a bare digest with no name
    if not found:
        raise RootfsError("the checksum file holds no %s digest (%d hex digits)" % (algorithm, length))
    raise RootfsError("the checksum file has no line for %s (it names: %s)" % (
        file_name, ", ".join(sorted(name for name in found if name)) or "no files"))


def listing_links(html):
    """Names a directory listing page links to (nginx, Apache and http.server alike)."""
    names = []
    for href in re.findall(r'href="([^"?#]+)"', html):
        name = href.rstrip("/").rsplit("/", 1)[-1]
        if name and name not in (".", "..") and not href.startswith(("http:", "https:")):
            names.append(name)
    return names


# ---------------------------------------------------------------------------
# Downloads through ansible.module_utils.urls, with one retry policy.

class _ShortBody(Exception):
    """The connection closed before Content-Length bytes arrived."""


class Downloader:
    """HTTP(S) with Ansible's proxy and certificate handling and a retry on transient errors."""

    attempts = 3
    backoff = 0.5  # seconds, doubled after each failed attempt

    def __init__(self, timeout=30, validate_certs=True):
        self.timeout = timeout
        self.validate_certs = validate_certs

    def _open(self, url):
        # Imported on the first download: Ansible's URL layer (and the TLS
        # code it loads) is a third of this module's import time, and an
        # unchanged pinned release needs no network at all.
        from ansible.module_utils.urls import open_url
        # decompress=False: a server that labels a .tar.gz "Content-Encoding:
        # gzip" must not have it unpacked on the way, or the checksum fails.
        return open_url(url, timeout=self.timeout, validate_certs=self.validate_certs,
                        http_agent="handmade.containers.rootfs_fetch", decompress=False,
                        follow_redirects="safe")

    def _with_retries(self, url, action):
        # http.client (with ssl and email) is imported here, with the URL
        # layer: an unchanged tree never downloads.
        from http.client import HTTPException
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return action(self._open(url))
            except HTTPError as exc:
                if exc.code < 500 or attempt == self.attempts:
                    error = RootfsError(self._http_message(url, exc))
                    error.http_status = exc.code  # lets a caller tell "not there" from "broken"
                    raise error
            except (URLError, HTTPException, _ShortBody, socket.timeout, ConnectionError) as exc:
                if attempt == self.attempts:
                    raise RootfsError(self._network_message(url, exc))
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _http_message(self, url, exc):
        if exc.code == 404:
            return "%s was not found (HTTP 404)" % url
        if exc.code >= 500:
            return ("%s failed with HTTP %d %s after %d attempts: the server has a problem, "
                    "try again later or use another mirror" % (url, exc.code, exc.reason, self.attempts))
        return "%s was refused with HTTP %d %s" % (url, exc.code, exc.reason)

    def _network_message(self, url, exc):
        from http.client import IncompleteRead
        reason = getattr(exc, "reason", exc)
        if isinstance(exc, (IncompleteRead, _ShortBody)):
            detail = "the connection closed before the end of the file (%s)" % exc
        else:
            detail = str(reason) or exc.__class__.__name__
            if "CERTIFICATE_VERIFY_FAILED" in detail:
                detail += " (install the mirror's CA on the host; validate_certs: false only for a mirror you control)"
        return ("cannot download %s after %d attempts: %s. Check the URL, the network or proxy "
                "(http_proxy/https_proxy), or point mirror at a reachable copy" % (url, self.attempts, detail))

    def text(self, url, limit=1 << 20):
        """A small file (index, checksum, key) as text."""
        def read(response):
            data = response.read(limit + 1)
            if len(data) > limit:
                raise RootfsError("%s is larger than %d bytes: it is not an index or checksum file" % (url, limit))
            return data.decode("utf-8", "replace")
        return self._with_retries(url, read)

    def to_file(self, url, path):
        """Stream ``url`` into ``path`` (truncating on each attempt); return (size, sha256, sha512)."""
        def copy(response):
            sha256, sha512, size = hashlib.sha256(), hashlib.sha512(), 0
            expected = response.headers.get("Content-Length")
            with open(path, "wb") as handle:
                while True:
                    block = response.read(1 << 20)
                    if not block:
                        break
                    handle.write(block)
                    sha256.update(block)
                    sha512.update(block)
                    size += len(block)
            if expected is not None and expected.isdigit() and int(expected) != size:
                raise _ShortBody("%d of %s bytes" % (size, expected))
            return size, sha256.hexdigest(), sha512.hexdigest()
        try:
            return self._with_retries(url, copy)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise RootfsError("no space left on device while downloading %s into %s: free some space "
                                  "or set cache_dir to a larger filesystem" % (url, os.path.dirname(path)))
            raise RootfsError("cannot write the download to %s: %s" % (path, exc.strerror or exc))


# ---------------------------------------------------------------------------
# GPG signatures, checked in a throwaway GNUPGHOME.

def verify_signature(tarball, signature, key_file, fingerprint, name=None, key_name=None):
    """Raise unless ``signature`` is a good signature of ``tarball`` by ``fingerprint``.

    The key is imported into a throwaway GNUPGHOME (so the user's keyring is
    never read or changed), and the fingerprint is pinned: a good signature
    by any other key in the key file is refused. ``key_name`` says in the
    messages where the key came from (the gpg_key given, or Alpine's).
    """
    gpg = shutil.which("gpg") or shutil.which("gpg2")
    if not gpg:
        raise RootfsError("verify_signature needs gpg, which is not installed on this host: " + UNSIGNED_FIX
                          + "install gnupg (apt-get install gnupg, apk add gnupg, dnf install gnupg2)")
    wanted = re.sub(r"\s+", "", fingerprint).upper()
    name = name or os.path.basename(tarball)
    key_name = key_name or "a key in gpg_key %s" % key_file
    # gpg reaches its agent through a socket inside the home directory, and a
    # socket path is limited to 107 bytes: a home under a long cache_dir makes
    # gpg fail ("File name too long") although the signature is good. The
    # system's temporary directory keeps the path short.
    home = tempfile.mkdtemp(prefix="hmc-gpg-")
    try:
        base = [gpg, "--homedir", home, "--batch", "--no-tty", "--no-autostart", "--status-fd", "1"]
        # gpg through subprocess, not AnsibleModule.run_command: module_utils
        # here take plain values and never see the module (docs/architecture.md).
        imported = subprocess.run(base + ["--import", key_file], stdout=subprocess.PIPE,  # pylint: disable=ansible-bad-function
                                  stderr=subprocess.PIPE, check=False)
        if imported.returncode != 0 or b"IMPORT_OK" not in imported.stdout:
            raise RootfsError("gpg could not import the key in %s: %s" % (
                key_file, imported.stderr.decode(errors="replace").strip() or "no key found"))
        checked = subprocess.run(base + ["--verify", signature, tarball], stdout=subprocess.PIPE,  # pylint: disable=ansible-bad-function
                                 stderr=subprocess.PIPE, check=False)
        signers, unknown = [], []
        for line in checked.stdout.decode(errors="replace").splitlines():
            fields = line.split()
            # [GNUPG:] VALIDSIG <signing key fpr> ... <primary key fpr>
            if len(fields) >= 3 and fields[1] == "VALIDSIG":
                signers.extend([fields[2].upper(), fields[-1].upper()])
            # [GNUPG:] ERRSIG <key id> <algo> <hash> <class> <time> <rc> [<fpr>]; rc 9: no public key
            elif len(fields) >= 8 and fields[1] == "ERRSIG" and fields[7] == "9":
                unknown.append(fields[8].upper() if len(fields) > 8 and fields[8] != "-" else fields[2].upper())
        if unknown and not signers:
            raise RootfsError("%s is not signed by the pinned key %s: its signature is by key %s, which is not "
                              "%s; %sset gpg_key and gpg_fingerprint to the key that signs this mirror's releases"
                              % (name, wanted, unknown[0], key_name, UNSIGNED_FIX))
        if checked.returncode != 0 or not signers:
            said = checked.stderr.decode(errors="replace").strip().splitlines()
            raise RootfsError("the GPG signature does not match %s: the file was altered, or the signature is of "
                              "another file (gpg: %s)" % (name, said[-1] if said else "no output"))
        if wanted not in signers:
            raise RootfsError("%s is signed by %s, not by the pinned key %s: %sset gpg_fingerprint to the key "
                              "you trust" % (name, signers[-1], wanted, UNSIGNED_FIX))
    finally:
        shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------------------
# Extraction (the tar format and its safety checks live in _safetar).

# _safetar (and tarfile) is imported only when a tarball is read: an
# unchanged tree never needs it.

def scan_tarball(path, allow_devices=False):
    """Check every member of ``path`` against the extraction rules, writing nothing; a _safetar.Scan."""
    from ansible_collections.handmade.containers.plugins.module_utils._safetar import scan
    return _reading_tarball(scan, path, allow_devices)


def extract_tarball(path, top, allow_devices=False, scanned=None):
    """Extract ``path`` into the empty directory ``top``; (entries, sha256, sha512) of the file read."""
    from ansible_collections.handmade.containers.plugins.module_utils._safetar import extract
    return _reading_tarball(extract, path, top, allow_devices, scanned)


def _reading_tarball(action, path, *args):
    from ansible_collections.handmade.containers.plugins.module_utils._safetar import ArchiveError
    try:
        return action(path, *args)
    except ArchiveError as exc:
        message = str(exc)
        if message.startswith("no space left"):
            message += ": free some space or choose a dest on a larger filesystem"
        elif not message.startswith("refusing"):
            message = "%s: %s; delete it (it is removed from the cache automatically) and fetch it again" % (
                path, message)
        raise RootfsError(message)


# ---------------------------------------------------------------------------
# The stamp in dest and the atomic swap.

def read_stamp(dest):
    """The stamp dict of an installed tree, or None when absent, unreadable or stale."""
    try:
        with open(os.path.join(dest, STAMP_NAME)) as handle:
            stamp = json.load(handle)
        info = os.stat(dest)
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("format") != STAMP_FORMAT:
        return None
    # The tree's identity: a copy, a restore or a hand-made tree with a
    # copied stamp is a different directory, so it is not trusted as ours.
    tree = stamp.get("tree") or {}
    if tree.get("inode") != info.st_ino or tree.get("device") != info.st_dev:
        return None
    if not all(os.path.lexists(os.path.join(dest, name)) for name in tree.get("top_level", [])):
        return None
    return stamp


def write_stamp(top, fields):
    """Write the stamp into the tree's top, keeping the top's mtime from the archive."""
    info = os.stat(top)
    stamp = dict(fields, format=STAMP_FORMAT, tree={
        "inode": info.st_ino, "device": info.st_dev,
        "top_level": sorted(name for name in os.listdir(top) if name != STAMP_NAME),
    })
    path = os.path.join(top, STAMP_NAME)
    with open(path, "w") as handle:
        json.dump(stamp, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.chmod(path, 0o644)
    os.utime(top, ns=(info.st_atime_ns, info.st_mtime_ns))
    return stamp


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first, second):
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE); False when unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), second)


def install_tree(new_top, dest):
    """Put ``new_top`` at ``dest``; an old tree there is swapped out and removed.

    With RENAME_EXCHANGE the swap is one atomic step: at every instant
    ``dest`` is the old tree or the new one. Without it (old kernels,
    some filesystems) the old tree is renamed aside first; a crash right
    then leaves no ``dest`` and the next run extracts again.
    """
    if not os.path.lexists(dest):
        os.rename(new_top, dest)
        return
    if not _exchange(new_top, dest):
        aside = new_top + ".old"
        os.rename(dest, aside)
        os.rename(new_top, dest)
        new_top = aside
    shutil.rmtree(new_top)  # now the old tree


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(directory, prefix):
    """Remove ``prefix<pid>-*`` entries whose process is gone (an earlier run killed midway)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        match = re.match(r"^(\d+)-", name[len(prefix):])
        if not match or _pid_alive(int(match.group(1))):
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


# ---------------------------------------------------------------------------
# The whole task.

def _dest_paths(dest, cache_dir):
    """Check ``dest`` before anything is touched; return (dest with real parents, parent)."""
    if not dest or not os.path.isabs(dest):
        raise RootfsError("dest %r must be an absolute path such as /var/lib/handmade-containers/rootfs/web" % (dest,))
    normal = os.path.normpath(dest)
    parent = os.path.realpath(os.path.dirname(normal))
    real = os.path.join(parent, os.path.basename(normal))
    if normal == "/" or real == "/" or os.path.realpath(real) == "/":
        raise RootfsError("dest %r is the host's root directory: choose a directory of its own, such as "
                          "/var/lib/handmade-containers/rootfs/<name>" % (dest,))
    if os.path.islink(real):
        raise RootfsError("dest %s is a symlink: give the real directory instead" % real)
    if os.path.lexists(real) and not os.path.isdir(real):
        raise RootfsError("dest %s exists and is not a directory: remove it or choose another dest" % real)
    cache = os.path.realpath(cache_dir)
    if cache == real or cache.startswith(real + "/"):
        raise RootfsError("dest %s contains the cache_dir %s: replacing dest would delete the cache; "
                          "choose another dest or cache_dir" % (real, cache))
    return real, parent


# How far up from a process's root directory to look for the tree: far
# deeper than any chroot nests.
MAX_ROOT_DEPTH = 256


def _processes_rooted_in(path):
    """Pids whose root directory is ``path`` or below it (a container running from this tree).

    Below it too: a root process of a container may chroot into a directory
    of its tree (CAP_SYS_CHROOT is one of Docker's defaults), and still runs
    from the tree. From /proc/<pid>/root the walk goes up by ``..``, which
    the kernel resolves against our root, not the process's: it climbs out
    of the chroot to the tree's root, and stops at the top of the process's
    mount namespace, where ``..`` is the directory itself.
    """
    try:
        wanted = os.stat(path)
    except OSError:
        return []
    wanted = (wanted.st_ino, wanted.st_dev)
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _root_is_at_or_below(name, wanted):
            pids.append(int(name))
    return pids


def _root_is_at_or_below(pid, wanted):
    here = "/proc/%s/root" % pid
    previous = None
    for _depth in range(MAX_ROOT_DEPTH):
        try:
            info = os.stat(here)
        except OSError:
            return False  # gone, or not ours to see
        current = (info.st_ino, info.st_dev)
        if current == wanted:
            return True
        if current == previous:
            return False  # the top: ".." of it is itself
        previous = current
        here += "/.."
    return False


# Where a tree comes from and how it is checked: rootfs_fetch's options but
# for dest and force, as AnsibleModule argument_spec entries. The container
# module takes them as its `fetch` dict.
SOURCE_OPTIONS = dict(
    version=dict(type="str"),
    arch=dict(type="str"),
    mirror=dict(type="str"),
    url=dict(type="str"),
    src=dict(type="path"),
    checksum=dict(type="str"),
    verify_signature=dict(type="bool", default=False),
    gpg_key=dict(type="str", no_log=False),  # a public key's path or URL, not a secret
    gpg_fingerprint=dict(type="str"),
    cache_dir=dict(type="path", default=DEFAULT_CACHE_DIR),
    allow_devices=dict(type="bool", default=False),
    validate_certs=dict(type="bool", default=True),
    timeout=dict(type="int", default=30),
)


def source_options():
    """A fresh copy of SOURCE_OPTIONS (AnsibleModule may keep what it is given)."""
    return dict((name, dict(entry)) for name, entry in SOURCE_OPTIONS.items())


def processes_rooted_in(path):
    """Pids whose root directory is ``path``: the processes of the containers that run from this tree."""
    return _processes_rooted_in(path)


def remove_tree(dest, check_mode=False):
    """Remove a tree rootfs_fetch installed at ``dest``; True when there was one.

    Only a tree with its stamp is removed (a directory without one may hold
    someone's data), and never while a process has it as its root.
    """
    if not os.path.isabs(dest) or os.path.realpath(dest) == "/":
        raise RootfsError("rootfs %r is not a root filesystem's own directory: give an absolute path such as "
                          "/var/lib/handmade-containers/rootfs/<name>" % (dest,))
    if not os.path.lexists(dest):
        return False
    if os.path.islink(dest) or not os.path.isdir(dest):
        raise RootfsError("rootfs %s is not a directory: it was not installed by rootfs_fetch, so it is left "
                          "alone; remove it by hand" % dest)
    if read_stamp(dest) is None:
        raise RootfsError("rootfs %s was not installed by rootfs_fetch (no valid %s), so it is not removed: "
                          "remove it by hand, or leave remove_rootfs out" % (dest, STAMP_NAME))
    in_use = _processes_rooted_in(dest)
    if in_use:
        raise RootfsError("rootfs %s is the root filesystem of running processes (pids %s): stop the containers "
                          "that use it first" % (dest, ", ".join(str(pid) for pid in in_use[:10])))
    if not check_mode:
        # Renamed away first, so that dest is gone in one step: a run killed
        # during the removal leaves a leftover the next fetch cleans, never a
        # half-deleted tree at dest.
        aside = tempfile.mkdtemp(prefix="%s%d-" % (_tmp_prefix(dest), os.getpid()), dir=os.path.dirname(dest))
        os.rename(dest, os.path.join(aside, "tree"))
        shutil.rmtree(aside)
    return True


class Source:
    """What to fetch, resolved: a URL (or a file on this host), its version and expected digest."""

    def __init__(self, kind, location, version=None):
        self.kind = kind          # "alpine", "url" or "src"
        self.location = location  # a URL, or a path on this host for "src"
        self.version = version
        self.algorithm = "sha256"
        self.digest = None        # expected hex digest, once known
        self.checksum_url = None  # where the digest is published, when it is not given
        self.published_sidecar = False  # checksum_url is the Alpine release's own .sha256
        self.skip_checksum = False

    @property
    def file_name(self):
        return posixpath.basename(self.location.split("?", 1)[0])

    def expect(self, checksum):
        """Apply a parse_checksum() result."""
        algorithm, digest, url = checksum
        if algorithm == "skip":
            self.skip_checksum = True
        else:
            self.algorithm, self.digest, self.checksum_url = algorithm, digest, url

    def identity(self):
        """The stamp fields that name this source."""
        if self.kind == "src":
            return {"src": self.location}
        return {"url": self.location}


def _offered(downloader, url, pattern):
    """Best effort: the names a mirror directory lists that match ``pattern``."""
    try:
        names = listing_links(downloader.text(url + "/"))
    except RootfsError:
        return []
    return sorted(set(match.group(1) for match in (re.match(pattern, name) for name in names) if match))


def _not_offered(downloader, mirror, branch, arch, release=None):
    """An 'unknown version or arch' message that lists what the mirror has."""
    mirror = mirror.rstrip("/")
    wanted = "Alpine %s for %s" % (release or branch, arch)
    branches = _offered(downloader, mirror, r"^(v\d+\.\d+|latest-stable|edge)$")
    if branches and branch not in branches:
        return "%s is not on %s: it has no branch %s (it offers: %s); set version" % (
            wanted, mirror, branch, ", ".join(branches))
    arches = _offered(downloader, "%s/%s/releases" % (mirror, branch), r"^([A-Za-z0-9_]+)$")
    if arches and arch not in arches:
        return "%s is not on %s: %s has no architecture %s (it offers: %s); set arch" % (
            wanted, mirror, branch, arch, ", ".join(arches))
    versions = _offered(downloader, releases_url(mirror, branch, arch),
                        r"^alpine-minirootfs-(.+)-%s\.tar\.gz$" % re.escape(arch))
    if versions:
        return "%s is not on %s (%s offers: %s); set version" % (wanted, mirror, branch, ", ".join(versions))
    return "%s is not on %s; check version, arch and mirror" % (wanted, mirror)


def resolve_alpine(downloader, mirror, version, arch, checksum):
    """The Source for an Alpine release; a branch is resolved through its latest-releases.yaml."""
    branch, release = parse_version(version)
    directory = releases_url(mirror, branch, arch)
    index_digest = None
    if release is None:
        try:
            index = downloader.text(directory + "/latest-releases.yaml")
        except RootfsError as exc:
            if getattr(exc, "http_status", None) != 404:
                raise
            raise RootfsError(_not_offered(downloader, mirror, branch, arch))
        entry = pick_minirootfs(parse_latest_releases(index), arch)
        release, url, index_digest = entry["version"], directory + "/" + entry["file"], entry["sha256"].lower()
    else:
        url = directory + "/" + minirootfs_file_name(release, arch)
    source = Source("alpine", url, version=release)
    if checksum is not None:
        source.expect(checksum)
    elif index_digest:
        source.digest = index_digest
    else:
        # The release's .sha256 sidecar, fetched only when the stamp does not already match.
        source.checksum_url, source.published_sidecar = url + ".sha256", True
    return source


def resolve_digest(downloader, source, mirror, arch):
    """Fetch the published checksum when only its URL is known."""
    if source.digest or source.skip_checksum or not source.checksum_url:
        return
    try:
        text = downloader.text(source.checksum_url)
    except RootfsError as exc:
        if source.published_sidecar and getattr(exc, "http_status", None) == 404:
            raise RootfsError(_not_offered(downloader, mirror, parse_version(source.version)[0], arch,
                                           source.version))
        raise RootfsError("cannot get the checksum: %s" % exc)
    source.digest = parse_checksum_file(text, source.file_name, source.algorithm)


def _stamp_matches(stamp, source, verify_signature):
    """True when the installed tree came from exactly this source, verified as asked."""
    if not stamp or any(stamp.get(key) != value for key, value in source.identity().items()):
        return False
    if verify_signature and not stamp.get("signature_verified"):
        return False
    if source.kind == "src":
        try:
            info = os.stat(source.location)
        except OSError:
            return False
        if stamp.get("src_identity") != [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns]:
            return False
    if source.digest:
        return stamp.get(source.algorithm) == source.digest
    if source.published_sidecar:
        # A pinned release: its URL names one immutable file, verified against
        # the sidecar when it was installed. No network needed to confirm.
        return bool(stamp.get("checksum_verified"))
    return True


def _summary(stamp_or_fields):
    return {key: stamp_or_fields[key] for key in ("url", "src", "version", "sha256", "sha512", "signature_verified")
            if stamp_or_fields and stamp_or_fields.get(key) is not None}


def fetch_rootfs(params, check_mode=False):
    """Make ``dest`` hold the wanted root filesystem.

    ``params`` are the module's options. Returns the module's result:
    ``changed``, ``diff`` (before/after stamps) and the documented values.
    """
    try:
        return _fetch_rootfs(params, check_mode)
    except OSError as exc:
        # What the steps above did not foresee (permissions, read-only
        # filesystems): still one error type, naming the path.
        raise RootfsError("cannot fetch the root filesystem: %s%s" % (
            exc.strerror or exc, ": %s" % exc.filename if exc.filename else ""))


def _fetch_rootfs(params, check_mode):
    started = time.time()
    cache_dir = params.get("cache_dir") or DEFAULT_CACHE_DIR  # callers other than the module may leave it out
    dest, parent = _dest_paths(params["dest"], cache_dir)
    force = bool(params.get("force"))
    stamp = read_stamp(dest)
    # A stale stamp (a copied or restored tree) still marks the tree as one of
    # ours; a directory without any stamp may hold someone's data.
    foreign = os.path.isdir(dest) and not os.path.exists(os.path.join(dest, STAMP_NAME)) and os.listdir(dest)
    if foreign and not force:
        raise RootfsError("dest %s is a non-empty directory that rootfs_fetch did not install (no %s), and it "
                          "would be replaced: empty or remove it, choose another dest, or set force: true"
                          % (dest, STAMP_NAME))
    if not check_mode:
        _remove_leftovers_of(dest, parent, cache_dir)
    arch = params.get("arch") or host_arch()
    mirror = params.get("mirror") or DEFAULT_MIRROR
    downloader = Downloader(timeout=_network_timeout(params.get("timeout")),
                            validate_certs=params.get("validate_certs", True))
    checksum = parse_checksum(params.get("checksum"))
    verify = bool(params.get("verify_signature"))

    if params.get("src"):
        if not os.path.isfile(params["src"]):
            raise RootfsError("src %s is not a file on this host: give the path of a tarball" % params["src"])
        source = Source("src", os.path.realpath(params["src"]), version=params.get("version"))
        if checksum is not None:
            source.expect(checksum)
    elif params.get("url"):
        if checksum is None:
            raise RootfsError("url needs a checksum to verify the download: set checksum to sha256:<hex>, "
                              "sha512:<hex>, sha256:<URL of a checksum file>, or skip to accept it unverified")
        source = Source("url", params["url"], version=params.get("version"))
        source.expect(checksum)
    else:
        source = resolve_alpine(downloader, mirror, params.get("version") or DEFAULT_VERSION, arch, checksum)

    # A published checksum may change (a re-spun file): fetch it, except for a
    # pinned Alpine release that the stamp shows was verified already.
    pinned_and_current = source.published_sidecar and _stamp_matches(stamp, source, verify)
    if force or not pinned_and_current:
        resolve_digest(downloader, source, mirror, arch)
    up_to_date = not force and _stamp_matches(stamp, source, verify)

    result = {"changed": not up_to_date, "dest": dest, "version": source.version,
              "url": source.location if source.kind != "src" else None}
    if up_to_date:
        result.update(checksum="sha256:%s" % stamp["sha256"], checksum_verified=stamp.get("checksum_verified"),
                      signature_verified=bool(stamp.get("signature_verified")), size=stamp.get("size"),
                      cached=True, files=stamp.get("files"), version=stamp.get("version"))
        after = stamp
    elif check_mode:
        result.update(checksum="%s:%s" % (source.algorithm, source.digest) if source.digest else None,
                      checksum_verified=bool(source.digest), signature_verified=False, size=None,
                      cached=None, files=None)
        after = dict(source.identity(), version=source.version, signature_verified=verify or None,
                     **{source.algorithm: source.digest})
    else:
        in_use = _processes_rooted_in(dest) if os.path.isdir(dest) else []
        if in_use:
            raise RootfsError("dest %s is the root filesystem of running processes (pids %s): replacing it would "
                              "pull the files from under them; stop that container first or choose another dest"
                              % (dest, ", ".join(str(pid) for pid in in_use[:10])))
        after = _install(source, dest, parent, cache_dir, downloader, params, verify)
        result.update(checksum="sha256:%s" % after["sha256"], checksum_verified=after["checksum_verified"],
                      signature_verified=after["signature_verified"], size=after["size"],
                      cached=after["cached"], files=after["files"])
    result["diff"] = {"before": _summary(stamp), "after": _summary(after)}
    result["elapsed"] = round(time.time() - started, 3)
    return result


def _network_timeout(value):
    """The seconds each network operation may take: the task's, at least 1; 30 when it gives none."""
    if value is None:
        return 30
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RootfsError("timeout %r is not a number of seconds: give a whole number of at least 1 (default 30)"
                          % (value,))
    return value


def _install(source, dest, parent, cache_dir, downloader, params, verify):
    """Obtain and verify the tarball, extract it beside ``dest``, swap it in; return the new stamp."""
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    tmp_prefix = _tmp_prefix(dest)

    tarball, cached = _obtain(source, cache_dir, downloader)
    top = None
    try:
        signature_verified = False
        if verify:
            _check_signature(source, tarball, cache_dir, downloader, params)
            signature_verified = True
        # First a pass that writes nothing: an unsafe member or a damaged
        # stream is refused before anything is created. It hashes the file as
        # it reads it, which checks a cached copy too.
        allow_devices = bool(params.get("allow_devices"))
        scanned = scan_tarball(tarball, allow_devices)
        sha256, sha512 = scanned.sha256, scanned.sha512
        try:
            _check_digest(source, {"sha256": sha256, "sha512": sha512},
                          "cached copy" if cached else "file" if source.kind == "src" else "download")
        except RootfsError:
            if cached:
                _forget(cache_dir, tarball)  # damaged in the cache: the next run downloads it afresh
            raise
        os.makedirs(parent, mode=0o755, exist_ok=True)
        top = tempfile.mkdtemp(prefix="%s%d-" % (tmp_prefix, os.getpid()), dir=parent)
        # The extraction applies the same rules again, to the bytes the scan
        # kept (or, for a very large tarball, to the file read and hashed
        # again), so the stamp's digests are of the very bytes unpacked.
        files, extracted_sha256, _sha512 = extract_tarball(tarball, top, allow_devices, scanned)
        if extracted_sha256 != sha256:
            raise RootfsError("%s changed while it was being extracted: run again" % tarball)
        if source.kind != "src" and not cached:
            tarball = _keep(tarball, cache_dir, sha256, sha512)
        fields = dict(source.identity(), version=source.version, sha256=sha256, sha512=sha512,
                      size=os.path.getsize(tarball), files=files, cached=cached,
                      checksum_verified=bool(source.digest), signature_verified=signature_verified)
        if source.kind == "src":
            info = os.stat(source.location)
            fields["src_identity"] = [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns]
        stamp = write_stamp(top, fields)
        install_tree(top, dest)
        return stamp
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise RootfsError("no space left on device in %s: free some space or choose a dest on a larger "
                              "filesystem" % parent)
        raise RootfsError("cannot install the root filesystem at %s: %s" % (dest, exc))
    finally:
        if top and os.path.lexists(top):
            shutil.rmtree(top, ignore_errors=True)
        if os.path.basename(tarball).startswith(".download-"):
            for path in (tarball, tarball + ".asc"):
                if os.path.exists(path):
                    os.unlink(path)


def _tmp_prefix(dest):
    return ".%s.tmp-" % os.path.basename(dest)


def _remove_leftovers_of(dest, parent, cache_dir):
    """What runs killed midway left: their process is gone, so nothing else uses it."""
    remove_leftovers(parent, _tmp_prefix(dest))
    remove_leftovers(cache_dir, ".download-")
    remove_leftovers(cache_dir, ".key-")


def _check_digest(source, actual, what):
    """``what`` is "download" or "cached copy" (both removed on a mismatch), or "file" (src, left alone)."""
    if source.digest and actual[source.algorithm] != source.digest:
        fate = ": use the right file or fix checksum" if what == "file" else "; it was discarded"
        raise RootfsError("%s does not match its checksum: expected %s:%s, got %s:%s. The %s is damaged or was "
                          "altered%s" % (source.location, source.algorithm, source.digest, source.algorithm,
                                         actual[source.algorithm], what, fate))


def _cache_path(cache_dir, algorithm, digest):
    return os.path.join(cache_dir, "%s-%s" % (algorithm, digest))


def _obtain(source, cache_dir, downloader):
    """(path, cached): the tarball on this host, from ``src``, the cache, or a fresh download.

    A download lands in a temporary file in the cache directory and is
    checked there before anything reads it as a tarball; it gets its
    checksum names only once the tree is extracted.
    """
    if source.kind == "src":
        return source.location, False  # its digest is checked by the scan, before anything is written
    if source.digest:
        cached = _cache_path(cache_dir, source.algorithm, source.digest)
        if os.path.isfile(cached):
            return cached, True
    handle, partial = tempfile.mkstemp(prefix=".download-%d-" % os.getpid(), dir=cache_dir)
    os.close(handle)
    try:
        _size, sha256, sha512 = downloader.to_file(source.location, partial)
        _check_digest(source, {"sha256": sha256, "sha512": sha512}, "download")
    except BaseException:
        os.unlink(partial)
        raise
    return partial, False


def _keep(partial, cache_dir, sha256, sha512):
    """Give a verified download its cache names: sha256-<hex>, and sha512-<hex> as a hard link."""
    final = _cache_path(cache_dir, "sha256", sha256)
    signature = partial + ".asc"
    os.chmod(partial, 0o644)
    os.rename(partial, final)
    if os.path.exists(signature):
        os.rename(signature, final + ".asc")
    alias = _cache_path(cache_dir, "sha512", sha512)
    try:
        os.link(final, alias)
    except FileExistsError:
        pass  # kept by an earlier (or a concurrent) run: the same bytes
    return final


def _forget(cache_dir, tarball):
    """Remove a cache entry under all its names."""
    try:
        doomed = os.stat(tarball)
    except OSError:
        return
    for name in os.listdir(cache_dir):
        path = os.path.join(cache_dir, name)
        try:
            info = os.stat(path)
        except OSError:
            continue
        if (info.st_ino, info.st_dev) == (doomed.st_ino, doomed.st_dev) or path == tarball + ".asc":
            os.unlink(path)


def signing_key_file(params, scratch, downloader):
    """(path, what it holds, for messages) of the armored key to verify with.

    ``gpg_key`` is a file on this host or a URL (downloaded into ``scratch``);
    without it, Alpine's release key shipped in _alpine_key is written there,
    so the default needs no download.
    """
    key = params.get("gpg_key")
    if not key:
        path = os.path.join(scratch, ALPINE_KEY_FILE_NAME)
        with open(path, "w") as handle:
            handle.write(ALPINE_KEY)
        return path, "Alpine's release key (the default gpg_key, shipped with the collection)"
    if re.match(r"^[a-z][a-z0-9+.-]*://", key):
        path = os.path.join(scratch, "key.asc")
        _save_small(downloader, key, path, "key")
        return path, "a key in gpg_key %s" % key
    if os.path.isfile(key):
        return key, "a key in gpg_key %s" % key
    raise RootfsError("gpg_key %s is neither a URL nor a file on this host" % key)


def _check_signature(source, tarball, cache_dir, downloader, params):
    """Verify ``tarball`` against its .asc and the pinned key.

    The .asc is kept in the cache beside the tarball (``<tarball>.asc``), so
    a cached release is verified again without a download. A cached .asc
    that fails is fetched once more before the run fails: the mirror may
    have re-signed the same tarball since it was cached.
    """
    scratch = tempfile.mkdtemp(prefix=".key-%d-" % os.getpid(), dir=cache_dir)
    try:
        key_path, key_name = signing_key_file(params, scratch, downloader)
        fingerprint = params.get("gpg_fingerprint") or ALPINE_FINGERPRINT

        def verify(signature):
            verify_signature(tarball, signature, key_path, fingerprint, name=source.location, key_name=key_name)

        if source.kind == "src":
            signature = source.location + ".asc"
            if not os.path.isfile(signature):
                raise RootfsError("verify_signature needs the detached signature %s next to src: put it there, "
                                  "or set verify_signature: false to accept an unsigned file" % signature)
            verify(signature)
            return

        signature = tarball + ".asc"

        def verify_or_discard():
            try:
                verify(signature)
            except RootfsError:
                os.unlink(signature)  # never keep a signature that did not verify
                raise

        if os.path.isfile(signature):
            try:
                verify_or_discard()
                return
            except RootfsError:
                pass  # cached by an earlier run: fetch it once more below
        try:
            _save_small(downloader, source.location + ".asc", signature, "signature")
        except RootfsError as exc:
            if getattr(exc, "http_status", None) != 404:
                raise
            raise RootfsError("%s: the mirror publishes no signature of %s; %suse a mirror that publishes the "
                              "releases' .asc signatures" % (exc, source.file_name, UNSIGNED_FIX))
        verify_or_discard()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _save_small(downloader, url, path, what):
    try:
        text = downloader.text(url)
    except RootfsError as exc:
        error = RootfsError("cannot get the %s: %s" % (what, exc))
        error.http_status = getattr(exc, "http_status", None)
        raise error
    with open(path, "w") as handle:
        handle.write(text)
