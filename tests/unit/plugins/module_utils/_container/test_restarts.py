# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart policies as data: Docker's rules for which exit is restarted, the back-off, boot."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._container import restarts, supervisor


@pytest.mark.parametrize("policy, retries, exit_code, streak, by_hand, expected", [
    ("no", 0, 1, 0, False, False),
    ("on-failure", 0, 0, 0, False, False),
    ("on-failure", 0, 1, 50, False, True),       # no limit
    ("on-failure", 2, 137, 1, False, True),
    ("on-failure", 2, 137, 2, False, False),     # the retries are spent
    ("on-failure", 2, None, 0, False, True),     # an exit nobody saw counts as a failure
    ("always", 0, 0, 9, False, True),
    ("unless-stopped", 0, 0, 0, False, True),
    ("always", 0, 1, 0, True, False),            # stopped by hand: never
])
def test_which_exit_is_restarted(policy, retries, exit_code, streak, by_hand, expected):
    assert restarts.should_restart(policy, retries, exit_code, streak, by_hand) is expected


def test_the_back_off_doubles_from_100_ms_up_to_a_minute():
    assert [restarts.delay(n) for n in range(5)] == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert restarts.delay(10) == 60.0 and restarts.delay(10 ** 6) == 60.0


@pytest.mark.parametrize("policy, by_hand, expected", [
    ("always", False, True), ("always", True, True),
    ("unless-stopped", False, True), ("unless-stopped", True, False),
    ("on-failure", False, False), ("no", False, False),
])
def test_which_container_comes_back_at_boot(policy, by_hand, expected):
    assert restarts.starts_at_boot(policy, by_hand) is expected


@pytest.mark.parametrize("policy, retries, message", [
    ("sometimes", 0, "restart_policy 'sometimes' is not a policy: use one of no, on-failure, always, unless-stopped"),
    ("on-failure", -1, "restart_retries -1 is out of range"),
    ("on-failure", True, "restart_retries True is not a whole number"),
    ("always", 3, "restart_retries is for restart_policy=on-failure only"),
])
def test_bad_settings_name_the_fix(policy, retries, message):
    with pytest.raises(ValueError) as caught:
        restarts.check(policy, retries)
    assert message in str(caught.value)


def test_exit_codes_are_dockers():
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    assert supervisor.exit_code_of(os.waitpid(pid, 0)[1]) == 3
    pid = os.fork()
    if pid == 0:
        os.kill(os.getpid(), 9)
    assert supervisor.exit_code_of(os.waitpid(pid, 0)[1]) == 137
