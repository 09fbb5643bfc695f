# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Makes ``ansible_collections.handmade.containers`` this checkout for plain pytest.

Under ``ansible-test units`` (scripts/units.sh) Ansible's collection loader
already maps the FQCN to the staged copy, and nothing here changes that.
Run directly, as the fast inner loop (``python -m pytest tests/unit`` in the
development virtualenv, or ``make unit-fast``), the unit tests need a
collections path holding this checkout as ``ansible_collections/handmade/containers``:

* the checkout's own parents, when it already sits at such a path;
* else ``.build/collections``, the link scripts/common.sh makes
  (``ensure_collection_path``), made here when it is missing;
* else, when the checkout is not writable (a user who is not root in a
  checkout root made), the same link in a private temporary directory.

That path goes first on ``sys.path``, so a copy of the collection installed
elsewhere never stands in for the working tree; if one still does, the run
stops and says where it came from.

Every directory under tests/unit is a package (an empty ``__init__.py``), so
test modules with the same file name in two directories do not collide.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import atexit
import importlib
import importlib.util
import os
import shutil
import sys
import tempfile

import pytest

ROOT = os.path.realpath(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FQCN = "ansible_collections.handmade.containers"
FQCN_PARTS = FQCN.split(".")


def _plugins_location():
    """Where ``<FQCN>.plugins`` is imported from now, or None if it is not importable."""
    try:
        spec = importlib.util.find_spec(FQCN + ".plugins")
    except ImportError:
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    return os.path.realpath(locations[0]) if locations else None


def _link_checkout(collections):
    link = os.path.join(collections, *FQCN_PARTS)
    if os.path.realpath(link) == ROOT:
        return
    if not os.path.isdir(os.path.dirname(link)):
        os.makedirs(os.path.dirname(link))
    if os.path.islink(link):
        os.unlink(link)
    os.symlink(ROOT, link)


def _collections_path():
    parents, tail = os.path.split(ROOT)
    parts = []
    while tail and len(parts) < len(FQCN_PARTS):
        parts.insert(0, tail)
        parents, tail = os.path.split(parents)
    if parts == FQCN_PARTS:
        return os.path.join(parents, tail)
    collections = os.path.join(ROOT, ".build", "collections")
    try:
        _link_checkout(collections)
    except OSError:
        collections = tempfile.mkdtemp(prefix="handmade-unit-collections-")
        atexit.register(shutil.rmtree, collections, True)
        _link_checkout(collections)
    return collections


def _put_checkout_on_the_collections_path():
    if _plugins_location() == os.path.join(ROOT, "plugins"):
        return  # ansible-test's collection loader, or a path set by hand
    sys.path.insert(0, _collections_path())
    importlib.invalidate_caches()
    found = _plugins_location()
    if found != os.path.join(ROOT, "plugins"):
        pytest.exit("%s.plugins imports from %s, not from this checkout (%s): remove that copy from "
                    "sys.path, or run the unit tests through scripts/units.sh" % (FQCN, found, ROOT),
                    returncode=pytest.ExitCode.USAGE_ERROR)


_put_checkout_on_the_collections_path()
