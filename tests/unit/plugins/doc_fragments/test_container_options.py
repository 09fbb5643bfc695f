# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container_options doc fragment says what the option table says.

Run as a script, prints the fragment's YAML as the table gives it, to paste
into plugins/doc_fragments/container_options.py after changing a row.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import yaml

from ansible_collections.handmade.containers.plugins.doc_fragments.container_options import ModuleDocFragment
from ansible_collections.handmade.containers.plugins.module_utils._container import options
from ansible_collections.handmade.containers.plugins.module_utils._cgroup import limits
from ansible_collections.handmade.containers.plugins.modules import container, ns_exec


def render():
    class IndentedDumper(yaml.SafeDumper):
        def increase_indent(self, flow=False, indentless=False):
            return yaml.SafeDumper.increase_indent(self, flow, False)
    return yaml.dump({"options": options.documentation()}, Dumper=IndentedDumper, sort_keys=False,
                     width=110, default_flow_style=False, allow_unicode=True)


def test_the_fragment_documents_every_row_as_the_table_has_it():
    assert yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"] == options.documentation()


def test_ns_exec_takes_every_row_from_the_table():
    spec = ns_exec.argument_spec()
    for option in options.OPTIONS:
        assert spec[option.name] == option.argument()
    assert set(spec) - set(options.OPTIONS_BY_NAME) == {"state", "timeout", "stdin", "output_limit", "keep_output",
                                                        "output_dir"}


def test_ns_exec_documents_only_its_own_options_beside_the_fragment():
    documented = yaml.safe_load(ns_exec.DOCUMENTATION)
    assert "handmade.containers.container_options" in documented["extends_documentation_fragment"]
    assert set(documented["options"]) == {"state", "timeout", "stdin", "output_limit", "keep_output", "output_dir"}


def test_container_takes_every_row_and_every_limit_from_the_tables():
    spec = container.argument_spec()
    for option in options.OPTIONS:
        expected = dict(option.argument(), required=True) if option.name == "name" else option.argument()
        assert spec[option.name] == expected
    for option, rules in limits.argument_spec().items():
        assert spec[option] == rules
    assert set(spec) - set(options.OPTIONS_BY_NAME) - set(limits.argument_spec()) == {
        "state", "fetch", "remove_rootfs"}


def test_container_documents_only_its_own_options_beside_the_fragments():
    documented = yaml.safe_load(container.DOCUMENTATION)
    assert {"handmade.containers.container_options", "handmade.containers.cgroup_limits"} <= set(
        documented["extends_documentation_fragment"])
    assert set(documented["options"]) == {"name", "state", "fetch", "remove_rootfs"}
    assert documented["options"]["name"]["required"] is True
    fetch = documented["options"]["fetch"]["suboptions"]
    assert set(fetch) == set(container._rootfs.SOURCE_OPTIONS)
    for option, rules in container._rootfs.SOURCE_OPTIONS.items():
        assert fetch[option]["type"] == rules["type"] and fetch[option].get("default") == rules.get("default"), option


if __name__ == "__main__":
    print(render(), end="")
