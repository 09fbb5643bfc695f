# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.handmade.containers.plugins.module_utils._container import options


def test_every_default_is_applied_once_from_the_table():
    values = options.settings({"rootfs": "/srv/alpine"})
    assert values["workdir"] == "/" and values["stop_timeout"] == options.DEFAULT_STOP_TIMEOUT
    assert values["namespaces"] == list(options.DEFAULT_NAMESPACES)
    assert values["env"] == {} and values["command"] == "/bin/sh"


def test_inherited_options_keep_their_default_out_of_the_argument_spec():
    spec = options.argument_spec()
    for name in ("workdir", "user", "env", "stop_timeout"):
        assert "default" not in spec[name], name
    assert spec["namespaces"]["default"] == list(options.DEFAULT_NAMESPACES)


def test_exec_inherits_what_the_container_was_started_with():
    started_with = {"workdir": "/srv", "user": "1000", "env": {"A": "1", "B": "2"},
                    "namespaces": ["mount", "pid"], "capabilities": ["CHOWN"], "command": ["/bin/httpd"]}
    values = options.settings({"command": ["ls"], "env": {"B": "3"}, "namespaces": ["mount"]},
                              started_with=started_with)
    assert values["workdir"] == "/srv" and values["user"] == "1000"
    assert values["env"] == {"A": "1", "B": "3"}
    assert values["command"] == ["ls"]
    # exec joins what the container has: a task cannot change these.
    assert values["namespaces"] == ["mount", "pid"] and values["capabilities"] == ["CHOWN"]


def test_exec_may_choose_its_own_workdir_and_user():
    values = options.settings({"workdir": "/tmp", "user": "0"}, started_with={"workdir": "/srv", "user": "1000"})
    assert values["workdir"] == "/tmp" and values["user"] == "0"


def test_the_digest_leaves_out_what_does_not_define_the_container():
    digest = options.digest_input(options.settings({"name": "web", "rootfs": "/srv/alpine"}))
    assert "stop_timeout" not in digest and "name" not in digest
    assert set(digest) == set(option.name for option in options.OPTIONS
                              if option.digest and not option.digest_omits_default)


def test_an_option_added_later_is_left_out_of_the_digest_at_its_default():
    # A container started before `init` existed has no such setting: it ran
    # without an init, and must not be recreated for init: false.
    recorded_before = options.digest_input({"name": "web", "command": ["sh"]})
    assert "init" not in recorded_before
    assert options.digest_input(options.settings({"name": "web", "command": ["sh"], "init": False})) == \
        options.digest_input(options.settings({"name": "web", "command": ["sh"]}))
    assert options.digest_input(options.settings({"name": "web", "command": ["sh"], "init": True}))["init"] is True


def test_a_record_from_before_an_option_shows_its_default():
    # Diffs and changed_settings compare what defines the container: an old
    # record reads as the default, so nothing shows as changed.
    assert options.defining({"name": "web", "command": ["sh"]})["init"] is False
    assert options.defining(options.settings({"init": True}))["init"] is True
