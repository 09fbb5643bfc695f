# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's documented attributes say what its code does.

Generic over plugins/modules/*.py, so a new module is held to the same rules:

* it extends ansible-core's ``action_common_attributes`` fragment and
  documents ``check_mode``, ``diff_mode`` and ``platform`` with a support level
  (and, where that is ``partial``, details saying what is left out);
* its ``platform`` lists ``linux``: every module here drives Linux kernel
  interfaces on the managed host (README: managed hosts are Linux);
* its ``check_mode`` support is ``none`` exactly when its AnsibleModule is not
  built with ``supports_check_mode=True``;
* its ``action_group`` membership and meta/runtime.yml's ``action_groups``
  agree both ways.

The module files are read, not imported, so their documentation is checked
as ansible-doc reads it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import glob
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
MODULES_DIR = os.path.join(ROOT, "plugins", "modules")
COLLECTION = "handmade.containers"
SUPPORT_LEVELS = ("full", "partial", "none")


def module_paths():
    return sorted(path for path in glob.glob(os.path.join(MODULES_DIR, "*.py"))
                  if not os.path.basename(path).startswith("_"))


def module_name(path):
    return os.path.splitext(os.path.basename(path))[0]


def read_module(path):
    """(source, DOCUMENTATION parsed as YAML) of one module file."""
    with open(path) as handle:
        source = handle.read()
    for node in ast.parse(source, path).body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "DOCUMENTATION"
                                                for target in node.targets):
            return source, yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError("%s has no DOCUMENTATION" % path)


def action_groups():
    """meta/runtime.yml's action_groups: group name -> module short names."""
    with open(os.path.join(ROOT, "meta", "runtime.yml")) as handle:
        runtime = yaml.safe_load(handle) or {}
    groups = {}
    for group, members in (runtime.get("action_groups") or {}).items():
        # A group may also include others ({"metadata": {"extend_group": [...]}}): only names count here.
        groups[group] = [member.split(".")[-1] for member in members if isinstance(member, str)]
    return groups


MODULES = [pytest.param(path, id=module_name(path)) for path in module_paths()]


def test_there_are_modules_to_check():
    assert len(MODULES) >= 3, "no modules found in %s" % MODULES_DIR


@pytest.mark.parametrize("path", MODULES)
def test_the_common_attributes_fragment_is_used(path):
    doc = read_module(path)[1]
    fragments = doc.get("extends_documentation_fragment") or []
    if isinstance(fragments, str):
        fragments = [fragments]
    assert "ansible.builtin.action_common_attributes" in fragments, fragments
    if "action_group" in (doc.get("attributes") or {}):
        assert "ansible.builtin.action_common_attributes.actiongroups" in fragments, fragments


@pytest.mark.parametrize("path", MODULES)
def test_check_mode_diff_mode_and_platform_are_documented(path):
    attributes = read_module(path)[1].get("attributes") or {}
    for name in ("check_mode", "diff_mode", "platform"):
        assert name in attributes, "%s: no %s attribute" % (module_name(path), name)
    for name in ("check_mode", "diff_mode"):
        support = attributes[name].get("support")
        assert support in SUPPORT_LEVELS, "%s: %s support is %r" % (module_name(path), name, support)
        if support == "partial":
            assert attributes[name].get("details"), "%s: partial %s without details of what is left out" % (
                module_name(path), name)


@pytest.mark.parametrize("path", MODULES)
def test_platform_lists_linux(path):
    platforms = read_module(path)[1]["attributes"]["platform"].get("platforms")
    if isinstance(platforms, str):
        platforms = [part.strip() for part in platforms.split(",")]
    assert "linux" in (platforms or []), "%s: platforms %r" % (module_name(path), platforms)


@pytest.mark.parametrize("path", MODULES)
def test_check_mode_support_matches_the_code(path):
    source, doc = read_module(path)
    supports = re.search(r"\bsupports_check_mode\s*=\s*True\b", source) is not None
    support = doc["attributes"]["check_mode"]["support"]
    if supports:
        assert support in ("full", "partial"), "%s sets supports_check_mode=True, its docs say %r" % (
            module_name(path), support)
    else:
        assert support == "none", "%s does not support check mode, its docs say %r" % (module_name(path), support)


@pytest.mark.parametrize("path", MODULES)
def test_action_group_membership_matches_meta_runtime(path):
    name = module_name(path)
    attributes = read_module(path)[1].get("attributes") or {}
    documented = set((attributes.get("action_group") or {}).get("membership") or [])
    listed = set("%s.%s" % (COLLECTION, group) for group, members in action_groups().items() if name in members)
    assert documented == listed, (
        "%s: its docs (attributes.action_group.membership) name the groups %s, meta/runtime.yml's action_groups "
        "list it in %s: make the two say the same" % (name, sorted(documented), sorted(listed)))


def test_action_groups_name_existing_modules():
    names = set(module_name(path) for path in module_paths())
    for group, members in action_groups().items():
        assert set(members) <= names, "action group %s lists %s, which plugins/modules lacks" % (
            group, sorted(set(members) - names))
