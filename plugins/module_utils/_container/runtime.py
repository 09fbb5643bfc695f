# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's runtime code on the managed host, for what runs after the module is gone.

A module's files live only as long as its task (Ansible deletes them), but
a container's supervisor restarts the container long after, and the boot
unit starts containers again after a reboot, with no Ansible at all. Both
need the launch code: this file writes the collection's module_utils, as
the module has them loaded, to
``/var/lib/handmade-containers/runtime/<digest>/``, where ``<digest>`` is
the sha256 of their sources. One directory per collection version: a host
that upgrades the collection keeps the old one for the supervisors that
still run from it, and never writes the same version twice.

The directory is made complete under a temporary name and renamed into
place, so it is there whole or not at all. Its programs run as ``python3
-I -S`` (isolated: no environment, no user site, no site packages), with
the directory first on ``sys.path`` (``command``).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import errno
import hashlib
import os
import pkgutil
import shutil
import sys

from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError

RUNTIME_ROOT = "/var/lib/handmade-containers/runtime"
PACKAGE = "ansible_collections.handmade.containers.plugins.module_utils"


def _load_everything():
    """Import what runs from the runtime directory, and every module beside it.

    The imports are written out (not computed) so that Ansible, which
    ships a module with the module_utils its imports name, ships these too.
    """
    from ansible_collections.handmade.containers.plugins.module_utils._container import (  # noqa: F401
        boot, compose, probe, relaunch, supervisor)
    package = sys.modules[PACKAGE]
    for _finder, name, _is_package in pkgutil.walk_packages(list(package.__path__), PACKAGE + "."):
        if name not in sys.modules:
            __import__(name)


def _sources():
    """(relative path, source bytes) of every module of the collection's module_utils."""
    _load_everything()
    found = {}
    for name, module in list(sys.modules.items()):
        if not (name == PACKAGE or name.startswith(PACKAGE + ".")) or module is None:
            continue
        loader = getattr(module, "__loader__", None)
        if loader is None or not hasattr(loader, "get_source"):
            continue  # a namespace package: a directory is enough
        try:
            source = loader.get_source(name)
        except ImportError:
            source = None
        if source is None:
            raise ContainerError("cannot read the source of %s to install the runtime: is the collection "
                                 "installed from source files?" % name)
        parts = name.split(".")
        is_package = hasattr(module, "__path__")
        relative = os.path.join(*(parts + ["__init__.py"] if is_package else parts[:-1] + [parts[-1] + ".py"]))
        found[relative] = source.encode("utf-8")
    return sorted(found.items())


def digest_of(sources):
    hasher = hashlib.sha256()
    for relative, source in sources:
        hasher.update(relative.encode("utf-8") + b"\0" + hashlib.sha256(source).digest())
    return hasher.hexdigest()[:24]


# root -> the path install() found or made: this process's code does not change while it runs.
_INSTALLED = {}


def install(root=RUNTIME_ROOT):
    """The runtime directory of the code this process runs, made if missing; returns its path."""
    if root in _INSTALLED and os.path.isdir(_INSTALLED[root]):
        return _INSTALLED[root]
    sources = _sources()
    path = os.path.join(root, digest_of(sources))
    if not os.path.isdir(os.path.join(path, "ansible_collections")):
        _write(root, path, sources)
    _INSTALLED[root] = path
    return path


def _write(root, path, sources):
    """Make ``path`` whole under a temporary name, then rename it into place."""
    try:
        os.makedirs(root, 0o700, exist_ok=True)
        temporary = os.path.join(root, ".%s.tmp" % binascii.hexlify(os.urandom(6)).decode())
        os.mkdir(temporary, 0o700)
    except OSError as exc:
        raise ContainerError("cannot create the runtime directory in %s: %s (is /var/lib writable by root?)"
                             % (root, exc))
    try:
        for relative, source in sources:
            target = os.path.join(temporary, relative)
            os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
            with open(target, "wb") as handle:
                handle.write(source)
        try:
            os.rename(temporary, path)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            shutil.rmtree(temporary)  # another run installed the same version meanwhile
    except OSError as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        raise ContainerError("cannot write the runtime directory %s: %s (is /var/lib full?)" % (path, exc))


def command(path, module, function="main", python=None):
    """argv that runs ``module.function(sys.argv[1:])`` from the runtime directory ``path``."""
    bootstrap = ("import sys; sys.path.insert(0, %r); from %s.%s import %s; %s(sys.argv[1:])"
                 % (path, PACKAGE, module, function, function))
    return [python or sys.executable, "-I", "-S", "-c", bootstrap]
