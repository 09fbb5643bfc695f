# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest


@pytest.fixture
def root(tmp_path):
    """A tiny rootfs tree: /bin/busybox, /bin/sh -> /bin/busybox, /etc/passwd."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "var").mkdir()
    busybox = tmp_path / "bin" / "busybox"
    busybox.write_text("")
    busybox.chmod(0o755)
    os.symlink("/bin/busybox", str(tmp_path / "bin" / "sh"))
    os.symlink("../bin", str(tmp_path / "var" / "tools"))
    (tmp_path / "etc" / "readme").write_text("not a program")
    (tmp_path / "etc" / "readme").chmod(0o644)
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nweb:x:1000:1001::/:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    return str(tmp_path)
