# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Extract a tarball into a fresh directory without ever writing outside it.

A root filesystem tarball is untrusted input that root unpacks. This reader
refuses the members that would reach outside the new tree (absolute paths,
``..``, paths through a symlink, relative symlinks that climb out, hard links
to outside) and device nodes unless allowed, and names the member it refused.
It keeps what a root filesystem needs: numeric owners, modes with
setuid/setgid/sticky, modification times, symlinks and hard links.

Why not ``tarfile.extractall``: it follows symlinks written by earlier
members on Python versions without extraction filters (3.8 to 3.11 as
shipped), and profiling showed its header parsing was the largest cost of an
extraction. This file reads the formats root filesystems come in (ustar,
GNU long names, pax) with one ``struct`` call per header, and decompresses
on a second thread, as ``gzip -d | tar -x`` runs as two processes.

Standard library only. One error type: ``ArchiveError``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bz2
import errno
import hashlib
import lzma
import os
import queue
import stat
import struct
import threading
import zlib


class ArchiveError(Exception):
    """The tarball is unsafe or unreadable, or the disk refused it; the message says which."""


BLOCK = 512
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
_CHECKSUM_FIELD = slice(148, 156)

REGULAR, REGULAR_OLD, CONTIGUOUS = b"0", b"\0", b"7"
HARDLINK, SYMLINK, CHARDEV, BLOCKDEV, DIRECTORY, FIFO = b"1", b"2", b"3", b"4", b"5", b"6"
GNU_LONGNAME, GNU_LONGLINK, PAX_MEMBER, PAX_GLOBAL = b"L", b"K", b"x", b"g"
# Headers that describe the archive, not a file to create.
IGNORED = (b"V",)


class Member:
    """One archive entry, with names decoded as the filesystem stores them."""

    __slots__ = ("name", "linkname", "type", "mode", "uid", "gid", "size", "mtime", "devmajor", "devminor")

    def __repr__(self):
        return "Member(%r, type=%r)" % (self.name, self.type)


def _number(field):
    """A header number: octal digits, or GNU base-256 for values octal cannot hold."""
    try:
        return int(field.rstrip(b"\0 ") or b"0", 8)  # the common case, fast
    except ValueError:
        pass
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[:1] == b"\xff" else value
    digits = field.split(b"\0", 1)[0].strip()
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise ArchiveError("a tar header holds %r where a number belongs: the archive is damaged" % field)


def _text(field):
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _checksum_ok(block, stored):
    unsigned = sum(block) - sum(block[_CHECKSUM_FIELD]) + 8 * 32
    if unsigned == stored:
        return True
    # Some old tar programs summed signed bytes.
    signed = sum(byte - 256 if byte > 127 else byte for byte in block)
    signed -= sum(byte - 256 if byte > 127 else byte for byte in block[_CHECKSUM_FIELD])
    return signed + 8 * 32 == stored


def parse_pax(data):
    """``{key: value}`` from a pax extended header's records (``"%d key=value\\n"``)."""
    records, position = {}, 0
    while position < len(data):
        space = data.find(b" ", position)
        if space < 0 or not data[position:space].isdigit():
            break  # padding after the last record
        length = int(data[position:space])
        if length <= 0 or position + length > len(data):
            raise ArchiveError("a pax header record is longer than the header: the archive is damaged")
        key, sep, value = data[space + 1:position + length - 1].partition(b"=")
        if not sep:
            raise ArchiveError("a pax header record has no '=': the archive is damaged")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position += length
    return records


class _Uncompressed:
    """A plain tar file, read through the same interface as the decompressors."""

    eof = True  # a plain file cannot end early in the compression sense
    unused_data = b""

    @staticmethod
    def decompress(data):
        return data


