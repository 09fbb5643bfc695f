# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._capabilities import (
    CAPABILITY_NAMES,
    CapabilityError,
    DEFAULT_CAPABILITIES,
    capability_mask,
    last_capability,
    normalize_capability,
)


@pytest.mark.parametrize("name, expected", [
    ("NET_RAW", "NET_RAW"), ("cap_net_raw", "NET_RAW"), (" Cap_Chown ", "CHOWN"),
])
def test_normalize_accepts_both_spellings(name, expected):
    assert normalize_capability(name) == expected


def test_unknown_capability_is_refused_with_the_known_ones():
    with pytest.raises(CapabilityError) as caught:
        normalize_capability("CAP_FLY")
    assert "CAP_FLY" in str(caught.value) and "NET_BIND_SERVICE" in str(caught.value)


def test_docker_default_mask_is_the_one_docker_shows():
    # `docker run --rm alpine grep CapEff /proc/self/status` prints this.
    assert capability_mask(DEFAULT_CAPABILITIES) == 0xa80425fb
    assert len(DEFAULT_CAPABILITIES) == 14


def test_mask_and_names_round_trip():
    names = ["CHOWN", "SYS_ADMIN", "CHECKPOINT_RESTORE"]
    mask = capability_mask(names)
    assert mask == (1 << 0) | (1 << 21) | (1 << 40)


def test_numbers_follow_the_kernel_header():
    assert CAPABILITY_NAMES.index("SETPCAP") == 8
    assert CAPABILITY_NAMES.index("MKNOD") == 27
    assert CAPABILITY_NAMES.index("BPF") == 39


def test_last_capability_reads_the_kernel_file(tmp_path):
    proc_file = tmp_path / "cap_last_cap"
    proc_file.write_text("37\n")
    assert last_capability(str(proc_file)) == 37
    assert last_capability(str(tmp_path / "missing")) == len(CAPABILITY_NAMES) - 1
