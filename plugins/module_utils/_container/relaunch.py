# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restart: the process a supervisor starts to launch its container again.

The supervisor is a bare interpreter; the launch needs the whole launch
code (spec, mounts, seccomp, cgroups). So for each restart the supervisor
forks and execs this file's ``main`` from the runtime directory, under
the container's lock (held by the supervisor), with fd 3 a pipe for the
report, fd 4 the state directory and fd 5 the write end of the new output
pipe. It starts the container from the settings its record keeps
(``launch_settings``), writes the record as the module does, reports
``{"pid", "start_time"}`` (or ``{"error"}``, or ``{"gone": true}`` when
the container was removed or runs already) and exits: the new PID 1 is
then handed to the supervisor, the nearest subreaper.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible_collections.handmade.containers.plugins.module_utils._container import (
    options,
    placement as placement_,
    spec as spec_,
    supervise,
)
from ansible_collections.handmade.containers.plugins.module_utils._container.record import StateDir, lock_state_root

REPORT_FD = 3
DIR_FD = 4
OUTPUT_FD = 5


def relaunch(name, state_root):
    """Start container ``name`` again from its record; returns what to report."""
    state_dir = StateDir(name, state_root)
    record = state_dir.read()
    if record is None or not record.launch_settings:
        return {"gone": True}
    if record.is_running():
        return {"gone": True}
    spec = spec_.build_spec(options.settings(record.launch_settings))
    dir_fd = state_dir.open()
    if dir_fd is None:
        return {"gone": True}
    try:
        stdin_fd = state_dir.open_stdin(dir_fd)
    finally:
        os.close(dir_fd)
    # As every launch: no tree is swapped while a container launches on it.
    root_lock = lock_state_root(state_root)
    try:
        placement = placement_.prepare(spec)
        launched, start_time = supervise.record_launch(spec, state_dir, (stdin_fd, OUTPUT_FD, OUTPUT_FD),
                                                       placement)
    finally:
        os.close(root_lock)
        os.close(stdin_fd)
    return {"pid": launched.pid, "start_time": start_time}


def main(argv):
    """``{"name", "state_root"}`` as argv[0]; descriptors as the supervisor sets them."""
    arguments = json.loads(argv[0])
    try:
        report = relaunch(arguments["name"], arguments["state_root"])
        status = 0
    except Exception as exc:  # every failure becomes the supervisor's recorded error
        report = {"error": supervise.error_message(exc)}
        status = 1
    data = json.dumps(report).encode("utf-8")
    while data:
        data = data[os.write(REPORT_FD, data):]
    os._exit(status)