class _ChunkReader:
    """``read(n)`` and ``skip(n)`` over a sequence of byte chunks that ``_fetch()`` supplies.

    ``keep(limit)`` makes it remember the chunks it hands out, up to
    ``limit`` bytes in all, so that a second pass can replay them instead of
    decompressing the file again.
    """

    def __init__(self):
        self.buffer = b""
        self.offset = 0
        self.position = 0  # bytes handed out or skipped so far
        self.ended = False
        self.kept = None
        self.kept_size = 0
        self.keep_limit = 0

    def _fetch(self):
        raise NotImplementedError

    def keep(self, limit):
        self.kept, self.keep_limit = [], limit

    def read(self, size):
        """Exactly ``size`` bytes, or fewer at the end of the data."""
        buffer, offset = self.buffer, self.offset
        if len(buffer) - offset >= size:
            self.offset = offset + size
            self.position += size
            return buffer[offset:offset + size]
        pieces, wanted = [buffer[offset:]], size - (len(buffer) - offset)
        while wanted > 0:
            item = self._next_chunk()
            if not item:
                buffer, offset = b"", 0
                break
            buffer, offset = item, min(wanted, len(item))
            pieces.append(item[:offset])
            wanted -= offset
        self.buffer, self.offset = buffer, offset
        data = b"".join(pieces)
        self.position += len(data)
        return data

    def skip(self, size):
        """Pass over ``size`` bytes without copying them; False when the data ends first."""
        while size > len(self.buffer) - self.offset:
            available = len(self.buffer) - self.offset
            size -= available
            self.position += available
            self.buffer, self.offset = self._next_chunk(), 0
            if not self.buffer:
                return False
        self.offset += size
        self.position += size
        return True

    def _next_chunk(self):
        if self.ended:
            return b""
        item = self._fetch()
        if not item:
            self.ended = True
        elif self.kept is not None:
            self.kept_size += len(item)
            if self.kept_size > self.keep_limit:
                self.kept = None  # too large to hold: the next pass decompresses again
            else:
                self.kept.append(item)
        return item


class _Replay(_ChunkReader):
    """The chunks a first pass kept, read again without touching the file."""

    def __init__(self, chunks):
        _ChunkReader.__init__(self)
        self._chunks = iter(chunks)

    def _fetch(self):
        return next(self._chunks, b"")


class StreamReader(_ChunkReader, threading.Thread):
    """The uncompressed bytes of a tarball, produced on a second thread.

    zlib, lzma, bz2 and hashlib release the GIL while they work, so this
    thread and the one reading the archive run at once. It also hashes the
    compressed bytes, so the digests returned are of the very bytes that
    were read.
    """

    chunk = 1 << 20

    def __init__(self, path):
        _ChunkReader.__init__(self)
        threading.Thread.__init__(self, name="safetar-decompress", daemon=True)
        self.path = path
        self.kind = "tar"
        self.sha256 = hashlib.sha256()
        self.sha512 = hashlib.sha512()
        self.chunks = queue.Queue(maxsize=16)
        self.stopping = threading.Event()

    @staticmethod
    def _codec(head):
        if head.startswith(b"\x1f\x8b"):
            return "gzip", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)
        if head.startswith(b"\xfd7zXZ\x00"):
            return "xz", lzma.LZMADecompressor
        if head.startswith(b"BZh"):
            return "bzip2", bz2.BZ2Decompressor
        return "tar", _Uncompressed

    def run(self):
        try:
            with open(self.path, "rb") as handle:
                block = handle.read(self.chunk)
                self.kind, make = self._codec(block)
                decompressor = make()
                while block and not self.stopping.is_set():
                    self.sha256.update(block)
                    self.sha512.update(block)
                    while block:
                        data = decompressor.decompress(block)
                        if data:
                            self.chunks.put(data)
                        block = decompressor.unused_data
                        if not block.strip(b"\0"):
                            block = b""  # zero padding after the stream, as gzip -d allows
                        elif decompressor.eof:
                            decompressor = make()  # gzip and bzip2 files may hold several streams
                    block = handle.read(self.chunk)
                if not decompressor.eof and not self.stopping.is_set():
                    raise ArchiveError("the %s stream ends early: the file is truncated" % self.kind)
            self.chunks.put(b"")
        except (OSError, EOFError, zlib.error, lzma.LZMAError, ArchiveError) as exc:
            self.chunks.put(exc)

    def _fetch(self):
        item = self.chunks.get()
        if isinstance(item, Exception):
            self.ended = True
            if isinstance(item, ArchiveError):
                raise item
            raise ArchiveError("%s is not a readable %s file (%s): the file is damaged" % (
                self.path, self.kind, item))
        return item

    def close(self):
        """Stop the thread, even when the reader gave up in the middle."""
        self.stopping.set()
        while self.is_alive():
            try:
                self.chunks.get(timeout=0.05)
            except queue.Empty:
                pass
        self.join()


