# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One health check: the process a supervisor starts to run its container's check inside it.

The supervisor is a bare interpreter; entering the container needs the
exec code (spec, seccomp, capabilities, cgroups). So for each check the
supervisor forks and execs this file's ``main`` from the runtime
directory, with fd 3 a pipe for the report. It joins the container as
``state: exec`` does (its namespaces, root, user, capabilities, seccomp
filter and cgroup), runs the check's command with the check's timeout,
reports ``{"exit_code", "output"}`` (exit code -1 when the check could not
run or timed out) or ``{"gone": true}`` when the container it was asked to
check is no longer the one running, and exits. It takes no lock: a check
never makes a converge wait.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible_collections.handmade.containers.plugins.module_utils._container import (
    health,
    launch,
    output,
    placement as placement_,
    spec as spec_,
    supervise,
)
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.record import StateDir

REPORT_FD = 3


def probe(name, state_root, pid, start_time, settings):
    """Run the check of container ``name`` whose PID 1 is ``pid``; returns what to report."""
    record = StateDir(name, state_root).read()
    if record is None or (record.pid, record.start_time) != (pid, start_time) or not record.is_running():
        return {"gone": True}
    params = {"command": health.argv(settings["test"])}
    try:
        spec = spec_.exec_spec(name, record.config, params, pid)
        placement = placement_.reopen(record.cgroup or (record.config or {}).get("cgroup"),
                                      bool(record.cgroup_owned))
        result = launch.exec_in_container(
            pid, spec, timeout=settings["timeout"], cgroup=placement.cgroup if placement is not None else None,
            is_same_process=record.is_running,
            output_settings=output.OutputSettings(limit=health.OUTPUT_LIMIT, label="%s-health" % name))
    except (ContainerError, OSError) as exc:
        if not record.is_running():
            return {"gone": True}
        return {"exit_code": -1, "output": supervise.error_message(exc)}
    if result["timed_out"]:
        return {"exit_code": -1, "output": health.timed_out_output(settings["timeout"])}
    combined = (result.get("stdout") or "") + (result.get("stderr") or "")
    return {"exit_code": result["rc"], "output": combined[:health.OUTPUT_LIMIT]}


def main(argv):
    """``{"name", "state_root", "pid", "start_time", "healthcheck"}`` as argv[0]; fd 3 the report pipe."""
    arguments = json.loads(argv[0])
    try:
        report = probe(arguments["name"], arguments["state_root"], arguments["pid"], arguments["start_time"],
                       arguments["healthcheck"])
    except Exception as exc:  # a check that cannot run is a failed check, with the reason as its output
        report = {"exit_code": -1, "output": supervise.error_message(exc)}
    data = json.dumps(report).encode("utf-8")
    while data:
        data = data[os.write(REPORT_FD, data):]
    os._exit(0)
