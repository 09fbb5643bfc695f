# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shipped Alpine release key: its armor, its packets and its fingerprint, in pure Python.

The fingerprint rootfs_fetch pins is computed here from the key text itself
(RFC 4880: the armor's CRC24, the packet framing, and the v4 fingerprint,
SHA-1 over 0x99, a two-byte length and the public key packet's body), so a
mistyped fingerprint or a damaged key fails this test without gpg.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import datetime
import hashlib
import struct

import pytest

from ansible_collections.handmade.containers.plugins.module_utils import _alpine_key
from ansible_collections.handmade.containers.plugins.module_utils._alpine_key import ALPINE_FINGERPRINT, ALPINE_KEY

PUBLIC_KEY, USER_ID, PUBLIC_SUBKEY, SIGNATURE = 6, 13, 14, 2
RSA = 1


def crc24(data):
    """The armor checksum of RFC 4880, section 6.1."""
    crc = 0xB704CE
    for byte in bytearray(data):
        crc ^= byte << 16
        for _bit in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def dearmor(text):
    """(kind, data) of an ASCII-armored block, its CRC24 checked."""
    lines = [line.strip() for line in text.strip().splitlines()]
    begin, end = lines[0], lines[-1]
    assert begin.startswith("-----BEGIN PGP ") and begin.endswith("-----"), begin
    kind = begin[len("-----BEGIN PGP "):-len("-----")]
    assert end == "-----END PGP %s-----" % kind, end
    body = lines[1:-1]
    blank = body.index("")  # armor headers (none, or Version: ...) end at the first blank line
    payload = body[blank + 1:]
    assert payload[-1].startswith("="), "no CRC24 line"
    data = base64.b64decode("".join(payload[:-1]))
    (crc,) = struct.unpack(">I", b"\0" + base64.b64decode(payload[-1][1:]))
    assert crc == crc24(data), "the armor's CRC24 %06X is not the data's %06X" % (crc, crc24(data))
    return kind, data


def packets(data):
    """(tag, body) of each OpenPGP packet, old and new framing alike (RFC 4880, section 4.2)."""
    data, offset, found = bytearray(data), 0, []
    while offset < len(data):
        header = data[offset]
        assert header & 0x80, "byte %d is not a packet header" % offset
        if header & 0x40:  # new format
            tag, offset = header & 0x3F, offset + 1
            first = data[offset]
            if first < 192:
                length, offset = first, offset + 1
            elif first < 224:
                length, offset = ((first - 192) << 8) + data[offset + 1] + 192, offset + 2
            elif first == 255:
                (length,), offset = struct.unpack(">I", bytes(data[offset + 1:offset + 5])), offset + 5
            else:
                raise AssertionError("partial body lengths are not used in keys")
        else:  # old format
            tag, kind, offset = (header >> 2) & 0x0F, header & 0x03, offset + 1
            size = {0: 1, 1: 2, 2: 4}[kind]
            length = int(binascii.hexlify(bytes(data[offset:offset + size])), 16)
            offset += size
        found.append((tag, bytes(data[offset:offset + length])))
        offset += length
    assert offset == len(data), "the last packet runs past the data"
    return found


def v4_fingerprint(body):
    return hashlib.sha1(b"\x99" + struct.pack(">H", len(body)) + body).hexdigest().upper()


@pytest.fixture(scope="module")
def key_packets():
    kind, data = dearmor(ALPINE_KEY)
    assert kind == "PUBLIC KEY BLOCK"
    return packets(data)


def test_the_armor_checksum_matches_the_data():
    kind, data = dearmor(ALPINE_KEY)  # raises on a CRC24 mismatch
    assert len(data) > 1000


def test_crc24_of_no_data_is_the_initial_value():
    assert crc24(b"") == 0xB704CE


def test_a_damaged_armor_is_noticed():
    lines = ALPINE_KEY.splitlines()
    line = lines[5]
    lines[5] = ("A" if line[0] != "A" else "B") + line[1:]
    with pytest.raises(AssertionError, match="CRC24"):
        dearmor("\n".join(lines))


def test_the_packets_are_a_public_key_with_its_user_id_and_subkey(key_packets):
    tags = [tag for tag, _body in key_packets]
    assert tags[0] == PUBLIC_KEY
    assert tags.count(PUBLIC_KEY) == 1
    assert USER_ID in tags and PUBLIC_SUBKEY in tags and SIGNATURE in tags
    user_ids = [body.decode("utf-8") for tag, body in key_packets if tag == USER_ID]
    assert user_ids == [_alpine_key.ALPINE_KEY_OWNER]


def test_the_primary_key_is_natanael_copas_rsa_4096_key_of_2014_12_10(key_packets):
    body = key_packets[0][1]
    version, created, algorithm = struct.unpack(">BIB", body[:6])
    assert version == 4
    assert algorithm == RSA
    assert datetime.datetime.fromtimestamp(created, datetime.timezone.utc).date() == datetime.date(2014, 12, 10)
    (bits,) = struct.unpack(">H", body[6:8])  # the modulus n, an MPI: its length in bits first
    assert bits == 4096


def test_the_pinned_fingerprint_is_the_shipped_keys(key_packets):
    assert v4_fingerprint(key_packets[0][1]) == ALPINE_FINGERPRINT
    assert ALPINE_FINGERPRINT == "0482D84022F52DF1C4E7CD43293ACD0907D9495A"


def test_the_long_key_id_is_the_fingerprints_tail(key_packets):
    # gpg names the key 293ACD0907D9495A: the last 64 bits of the v4 fingerprint.
    assert v4_fingerprint(key_packets[0][1])[-16:] == "293ACD0907D9495A"


def test_rootfs_pins_the_shipped_fingerprint():
    from ansible_collections.handmade.containers.plugins.module_utils import _rootfs
    assert _rootfs.ALPINE_FINGERPRINT == ALPINE_FINGERPRINT
    assert _rootfs.ALPINE_KEY is ALPINE_KEY
