#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rootfs_fetch
short_description: Download, verify and extract a root filesystem (Alpine minirootfs by default)
version_added: 0.1.0
description:
  - Puts a container root filesystem at O(dest) on the managed host; by default an Alpine Linux
    minirootfs, resolved through the mirror's C(latest-releases.yaml), or any tarball given by
    O(url) or O(src).
  - Every download is verified before it is used, against O(checksum), or for Alpine against the
    release's C(.sha256) sidecar, and optionally against its detached GPG signature with a pinned
    key fingerprint. Only O(checksum=skip) turns this off, and the result then says so.
  - Downloads are kept in O(cache_dir) under their checksum, so a second O(dest) from the same
    release does not download again.
  - Extraction refuses members that could write outside O(dest) (absolute paths, C(..),
    paths through symlinks, symlinks climbing out of the tree, hard links to outside) and device
    nodes unless O(allow_devices=true), naming the member. Owners (numeric), modes including
    setuid, symlinks, hard links and modification times are kept.
  - The new tree is extracted next to O(dest) and swapped in with one atomic rename, so O(dest)
    always holds either the old tree or the new one; a run killed at any point is cleaned up by the
    next one.
  - A stamp file C(.handmade-rootfs.json) in O(dest) records the source, version and checksums.
    When it matches, the module reports no change without downloading the tarball.
author:
  - handmade.containers maintainers (@handmade)
