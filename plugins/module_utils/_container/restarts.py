# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart policies as Docker has them: which exit is restarted, and after how long.

``no`` never restarts; ``on-failure`` restarts an exit other than 0, at
most ``restart_retries`` times in a row (0: without limit); ``always`` and
``unless-stopped`` restart every exit. A container stopped by hand
(``state: stopped``, ``absent``, a recreate) is never restarted. The two
last ones differ at boot only: ``always`` comes back even when it was
stopped by hand before the reboot, ``unless-stopped`` only when it was not.

The delay before a restart doubles from 100 ms at each restart in a row, up
to one minute, and starts again from 100 ms once the container had run 10
seconds. Standard library only: the supervisor imports it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

POLICIES = ("no", "on-failure", "always", "unless-stopped")
# The policies whose containers the boot unit starts again after a reboot.
BOOT_POLICIES = ("always", "unless-stopped")
FIRST_DELAY = 0.1
MAX_DELAY = 60.0
# A container that ran this long before it exited is restarted after FIRST_DELAY again.
RESET_AFTER = 10.0
MAX_RETRIES = 1000000


def check(policy, retries):
    """``restart_policy`` and ``restart_retries`` -> (policy, retries), or ValueError naming the fix."""
    if policy not in POLICIES:
        raise ValueError("restart_policy %r is not a policy: use one of %s" % (policy, ", ".join(POLICIES)))
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise ValueError("restart_retries %r is not a whole number: give e.g. 5 (0 for no limit)" % (retries,))
    if not 0 <= retries <= MAX_RETRIES:
        raise ValueError("restart_retries %d is out of range: give 0 (no limit) to %d" % (retries, MAX_RETRIES))
    if retries and policy != "on-failure":
        raise ValueError("restart_retries is for restart_policy=on-failure only (it is %s): leave it out "
                         "or set restart_policy: on-failure" % policy)
    return policy, retries


def should_restart(policy, retries, exit_code, failures_in_a_row, stopped_by_hand):
    """Whether an exit with ``exit_code`` (None: unknown) is restarted.

    ``failures_in_a_row`` counts the restarts since the container last ran
    RESET_AFTER seconds (what ``restart_retries`` limits).
    """
    if stopped_by_hand or policy == "no":
        return False
    if policy == "on-failure":
        if exit_code == 0:
            return False
        return not retries or failures_in_a_row < retries
    return True


def delay(restarts_in_a_row):
    """Seconds to wait before restart number ``restarts_in_a_row`` + 1 of a streak."""
    return min(MAX_DELAY, FIRST_DELAY * (2 ** min(restarts_in_a_row, 32)))


def starts_at_boot(policy, stopped_by_hand):
    """Whether the boot unit starts the container again after a reboot."""
    if policy == "always":
        return True
    return policy == "unless-stopped" and not stopped_by_hand
