# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The device table and the ``devices`` option: _devices."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat
import types

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._devices import (
    DEFAULT_RULES,
    DEVICES,
    MAX_MAJOR,
    MAX_MINOR,
    DeviceError,
    DeviceNode,
    DeviceRule,
    allowed_rules,
    merge_rules,
    parse_device,
    parse_devices,
)

# The host nodes the parsing tests see, as os.stat would report them.
HOST_NODES = {
    "/dev/fuse": (stat.S_IFCHR | 0o666, 10, 229, 0, 0),
    "/dev/net/tun": (stat.S_IFCHR | 0o666, 10, 200, 0, 0),
    "/dev/loop7": (stat.S_IFBLK | 0o660, 7, 7, 0, 6),
    "/dev/sdb": (stat.S_IFBLK | 0o660, 8, 16, 0, 6),
    "/dev/kvm": (stat.S_IFCHR | 0o660, 10, 232, 0, 108),
    "/etc/hostname": (stat.S_IFREG | 0o644, 0, 0, 0, 0),
    "/dev/shm": (stat.S_IFDIR | 0o1777, 0, 0, 0, 0),
}


def fake_stat(path):
    if path not in HOST_NODES:
        raise OSError(2, "No such file or directory")
    mode, major, minor, uid, gid = HOST_NODES[path]
    return types.SimpleNamespace(st_mode=mode, st_rdev=os.makedev(major, minor), st_uid=uid, st_gid=gid)


def parse(entries):
    return parse_devices(entries, lookup=fake_stat)


def lines(rules):
    return [rule.line() for rule in rules]


# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------

def test_every_container_gets_the_six_harmless_character_devices():
    assert DEVICES == (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7),
                       ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))


def test_the_default_rules_are_dockers_on_runc():
    assert lines(DEFAULT_RULES) == [
        "c *:* m", "b *:* m",
        "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
        "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
    ]


def test_every_node_of_dev_may_be_read_written_and_made():
    allowed = set((rule.major, rule.minor) for rule in DEFAULT_RULES if rule.type == "c" and rule.access == "rwm")
    for name, major, minor in DEVICES:
        assert (major, minor) in allowed, name


def test_the_defaults_open_no_disk_no_kmsg_no_fuse():
    opened = [rule for rule in DEFAULT_RULES if "r" in rule.access or "w" in rule.access]
    assert all(rule.type == "c" for rule in opened)  # no block device at all
    assert not [rule for rule in opened if rule.major == 1 and rule.minor == 11]  # /dev/kmsg
    assert not [rule for rule in opened if rule.major == 10 and rule.minor == 229]  # /dev/fuse
    assert all(rule.major is not None for rule in opened)


def test_allowed_rules_are_the_defaults_then_the_extra_ones_merged():
    extra = [DeviceRule("b", 7, 7, "rw"), DeviceRule("c", 1, 3, "r")]
    assert lines(allowed_rules(extra)) == lines(DEFAULT_RULES) + ["b 7:7 rw"]
    assert lines(allowed_rules()) == lines(DEFAULT_RULES)


def test_merge_joins_the_access_of_one_key_in_first_seen_order():
    rules = [DeviceRule("b", 7, 0, "w"), DeviceRule("c", None, None, "m"), DeviceRule("b", 7, 0, "mr"),
             DeviceRule("b", 7, None, "r")]
    assert lines(merge_rules(rules)) == ["b 7:0 rwm", "c *:* m", "b 7:* r"]


def test_rules_compare_by_value():
    assert DeviceRule("c", 1, 3, "rwm") == DeviceRule("c", 1, 3, "rwm")
    assert DeviceRule("c", 1, 3, "rwm") != DeviceRule("c", 1, 3, "rw")
    assert len(set([DeviceRule("c", 1, 3, "rwm"), DeviceRule("c", 1, 3, "rwm")])) == 1
    assert repr(DeviceRule("c", 136, None, "rwm")) == "DeviceRule('c 136:* rwm')"


# --------------------------------------------------------------------------
# The option, as strings
# --------------------------------------------------------------------------

def test_a_host_path_passes_the_node_through_at_the_same_path_with_rwm():
    rules, nodes = parse(["/dev/fuse", "/dev/net/tun"])
    assert lines(rules) == ["c 10:229 rwm", "c 10:200 rwm"]
    assert nodes == [DeviceNode("/dev/fuse", "c", 10, 229, 0o666, 0, 0),
                     DeviceNode("/dev/net/tun", "c", 10, 200, 0o666, 0, 0)]


def test_the_node_keeps_the_host_nodes_mode_and_owner():
    _rules, nodes = parse(["/dev/loop7"])
    assert nodes == [DeviceNode("/dev/loop7", "b", 7, 7, 0o660, 0, 6)]
    assert nodes[0].file_type == stat.S_IFBLK


def test_host_path_and_access():
    rules, nodes = parse(["/dev/loop7:rw"])
    assert lines(rules) == ["b 7:7 rw"]
    assert [node.path for node in nodes] == ["/dev/loop7"]


def test_host_path_container_path_and_access():
    rules, nodes = parse(["/dev/sdb:/dev/xvdb:rwm", "/dev/kvm:/dev/kvm2"])
    assert lines(rules) == ["b 8:16 rwm", "c 10:232 rwm"]
    assert [(node.path, node.type, node.major, node.minor) for node in nodes] == [
        ("/dev/xvdb", "b", 8, 16), ("/dev/kvm2", "c", 10, 232)]


def test_access_letters_come_out_in_canonical_order():
    rules, _nodes = parse(["/dev/loop7:mr", "/dev/sdb:/dev/xvdb:wmr"])
    assert lines(rules) == ["b 7:7 rm", "b 8:16 rwm"]