def _padding(size):
    return -size % BLOCK


def iter_members(reader):
    """Yield a Member per entry; the caller reads ``member.size`` data bytes before the next.

    GNU long names and pax headers are folded into the member they describe.
    """
    pax_global, long_name, long_link, pax = {}, None, None, {}
    while True:
        block = reader.read(BLOCK)
        if len(block) < BLOCK:
            if not block:
                return  # no end-of-archive blocks: tar accepts this too
            raise ArchiveError("the archive ends inside a header: the file is truncated")
        if not block.strip(b"\0"):
            return  # end-of-archive marker
        (name, mode, uid, gid, size, mtime, checksum, kind, linkname, magic, _version,
         _uname, _gname, devmajor, devminor, prefix) = _HEADER.unpack(block)
        if not _checksum_ok(block, _number(checksum)):
            raise ArchiveError("a tar header has a wrong checksum: the archive is damaged or not a tar file")
        size = _number(size)
        if kind in (GNU_LONGNAME, GNU_LONGLINK, PAX_MEMBER, PAX_GLOBAL):
            data = reader.read(size + _padding(size))[:size]
            if len(data) < size:
                raise ArchiveError("the archive ends inside a header: the file is truncated")
            if kind == GNU_LONGNAME:
                long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif kind == GNU_LONGLINK:
                long_link = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif kind == PAX_MEMBER:
                pax = parse_pax(data)
            else:
                pax_global.update(parse_pax(data))
            continue
        member = Member()
        member.name = _text(name)
        if magic == b"ustar\0" and prefix[:1] != b"\0":
            member.name = _text(prefix) + "/" + member.name
        member.linkname = _text(linkname) if kind in (HARDLINK, SYMLINK) else ""
        member.type = REGULAR if kind == REGULAR_OLD else kind
        member.mode = _number(mode) & 0o7777
        member.uid, member.gid = _number(uid), _number(gid)
        member.size, member.mtime = size, _number(mtime)
        if kind in (CHARDEV, BLOCKDEV):
            member.devmajor, member.devminor = _number(devmajor), _number(devminor)
        else:
            member.devmajor = member.devminor = 0
        extended = dict(pax_global, **pax) if pax_global else pax
        if extended:
            _apply_pax(member, extended)
        if long_name is not None:
            member.name = long_name
        if long_link is not None:
            member.linkname = long_link
        if member.type == REGULAR and member.name.endswith("/"):
            member.type = DIRECTORY  # the old v7 way of writing a directory
        long_name = long_link = None
        pax = {}
        yield member


def _apply_pax(member, records):
    if "GNU.sparse.map" in records or "GNU.sparse.major" in records or "GNU.sparse.offset" in records:
        raise ArchiveError("refusing to extract %r: sparse files are not supported; repack the tarball without "
                           "--sparse" % records.get("path", member.name))
    for key, attribute in (("path", "name"), ("linkpath", "linkname")):
        if key in records:
            setattr(member, attribute, records[key])
    for key in ("size", "uid", "gid"):
        if key in records:
            setattr(member, key, int(records[key]))
    if "mtime" in records:
        member.mtime = float(records["mtime"])


