# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health checks as data: the option's forms, Docker's durations, and what each result does to the health."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._container import health


@pytest.mark.parametrize("given, seconds", [
    (30, 30.0), (0.5, 0.5), ("30", 30.0), ("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0),
    ("250us", 0.00025), ("1.5s", 1.5), ("0s", 0.0),
])
def test_durations_in_seconds_or_dockers_spelling(given, seconds):
    assert health.parse_duration(given, "interval") == pytest.approx(seconds)


@pytest.mark.parametrize("given", ["5 minutes", "-1s", -1, "1d", "", True, float("nan"), float("inf"), "s", "1m 30s",
                                   400 * 24 * 3600])
def test_what_is_no_duration_is_refused_with_the_spellings_that_work(given):
    with pytest.raises(ValueError, match="give seconds .* 30s, 1m30s or 500ms"):
        health.parse_duration(given, "interval")


@pytest.mark.parametrize("test, stored, argv", [
    ("curl -f http://localhost/", ["CMD-SHELL", "curl -f http://localhost/"], ["/bin/sh", "-c", "curl -f http://localhost/"]),
    (["pidof", "nginx"], ["CMD", "pidof", "nginx"], ["pidof", "nginx"]),
    (["CMD", "pidof", "nginx"], ["CMD", "pidof", "nginx"], ["pidof", "nginx"]),
    (["CMD-SHELL", "exit 0"], ["CMD-SHELL", "exit 0"], ["/bin/sh", "-c", "exit 0"]),
    (["test", "-e", 1], ["CMD", "test", "-e", "1"], ["test", "-e", "1"]),
])
def test_test_is_kept_in_dockers_form_and_run_as_its_argv(test, stored, argv):
    settings = health.check({"test": test})
    assert settings["test"] == stored and health.argv(settings["test"]) == argv


def test_defaults_are_dockers_and_checking_twice_gives_the_same():
    settings = health.check({"test": "true"})
    assert settings == {"test": ["CMD-SHELL", "true"], "interval": 30.0, "timeout": 30.0, "retries": 3,
                        "start_period": 0.0}
    assert health.check(settings) == settings
    spelled = health.check({"test": ["CMD-SHELL", "true"], "interval": "30s", "timeout": 30, "retries": 3})
    assert spelled == settings
    assert health.check(None) is None


@pytest.mark.parametrize("given, fragment", [
    ({"test": "true", "interval": 0}, "interval must be at least 1ms"),
    ({"test": "true", "timeout": "0s"}, "timeout must be at least 1ms"),
    ({"test": "true", "retries": 0}, "retries 0 must be a whole number from 1"),
    ({"test": "true", "retries": -2}, "retries -2 must be a whole number from 1"),
    ({"test": "true", "retries": True}, "retries True must be a whole number"),
    ({"test": "true", "start_period": "soon"}, "start_period 'soon' is not a duration"),
    ({"test": "   "}, "test is empty"),
    ({"test": []}, "must be a command line"),
    ({"test": ["CMD"]}, "names no program"),
    ({"test": ["CMD-SHELL"]}, "exactly one command line"),
    ({"test": ["CMD-SHELL", "a", "b"]}, "exactly one command line"),
    ({"test": ["NONE"]}, "leave healthcheck out"),
    ({"test": ["ls", {"a": 1}]}, "each item must be a string"),
    ({"test": ["ls", "a\0b"]}, "NUL byte"),
    ({"interval": 5}, "needs a test"),
    ("true", "must be a dict"),
])
def test_bad_settings_name_the_fix(given, fragment):
    with pytest.raises(ValueError, match=fragment):
        health.check(given)


SETTINGS = {"test": ["CMD-SHELL", "true"], "interval": 1.0, "timeout": 1.0, "retries": 3, "start_period": 10.0}
STARTED = 1000.0


def result(exit_code, start, output=""):
    return {"start": start, "end": start + 0.1, "exit_code": exit_code, "output": output}


def run(results):
    found = health.initial()
    statuses = []
    for item in results:
        found = health.record(found, SETTINGS, item, STARTED)
        statuses.append((found["status"], found["failing_streak"]))
    return found, statuses


def test_failures_within_start_period_do_not_count_until_the_first_success():
    _found, statuses = run([result(1, STARTED + 1), result(1, STARTED + 9), result(1, STARTED + 11)])
    assert statuses == [("starting", 0), ("starting", 0), ("starting", 1)]


def test_retries_failures_in_a_row_make_it_unhealthy_and_one_success_healthy():
    after = STARTED + 20
    _found, statuses = run([result(1, after), result(1, after + 1), result(2, after + 2), result(-1, after + 3),
                            result(0, after + 4), result(1, after + 5)])
    assert statuses == [("starting", 1), ("starting", 2), ("unhealthy", 3), ("unhealthy", 4), ("healthy", 0),
                        ("healthy", 1)]


def test_once_healthy_start_period_no_longer_forgives():
    _found, statuses = run([result(0, STARTED + 1), result(1, STARTED + 2), result(1, STARTED + 3),
                            result(1, STARTED + 4)])
    assert statuses == [("healthy", 0), ("healthy", 1), ("healthy", 2), ("unhealthy", 3)]


def test_the_last_five_results_are_kept_oldest_first():
    found, _statuses = run([result(index % 2, STARTED + 20 + index, "check %d" % index) for index in range(12)])
    assert [entry["output"] for entry in found["log"]] == ["check %d" % index for index in range(7, 12)]
    assert health.last_output(found) == "check 11" and health.last_output(health.initial()) is None


def test_record_returns_a_new_health_and_leaves_the_old_one():
    before = health.initial()
    health.record(before, SETTINGS, result(0, STARTED), STARTED)
    assert before == health.initial()
