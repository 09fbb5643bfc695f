# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health checks as Docker has them: the ``healthcheck`` option, and what each check's result does.

A health check is a command run inside the running container (as
``state: exec`` runs one) every ``interval`` seconds by the container's
supervisor; each run gets ``timeout`` seconds. Exit 0 is healthy, any other
exit (or the timeout) a failure. The status starts as ``starting``; the
first success makes it ``healthy``, ``retries`` failures in a row make it
``unhealthy``. Failures within ``start_period`` of the container's start
do not count while it has never been healthy, so a slow service is not
called unhealthy while it boots. The last LOG_ENTRIES results are kept,
each with at most OUTPUT_LIMIT bytes of output, as ``docker inspect``
shows them.

``test`` is kept in Docker's form: ``["CMD", program, args...]`` (no
shell), or ``["CMD-SHELL", "command line"]`` (run by ``/bin/sh -c``).
Standard library only: the supervisor imports it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import re

# Docker's defaults: check every 30 s, 30 s each, unhealthy after 3 failures.
DEFAULTS = {"interval": 30.0, "timeout": 30.0, "retries": 3, "start_period": 0.0}
# Docker accepts 1 ms as the shortest interval and timeout.
SHORTEST = 0.001
LONGEST = 366 * 24 * 3600.0
MAX_RETRIES = 1000000
LOG_ENTRIES = 5
OUTPUT_LIMIT = 4096
SHELL = "/bin/sh"

STARTING = "starting"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:us|ms|s|m|h))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")


def parse_duration(value, what):
    """Seconds from a number of seconds or a Go-style duration (``30s``, ``1m30s``, ``500ms``)."""
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        if re.match(r"^\d+(?:\.\d+)?$", text):
            seconds = float(text)
        elif _DURATION.match(text):
            seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))
        else:
            seconds = None
    if seconds is None or math.isnan(seconds) or not 0 <= seconds <= LONGEST:
        raise ValueError("healthcheck.%s %r is not a duration: give seconds (e.g. 30) or a duration such as "
                         "30s, 1m30s or 500ms, 0 or more and at most a year" % (what, value))
    return seconds


def _test(test):
    """``test`` in Docker's form: a string is a shell command line, a list a program and its arguments."""
    if isinstance(test, str):
        if not test.strip():
            raise ValueError("healthcheck.test is empty: give the command that checks the service, e.g. "
                             "'wget -q -O /dev/null http://localhost/' or ['CMD', 'pidof', 'nginx']")
        return ["CMD-SHELL", test]
    if not isinstance(test, (list, tuple)) or not test:
        raise ValueError("healthcheck.test must be a command line (a string, run by %s -c) or a list "
                         "(a program and its arguments, optionally after CMD or CMD-SHELL)" % SHELL)
    words = []
    for word in test:
        if isinstance(word, bool) or not isinstance(word, (str, int, float)):
            raise ValueError("healthcheck.test holds %r: each item must be a string" % (word,))
        if "\0" in str(word):
            raise ValueError("healthcheck.test holds a NUL byte: remove it")
        words.append(str(word))
    kind = words[0]
    if kind == "NONE":
        raise ValueError("healthcheck.test NONE disables a check an image defines; a container here has no "
                         "check but its own: leave healthcheck out instead")
    if kind == "CMD-SHELL":
        if len(words) != 2 or not words[1].strip():
            raise ValueError("healthcheck.test [CMD-SHELL, ...] takes exactly one command line after CMD-SHELL")
        return words
    if kind == "CMD":
        words = words[1:]
    if not words or not words[0]:
        raise ValueError("healthcheck.test names no program: give e.g. ['CMD', 'pidof', 'nginx']")
    return ["CMD"] + words


def check(healthcheck):
    """The ``healthcheck`` option -> its settings in one form (None: no check), or ValueError naming the fix."""
    if healthcheck is None:
        return None
    if not isinstance(healthcheck, dict):
        raise ValueError("healthcheck must be a dict with test, and optionally interval, timeout, retries, "
                         "start_period")
    if healthcheck.get("test") is None:
        raise ValueError("healthcheck needs a test: the command that exits 0 when the container is healthy")
    settings = {"test": _test(healthcheck["test"])}
    for key in ("interval", "timeout", "start_period"):
        given = healthcheck.get(key)
        settings[key] = DEFAULTS[key] if given is None else parse_duration(given, key)
    for key in ("interval", "timeout"):
        if settings[key] < SHORTEST:
            raise ValueError("healthcheck.%s must be at least 1ms (it is %r): a check without pause would run "
                             "without end; Docker's default is 30s" % (key, healthcheck.get(key)))
    retries = healthcheck.get("retries")
    retries = DEFAULTS["retries"] if retries is None else retries
    if isinstance(retries, bool) or not isinstance(retries, int) or not 1 <= retries <= MAX_RETRIES:
        raise ValueError("healthcheck.retries %r must be a whole number from 1 to %d: how many failures in a "
                         "row make the container unhealthy (default 3)" % (retries, MAX_RETRIES))
    settings["retries"] = retries
    return settings


def argv(test):
    """The command a check runs for ``test`` (Docker's form)."""
    if test[0] == "CMD-SHELL":
        return [SHELL, "-c", test[1]]
    return list(test[1:])


def initial():
    """The health of a container that has just started."""
    return {"status": STARTING, "failing_streak": 0, "log": []}


def timed_out_output(timeout):
    return "Health check exceeded timeout (%gs)" % timeout


def record(health, settings, result, started_at):
    """``health`` after the check ``result`` ({start, end, exit_code, output}); a new dict.

    ``started_at`` is when the container started (epoch seconds): a failure
    before ``start_period`` has passed does not count while the container
    has never been healthy.
    """
    health = {"status": health.get("status", STARTING), "failing_streak": health.get("failing_streak", 0),
              "log": (list(health.get("log") or []) + [result])[-LOG_ENTRIES:]}
    if result["exit_code"] == 0:
        health.update(status=HEALTHY, failing_streak=0)
        return health
    if health["status"] == STARTING and result["start"] - started_at < settings["start_period"]:
        return health
    health["failing_streak"] += 1
    if health["failing_streak"] >= settings["retries"]:
        health["status"] = UNHEALTHY
    return health


def last_output(health):
    """The output of the newest check, or None before the first."""
    log = (health or {}).get("log") or []
    return log[-1].get("output") if log else None


def iso8601(seconds):
    """Seconds since the epoch as ISO 8601 in UTC, to the millisecond, as container_info shows times."""
    # Imported here: the supervisor imports this module and never formats a time (datetime is 0.5 MB to it).
    import datetime
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def shown(found):
    """A recorded health as the modules return it: its checks' times in ISO 8601."""
    found = found or initial()
    log = [dict(entry, start=iso8601(entry.get("start")), end=iso8601(entry.get("end")))
           for entry in found.get("log") or []]
    return {"status": found.get("status", STARTING), "failing_streak": found.get("failing_streak", 0), "log": log}