def member_path(name):
    """A member name as a clean relative path (``""`` for the top), or None if it escapes."""
    if name.startswith("/"):
        return None
    parts = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return None
        parts.append(part)
    return "/".join(parts)


def symlink_escapes(path, target):
    """True when a relative symlink at ``path`` climbs above the top of the tree.

    Absolute targets are kept: inside the container they resolve against its
    new root (Alpine's applet links are all ``/bin/busybox``), and this
    extractor never follows a link it has written.
    """
    if target.startswith("/"):
        return False
    depth = path.count("/")  # directories between the top and the link
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


class _Rules:
    """The safety rules, applied to names alone: what an extraction may create.

    They rest on one invariant: an entry is created only inside a directory
    the extraction made itself (``directories``). A symlink never becomes a
    parent and a directory is never replaced, so no member can reach through
    a link, whatever order the archive lists them in. The same rules run in
    the pre-scan (nothing written) and again while extracting.
    """

    def __init__(self, allow_devices):
        self.allow_devices = allow_devices
        self.directories = {""}
        self.symlinks = set()
        self.non_directories = set()

    @staticmethod
    def refuse(member, why):
        raise ArchiveError("refusing to extract %r: %s. The tarball is unsafe or damaged; check where it came from"
                           % (member.name, why))

    def admit(self, member):
        """Check ``member``; return (path, parents to create first, whether it replaces an earlier entry)."""
        path = member_path(member.name)
        if path is None:
            self.refuse(member, "absolute paths are not allowed" if member.name.startswith("/")
                        else "'..' is not allowed in a member's path")
        if not path:
            if member.type != DIRECTORY:
                self.refuse(member, "the top of the tree must be a directory")
            return path, [], False
        parents = [] if path.rpartition("/")[0] in self.directories else self._missing_parents(member, path)
        kind = member.type
        if kind == DIRECTORY and path in self.directories:
            return path, parents, False  # seen before: only its metadata changes
        if kind == SYMLINK and symlink_escapes(path, member.linkname):
            self.refuse(member, "it is a symlink to %r, which leaves the tree" % member.linkname)
        if kind == HARDLINK:
            target = member_path(member.linkname)
            if not target:
                self.refuse(member, "it is a hard link to %r, outside the tree" % member.linkname)
            if target not in self.non_directories:
                self.refuse(member, "it is a hard link to %r, which is not a file earlier in the archive"
                            % member.linkname)
        if kind in (CHARDEV, BLOCKDEV) and not self.allow_devices:
            self.refuse(member, "it is a device node; set allow_devices: true only if the image really needs "
                                "them (containers get their /dev from the runtime)")
        if kind not in (REGULAR, CONTIGUOUS, SYMLINK, DIRECTORY, HARDLINK, FIFO, CHARDEV, BLOCKDEV):
            self.refuse(member, "its type %r is not supported" % kind.decode("latin-1"))
        if path in self.directories:
            self.refuse(member, "it would replace the directory of the same name")
        replaces = path in self.non_directories
        self.symlinks.discard(path)
        if kind == DIRECTORY:
            self.non_directories.discard(path)
            self.directories.add(path)
        else:
            self.non_directories.add(path)
            if kind == SYMLINK or (kind == HARDLINK and member_path(member.linkname) in self.symlinks):
                self.symlinks.add(path)
        return path, parents, replaces

    def _missing_parents(self, member, path):
        """Parents to create (as tar does), after checking that none is a link or a file."""
        parent, missing = path.rpartition("/")[0], []
        while parent not in self.directories:
            if parent in self.symlinks:
                self.refuse(member, "its path goes through the symlink %r, which could point anywhere" % parent)
            if parent in self.non_directories:
                self.refuse(member, "its parent %r is not a directory" % parent)
            missing.append(parent)
            parent = parent.rpartition("/")[0]
        missing.reverse()
        self.directories.update(missing)
        return missing