options:
  dest:
    description:
      - Directory that will hold the root filesystem, for example
        C(/var/lib/handmade-containers/rootfs/web).
      - It must not be C(/), a symlink or a file. An existing directory is replaced only when a
        previous run of this module installed it (it has a valid stamp), when it is empty, or when
        O(force=true).
    type: path
    required: true
  version:
    description:
      - The Alpine release (V(3.19.1)), branch (V(3.19), resolved to its newest release) or
        V(latest-stable).
      - With O(url) or O(src), a free-form label recorded in the stamp and returned.
      - Default V(3.19) for the Alpine layout.
    type: str
  arch:
    description:
      - Alpine architecture name (V(x86_64), V(aarch64), V(armv7), V(x86), ...).
      - Default is the host's C(uname -m) mapped to Alpine's names.
    type: str
  mirror:
    description:
      - Base URL of an Alpine mirror with the CDN's layout
        (C(<mirror>/v3.19/releases/x86_64/alpine-minirootfs-3.19.1-x86_64.tar.gz)).
      - Default V(https://dl-cdn.alpinelinux.org/alpine).
    type: str
  url:
    description:
      - Any root filesystem tarball (gzip, xz, bzip2 or plain tar) instead of an Alpine release.
      - Needs O(checksum).
    type: str
  src:
    description:
      - A tarball already on the managed host; nothing is downloaded.
      - Verified when O(checksum) is given; re-extracted when the file changes.
    type: path
  checksum:
    description:
      - V(sha256:<hex>) or V(sha512:<hex>); V(sha256:<URL>) or V(sha512:<URL>) of a checksum file
        in C(sha256sum) format that names the tarball; or V(skip) to use the download unverified.
      - For an Alpine release the default is the release's published checksum (the index or the
        C(.sha256) sidecar).
    type: str
  verify_signature:
    description:
      - Check the tarball's detached signature (C(<tarball URL>.asc), or C(<src>.asc)) with gpg,
        in a throwaway GNUPGHOME (the host's keyrings are never read or changed), against O(gpg_key)
        and O(gpg_fingerprint).
      - Needs C(gpg) on the managed host.
      - A download that cannot be verified fails, and the message names the fix for each case (no
        C(.asc) on the mirror, no C(gpg) on the host, a signature by another key than the pinned
        one). V(false) accepts the download on its checksum alone.
      - The role C(handmade.containers.container) turns this on by default.
    type: bool
    default: false
  gpg_key:
    description:
      - Path on the managed host or URL of the armored public key that signs the release.
      - Default is Alpine's release key (Natanael Copa's RSA 4096 key of 2014-12-10, as published at
        U(https://alpinelinux.org/keys/ncopa.asc)), which ships with the collection, so nothing is
        downloaded for it. A mirror signed with another key (a local test mirror) needs its own key
        here and in O(gpg_fingerprint).
    type: str
  gpg_fingerprint:
    description:
      - Fingerprint of the only key whose signature is accepted (spaces allowed).
      - Default is Alpine's release key, V(0482 D840 22F5 2DF1 C4E7 CD43 293A CD09 07D9 495A).
    type: str
  cache_dir:
    description:
      - Where downloads are kept, named by checksum (C(sha256-<hex>), C(sha512-<hex>)).
    type: path
    default: /var/cache/handmade-containers
  force:
    description:
      - Extract again even when O(dest) is up to date, and replace a non-empty O(dest) that this
        module did not install.
    type: bool
    default: false
  allow_devices:
    description:
      - Create the character and block device nodes the tarball holds. Off by default, since a root
        filesystem does not need them (the runtime gives each container its own C(/dev)), and a
        device node is a way into the host's hardware.
    type: bool
    default: false
  validate_certs:
    description:
      - Verify TLS certificates of HTTPS downloads. Only turn off for a mirror you control.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each network operation, at least V(1). Transient failures (HTTP 5xx, timeouts,
        dropped connections) are retried twice.
    type: int
    default: 30
notes:
  - Downloads go through Ansible's URL layer, so the usual C(http_proxy), C(https_proxy) and
    C(no_proxy) environment variables apply.
  - Owners are restored numerically (as C(tar --numeric-owner)); the users of an image are those of
    its own C(/etc/passwd), not the host's. As root only; other users get files they own.
  - Absolute symlinks (Alpine's C(/bin/sh -> /bin/busybox)) are kept as they are; they point into
    the container once its root is pivoted there. Extraction never follows a link it wrote.
  - Extended attributes and file capabilities in the tarball are not restored.
  - O(dest) is refused while a running process has it as its root directory (a container started
    from it); replacing it would take the files from under that process.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  action_group:
    membership:
      - handmade.containers.containers
  check_mode:
    support: partial
    details:
      - Compares the stamp in O(dest) with the wanted tarball's checksum, downloading at most what names it (the
        release index, the C(.sha256) sidecar, a checksum file at a URL), never the tarball, and writes nothing.
      - Without the tarball it cannot tell whether the run would pass the checksum, the signature and the member
        checks, or find O(dest) in use by a running container; RV(size) and RV(files) are null when it would
        change.
  diff_mode:
    support: full
    details: The stamp (source, version, checksums, signature) before and after.
  platform:
    platforms: linux
    details:
      - Linux. O(dest) is swapped in by C(renameat2) with C(RENAME_EXCHANGE) (renamed aside where the kernel or the
        filesystem lacks it), and the check for processes running from O(dest) reads C(/proc).
      - Python 3.8 or later, standard library only; C(gpg) for signatures.
seealso:
  - module: handmade.containers.cgroup
  - module: handmade.containers.ns_exec
  - name: Alpine Linux downloads
    description: The minirootfs releases, their checksums and signatures.
    link: https://alpinelinux.org/downloads/
"""

EXAMPLES = r"""
- name: Newest Alpine 3.19 minirootfs for this host's architecture, checked against its sidecar
  handmade.containers.rootfs_fetch:
    dest: /var/lib/handmade-containers/rootfs/web

- name: A pinned release, signature checked against Alpine's release key (shipped with the collection)
  handmade.containers.rootfs_fetch:
    dest: /var/lib/handmade-containers/rootfs/web
    version: 3.19.1
    verify_signature: true

- name: From a local mirror (make mirror prints these values for the offline test mirror)
  handmade.containers.rootfs_fetch:
    dest: /var/lib/handmade-containers/rootfs/web
    version: latest-stable
    mirror: http://127.0.0.1:8080
    verify_signature: true
    gpg_key: /var/cache/handmade-containers-dev/mirror/mirror-key.asc
    gpg_fingerprint: 402E56090D02F4F195D56AFA3D5BF6FE5A18849E

- name: Any tarball, pinned by checksum
  handmade.containers.rootfs_fetch:
    dest: /var/lib/handmade-containers/rootfs/tools
    url: https://example.org/images/tools-rootfs.tar.xz
    checksum: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    version: tools-2024.1

- name: A tarball already copied to the host
  handmade.containers.rootfs_fetch:
    dest: /var/lib/handmade-containers/rootfs/app
    src: /srv/images/app-rootfs.tar.gz
    checksum: sha512:https://example.org/images/SHA512SUMS
"""

RETURN = r"""
dest:
  description: The directory that holds the root filesystem (parents resolved).
  returned: always
  type: str
  sample: /var/lib/handmade-containers/rootfs/web
version:
  description: The release installed (a branch resolved to its release), or the O(version) label.
  returned: always
  type: str
  sample: 3.19.1
url:
  description: The tarball's URL; null for O(src).
  returned: always
  type: str
  sample: https://dl-cdn.alpinelinux.org/alpine/v3.19/releases/x86_64/alpine-minirootfs-3.19.1-x86_64.tar.gz
checksum:
  description:
    - V(sha256:<hex>) of the tarball in O(dest). In check mode, the expected checksum when known.
  returned: always
  type: str
  sample: sha256:ca359a3c9dee969764ca1a30a369b6b16e5b88807362a0e8193ce8a0585e76fc
checksum_verified:
  description: Whether the tarball was checked against an expected checksum (false with O(checksum=skip), or O(src) without one).
  returned: always
  type: bool
  sample: true
signature_verified:
  description: Whether the tarball's GPG signature was checked against the pinned key.
  returned: always
  type: bool
  sample: false
size:
  description: Size of the tarball in bytes; null in check mode when it would change.
  returned: always
  type: int
  sample: 3400218
cached:
  description: True when no tarball was downloaded (up to date, or taken from O(cache_dir)).
  returned: always
  type: bool
  sample: false
files:
  description: Number of entries extracted (files, directories, links); null in check mode when it would change.
  returned: always
  type: int
  sample: 527
elapsed:
  description: Seconds the module took.
  returned: always
  type: float
  sample: 0.412
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.handmade.containers.plugins.module_utils._rootfs import RootfsError, fetch_rootfs, source_options


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            force=dict(type="bool", default=False),
            **source_options()
        ),
        mutually_exclusive=[("url", "src"), ("url", "mirror"), ("src", "mirror"), ("src", "arch"), ("url", "arch")],
        supports_check_mode=True,
    )
    # AnsibleModule adds stat() fields of a returned "dest" (size, mode, owner,
    # ...); here "size" is the tarball's, so keep the result as built.
    module.add_path_info = lambda result: result
    try:
        result = fetch_rootfs(module.params, check_mode=module.check_mode)
    except RootfsError as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop("diff")
    if result["checksum_verified"] is False and result["url"]:
        module.warn("%s was used without checksum verification (checksum: skip)" % result["url"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
