# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The static probe programs of the integration tests: built once, or taken prebuilt.

Some attacks a test makes from inside a container are system calls busybox
cannot make (keyctl, add_key, socket(AF_VSOCK), userfaultfd, an i386
``int $0x80``). Each is a small C file here, ``NAME.c``, built with
``gcc -static -O2`` into a program that runs in any rootfs.

``probe_program(NAME)`` gives the path of a program for the current source:

* with ``HANDMADE_TEST_PROBE_DIR`` set, ``$HANDMADE_TEST_PROBE_DIR/NAME``,
  prebuilt (machines without gcc, such as the fleet VMs). Its sidecar
  ``NAME.sha256`` must name the hash of the source it was built from, so a
  stale program fails the test instead of probing something else;
* otherwise it builds with gcc into the development cache,
  ``$HANDMADE_DEV_CACHE/probes/<source hash>/NAME``
  (``/var/cache/handmade-containers-dev`` by default), once per source.

Neither available raises ProbeUnavailable, whose message says what to do;
the tests turn it into a failure, never a skip.

To prebuild for another machine (same architecture)::

    python3 tests/integration/probes/build_probes.py OUTDIR

builds every probe into OUTDIR with its sidecar; copy OUTDIR there and set
``HANDMADE_TEST_PROBE_DIR`` to it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

PROBES_DIR = os.path.dirname(os.path.abspath(__file__))
PROBE_DIR_VARIABLE = "HANDMADE_TEST_PROBE_DIR"
DEV_CACHE = os.environ.get("HANDMADE_DEV_CACHE", "/var/cache/handmade-containers-dev")
CFLAGS = ("-static", "-O2", "-Wall", "-Wextra")
# How to run this file, from the checkout's top directory.
BUILD_COMMAND = "python3 tests/integration/probes/build_probes.py"


class ProbeUnavailable(Exception):
    """No program for a probe: neither prebuilt nor buildable here. The message says what to do."""


def names():
    """Every probe of this directory (the C files' names without .c)."""
    return sorted(entry[:-2] for entry in os.listdir(PROBES_DIR) if entry.endswith(".c"))


def source_path(name):
    return os.path.join(PROBES_DIR, name + ".c")


def source_hash(name):
    """sha256 of the probe's source and of the flags it is built with."""
    digest = hashlib.sha256()
    with open(source_path(name), "rb") as handle:
        digest.update(handle.read())
    digest.update(" ".join(CFLAGS).encode())
    return digest.hexdigest()


def build(name, out_dir):
    """Build probe ``name`` into ``out_dir`` (with its sidecar); returns the program's path."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise ProbeUnavailable("gcc was not found, and it builds the probe %s" % name)
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir, 0o755)
    program = os.path.join(out_dir, name)
    # Built under another name and renamed: a concurrent run never sees half a program.
    handle, partial = tempfile.mkstemp(prefix=".%s." % name, dir=out_dir)
    os.close(handle)
    try:
        proc = subprocess.run([gcc] + list(CFLAGS) + ["-o", partial, source_path(name)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            raise ProbeUnavailable("gcc -static could not build %s (rc=%d): %s\nA static build needs the C "
                                   "library's static archive (Debian: apt-get install gcc libc6-dev)"
                                   % (source_path(name), proc.returncode,
                                      proc.stdout.decode(errors="replace").strip()))
        os.chmod(partial, 0o755)
        os.rename(partial, program)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    with open(program + ".sha256", "w") as sidecar:
        sidecar.write(source_hash(name) + "\n")
    return program


def probe_program(name):
    """The path of a program built from the current source of probe ``name``; raises ProbeUnavailable."""
    prebuilt_dir = os.environ.get(PROBE_DIR_VARIABLE)
    if prebuilt_dir:
        program = os.path.join(prebuilt_dir, name)
        if not os.access(program, os.X_OK):
            raise ProbeUnavailable(
                "%s=%s holds no executable %s: build it where gcc is (%s DIR, in the checkout) and copy DIR "
                "there" % (PROBE_DIR_VARIABLE, prebuilt_dir, name, BUILD_COMMAND))
        try:
            with open(program + ".sha256") as sidecar:
                built_from = sidecar.read().strip()
        except OSError:
            built_from = None
        if built_from != source_hash(name):
            raise ProbeUnavailable(
                "%s in %s=%s was not built from the current %s (its %s.sha256 says %s): build it again "
                "(%s DIR, in the checkout) and copy DIR there"
                % (name, PROBE_DIR_VARIABLE, prebuilt_dir, source_path(name), name, built_from, BUILD_COMMAND))
        return program
    if shutil.which("gcc") is None:
        raise ProbeUnavailable(
            "the probe %s needs gcc with a static libc (Debian: apt-get install gcc libc6-dev), or a prebuilt "
            "program: build it where gcc is (%s DIR, in the checkout), copy DIR to this machine and set %s=DIR"
            % (name, BUILD_COMMAND, PROBE_DIR_VARIABLE))
    cached = os.path.join(DEV_CACHE, "probes", source_hash(name)[:16])
    program = os.path.join(cached, name)
    if os.access(program, os.X_OK):
        return program
    return build(name, cached)


def main(argv):
    if len(argv) != 2:
        print("usage: %s OUTDIR  (builds %s into OUTDIR)" % (argv[0], ", ".join(names())), file=sys.stderr)
        return 2
    try:
        for name in names():
            print(build(name, argv[1]))
    except ProbeUnavailable as exc:
        print("build_probes: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