def _nanoseconds(mtime):
    return (int(mtime * 1000000000),) * 2


class _Extraction:
    """Creates what the rules admit, in a fresh directory that only it writes to."""

    def __init__(self, top, allow_devices):
        self.top = top
        self.rules = _Rules(allow_devices)
        self.as_root = os.geteuid() == 0
        self.directory_metadata = []  # applied at the end, deepest first
        self.top_metadata = None
        self.count = 0

    def chown(self, target, member, follow=True):
        """Numeric owner, as root only (like tar); True when it changed anything."""
        if not self.as_root or not (member.uid or member.gid):
            return False
        if isinstance(target, int):
            os.fchown(target, member.uid, member.gid)
        else:
            os.chown(target, member.uid, member.gid, follow_symlinks=follow)
        return True

    def add(self, member, reader):
        self.create(member, self.rules.admit(member), reader)

    def create(self, member, admitted, reader):
        """Create what ``admitted`` (the rules' answer for ``member``) describes."""
        path, parents, replaces = admitted
        if not path:
            self.top_metadata = (member.mode, member.uid, member.gid, member.mtime)
            return
        for directory in parents:
            os.mkdir(self.top + "/" + directory, 0o700)
            self.directory_metadata.append((directory, 0o755, 0, 0, None))
        full = self.top + "/" + path
        if replaces:
            os.unlink(full)  # a repeated name: the last one wins, as in tar
        kind = member.type
        if kind == REGULAR or kind == CONTIGUOUS:
            self.regular(member, full, reader)
        elif kind == SYMLINK:
            os.symlink(member.linkname, full)
            self.chown(full, member, follow=False)
            os.utime(full, ns=_nanoseconds(member.mtime), follow_symlinks=False)
        elif kind == DIRECTORY:
            if not os.path.isdir(full):
                os.mkdir(full, 0o700)
            self.directory_metadata.append((path, member.mode, member.uid, member.gid, member.mtime))
        elif kind == HARDLINK:
            os.link(self.top + "/" + member_path(member.linkname), full, follow_symlinks=False)
        else:
            self.special(member, full)
        self.count += 1

    def regular(self, member, full, reader):
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, member.mode & 0o777)
        try:
            remaining = member.size
            while remaining:
                data = reader.read(min(remaining, 1 << 20))
                if not data:
                    raise ArchiveError("the archive ends inside %r: the file is truncated" % member.name)
                _write_all(fd, data)
                remaining -= len(data)
            # chown clears setuid and setgid, so the full mode goes on after it.
            if self.chown(fd, member) or member.mode & 0o7000:
                os.fchmod(fd, member.mode)
            os.utime(fd, ns=_nanoseconds(member.mtime))
        finally:
            os.close(fd)

    def special(self, member, full):
        if member.type == FIFO:
            os.mkfifo(full, 0o600)
        else:
            kind = stat.S_IFCHR if member.type == CHARDEV else stat.S_IFBLK
            os.mknod(full, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        self.chown(full, member)
        os.chmod(full, member.mode)
        os.utime(full, ns=_nanoseconds(member.mtime))

    def finish(self):
        # Directory metadata goes on last: creating entries changes a
        # directory's mtime, and a read-only mode must not block filling it.
        for path, mode, uid, gid, mtime in reversed(self.directory_metadata):
            full = self.top + "/" + path
            if self.as_root and (uid or gid):
                os.chown(full, uid, gid)
            os.chmod(full, mode)
            if mtime is not None:
                os.utime(full, ns=_nanoseconds(mtime))
        mode, uid, gid, mtime = self.top_metadata or (0o755, 0, 0, None)
        if self.as_root:
            os.chown(self.top, uid, gid)
        os.chmod(self.top, mode)
        if mtime is not None:
            os.utime(self.top, ns=_nanoseconds(mtime))


def _write_all(fd, data):
    written = os.write(fd, data)
    if written < len(data):  # only after a signal or on a nearly full disk
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view):]