def test_nothing_or_an_empty_list_adds_nothing():
    assert parse(None) == ([], [])
    assert parse([]) == ([], [])


def test_a_real_host_node_is_looked_up_with_stat():
    rules, nodes = parse_devices(["/dev/null:/dev/null2:rw"])
    assert lines(rules) == ["c 1:3 rw"]
    assert (nodes[0].path, nodes[0].type, nodes[0].major, nodes[0].minor) == ("/dev/null2", "c", 1, 3)


# --------------------------------------------------------------------------
# The option, as dicts
# --------------------------------------------------------------------------

def test_a_dict_with_path_is_like_the_string():
    rules, nodes = parse([{"path": "/dev/sdb", "container_path": "/dev/xvdb", "access": "r"}])
    assert lines(rules) == ["b 8:16 r"]
    assert nodes == [DeviceNode("/dev/xvdb", "b", 8, 16, 0o660, 0, 6)]


def test_a_dict_with_numbers_is_a_rule_alone():
    rules, nodes = parse([{"type": "c", "major": 136, "minor": "*", "access": "rw"},
                          {"type": "b", "major": "8"},
                          {"type": "a"}])
    assert lines(rules) == ["c 136:* rw", "b 8:* rwm", "a *:* rwm"]
    assert nodes == []


def test_a_dict_with_numbers_and_a_container_path_also_makes_the_node():
    rules, nodes = parse([{"type": "c", "major": 10, "minor": 200, "container_path": "/dev/net/tun"}])
    assert lines(rules) == ["c 10:200 rwm"]
    assert nodes == [DeviceNode("/dev/net/tun", "c", 10, 200, 0o666, 0, 0)]


def test_the_largest_numbers_the_kernel_holds_are_accepted():
    rules, _nodes = parse([{"type": "c", "major": MAX_MAJOR, "minor": MAX_MINOR, "access": "m"}])
    assert lines(rules) == ["c 4095:1048575 m"]


# --------------------------------------------------------------------------
# Refusals: one error type, naming the option, the value and the fix
# --------------------------------------------------------------------------

@pytest.mark.parametrize("entry, says", [
    ("/dev/nonexistent", "does not exist on this host"),
    ("/etc/hostname", "is not a device node but a regular file"),
    ("/dev/shm", "is not a device node but a directory"),
    ("dev/fuse", "is not absolute"),
    ("/dev/fuse:rx", "made of the letters r (read), w (write) and m (mknod)"),
    ("/dev/fuse:rr", "each at most once"),
    ("/dev/fuse:RW", "made of the letters"),
    ("/dev/fuse:/dev/fuse:", "made of the letters"),
    ("/dev/fuse:/dev/f:rw:x", "is not HOST_PATH[:CONTAINER_PATH][:ACCESS]"),
    (":/dev/fuse", "is not HOST_PATH[:CONTAINER_PATH][:ACCESS]"),
    ("/dev/sdb:xvdb:rw", "container path 'xvdb'"),
    ("/dev/sdb:/dev/../etc/x", "without '..'"),
    ({"path": "/dev/fuse", "acess": "rw"}, "unknown keys 'acess'"),
    ({"path": "/dev/fuse", "major": 10}, "gives both path and major"),
    ({"container_path": "/dev/x"}, "names no device"),
    ({"type": "x", "major": 1, "minor": 1}, "is not a device type: use c (character), b (block) or a (both)"),
    ({"type": "c", "major": MAX_MAJOR + 1, "minor": 0}, "major 4096"),
    ({"type": "c", "major": -1, "minor": 0}, "major -1"),
    ({"type": "c", "major": True, "minor": 0}, "major True"),
    ({"type": "c", "major": "ten", "minor": 0}, "major 'ten'"),
    ({"type": "c", "major": 1, "minor": MAX_MINOR + 1}, "minor 1048576"),
    ({"type": "a", "major": 1}, "type a means every device"),
    ({"type": "c", "major": 136, "container_path": "/dev/pts/x"}, "does not name one device"),
    ({"type": "c", "major": 1, "minor": 3, "access": ""}, "access ''"),
    (7, "is neither a string"),
])
def test_bad_entries_raise_device_error(entry, says):
    with pytest.raises(DeviceError) as caught:
        parse([entry])
    message = str(caught.value)
    assert message.startswith("devices: "), message
    assert says in message, message
    assert repr(entry) in message or str(entry) in message, message
    assert any(fix in message for fix in ("use ", "give ", "e.g.", "write ")), message  # the fix


def test_a_missing_node_names_the_path_and_how_to_find_one():
    with pytest.raises(DeviceError, match=r"/dev/nonexistent .*ls -l /dev"):
        parse(["/dev/nonexistent"])


def test_a_real_regular_file_is_refused(tmp_path):
    regular = tmp_path / "disk.img"
    regular.write_bytes(b"")
    with pytest.raises(DeviceError, match="not a device node but a regular file"):
        parse_devices([str(regular)])


def test_the_option_must_be_a_list():
    with pytest.raises(DeviceError, match="devices must be a list"):
        parse("/dev/fuse")


def test_two_entries_may_not_make_the_same_node():
    with pytest.raises(DeviceError, match="both make /dev/xvdb"):
        parse(["/dev/sdb:/dev/xvdb", "/dev/loop7:/dev/xvdb"])


def test_parse_device_returns_one_rule_and_its_node():
    rule, node = parse_device("/dev/loop7:rw", lookup=fake_stat)
    assert rule == DeviceRule("b", 7, 7, "rw")
    assert node.path == "/dev/loop7"
    assert parse_device({"type": "b", "major": 7}, lookup=fake_stat) == (DeviceRule("b", 7, None, "rwm"), None)