# Decompressed bytes that scan() keeps for extract(): a minirootfs is a few
# MB, a distribution base image about a hundred; larger trees are simply
# decompressed twice.
KEEP_LIMIT = 128 << 20


class Scan:
    """What scan() found: the entry count and the file's digests; when the
    decompressed bytes were small enough to keep, those bytes (``chunks``)
    and the plan (``plan``: each member, the rules' answer for it, and where
    its data starts), so that extract() neither decompresses nor parses again.
    """

    __slots__ = ("entries", "sha256", "sha512", "chunks", "plan")

    def __init__(self, entries, sha256, sha512, chunks, plan):
        self.entries, self.sha256, self.sha512 = entries, sha256, sha512
        self.chunks, self.plan = chunks, plan


def scan(path, allow_devices=False, keep_limit=KEEP_LIMIT):
    """Apply the safety rules to every member of ``path`` without writing anything.

    Returns a Scan. Raises ArchiveError naming the first member that
    ``extract`` would refuse, or the damage found.
    """
    reader = StreamReader(path)
    reader.keep(keep_limit)
    rules = _Rules(allow_devices)
    reader.start()
    count, plan = 0, []
    try:
        for member in iter_members(reader):
            admitted = rules.admit(member)
            plan.append((member, admitted, reader.position))
            if member.type in (REGULAR, CONTIGUOUS) and not reader.skip(member.size + _padding(member.size)):
                raise ArchiveError("the archive ends inside %r: the file is truncated" % member.name)
            count += 1 if admitted[0] else 0  # as extract() counts: the top itself is not an entry
        while reader.skip(1 << 30):
            pass  # read to the end, so that the digests cover the whole file
    finally:
        reader.close()
    kept = reader.kept
    return Scan(count, reader.sha256.hexdigest(), reader.sha512.hexdigest(), kept,
                plan if kept is not None else None)


def extract(path, top, allow_devices=False, scanned=None):
    """Extract the tarball at ``path`` (gzip, xz, bzip2 or plain) into the empty directory ``top``.

    With ``scanned`` (the Scan of the same file) the bytes it kept are
    extracted without reading the file again. Returns ``(entries created,
    sha256 hex, sha512 hex)`` of the file as read. On ArchiveError the caller
    removes ``top``: it may hold part of the tree.
    """
    replay = scanned is not None and scanned.plan is not None
    if replay:
        reader, digests = _Replay(scanned.chunks), (scanned.sha256, scanned.sha512)
    else:
        reader, digests = StreamReader(path), None
        reader.start()
    extraction = _Extraction(top, allow_devices)
    # Modes come from the archive, not from this process's umask.
    umask = os.umask(0)
    try:
        if replay:
            # The scan parsed these bytes and applied the rules to them already.
            for member, admitted, data_position in scanned.plan:
                reader.skip(data_position - reader.position)
                extraction.create(member, admitted, reader)
        else:
            for member in iter_members(reader):
                extraction.add(member, reader)
                # Only regular files carry data (a link's or directory's size field is not followed by any).
                pad = _padding(member.size) if member.type in (REGULAR, CONTIGUOUS) else 0
                if pad and not reader.skip(pad):
                    raise ArchiveError("the archive ends inside %r: the file is truncated" % member.name)
        extraction.finish()
        while reader.skip(1 << 30):
            pass  # read to the end, so that the digests cover the whole file
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ArchiveError("no space left on device while extracting into %s" % os.path.dirname(top))
        raise ArchiveError("cannot create %s: %s" % (exc.filename or top, exc.strerror))
    finally:
        os.umask(umask)
        if digests is None:
            reader.close()
    if digests is None:
        digests = (reader.sha256.hexdigest(), reader.sha512.hexdigest())
    return (extraction.count,) + digests
