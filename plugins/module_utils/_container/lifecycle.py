# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named containers: bring one to the state a task asks for.

``ensure_state(params)`` is what ns_exec does: ``run`` (``docker run
--rm``), ``started`` (``docker run -d``, recreated when a setting that
defines it changed), ``stopped``, ``absent`` and ``exec`` (``docker
exec``, with the settings the container was started with unless the task
gives its own). Whether a container runs is read from the kernel on every
call (record.py), so a dead PID 1, a reboot, a removed state directory or
an interrupted start all converge on the next run.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.handmade.containers.plugins.module_utils._container import (
    boot,
    health,
    launch,
    options,
    output,
    placement as placement_,
    spec as spec_,
    supervise,
)
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (
    STATE_ROOT,
    StateDir,
    config_digest,
    find_strays,
    kill_strays,
    lock_container,
    lock_state_root,
    stop_process_tree,
)


def describe(record):
    """A container's state as a diff shows it: absent, or started/stopped with its pid and defining settings."""
    if record is None:
        return {"state": "absent"}
    running = record.is_running()
    return {"state": "started" if running else "stopped", "pid": record.pid if running else None,
            "config": _defining(record.config)}


def _defining(config):
    """The settings shown in a diff: those that define the container."""
    return options.defining(config or {})


def _container_facts(record, state_dir, state):
    running = record is not None and record.is_running()
    config = record.config if record is not None else {}
    facts = {"state": state, "name": state_dir.name, "log_path": state_dir.log_path if record else None,
             "cgroup": _cgroup_of(record), "hostname": config.get("hostname")}
    if running:
        facts.update(pid=record.pid, namespaces=launch.namespace_ids(record.pid),
                     enter_command=launch.enter_command(record.pid, _namespace_names(config)))
    else:
        facts.update(pid=None, namespaces={}, enter_command=None)
    return facts


def _cgroup_of(record):
    """The cgroup a recorded container runs in (records of format 1 knew only the option)."""
    if record is None:
        return None
    return record.cgroup or (record.config or {}).get("cgroup")


def _placement_of(record):
    return placement_.reopen(_cgroup_of(record), bool(record.cgroup_owned)) if record is not None else None


def _remove_own_cgroup(name, record, stop_timeout, parent=None):
    """The cgroup made for the container alone goes with it, and whatever still runs in it.

    Found by the record, or by the container's name (below ``parent``, the
    task's cgroup_parent) when the record is gone (a state directory removed
    by hand), so that no empty cgroup stays.
    """
    if record is not None and record.cgroup and not record.cgroup_owned:
        return  # the `cgroup` option's: the cgroup module's to remove
    if record is not None and record.cgroup:
        cgroup_name = record.cgroup
    else:
        cgroup_name = placement_.own_cgroup_name(name, parent)
    try:
        placement = placement_.reopen(cgroup_name, True)
    except CgroupError:
        return  # already gone
    placement.remove(timeout=max(stop_timeout, 10.0))


def _namespace_names(config):
    return config.get("namespaces") or list(options.DEFAULT_NAMESPACES)


def _start(spec, state_dir):
    # A supervisor of an earlier start still finishing this directory's log
    # would rotate files under the new one: it finishes first.
    old = supervise.find_supervisors(state_dir)
    supervise.hand_off(old)
    supervise.wait_gone(old)
    # Launched under the state root's lock: no tree is swapped while a
    # container launches on it (compose swaps trees under the same lock).
    root_lock = lock_state_root(state_dir.root)
    try:
        return supervise.start(spec, state_dir)
    finally:
        os.close(root_lock)


def ensure_state(params, check_mode=False, state_root=STATE_ROOT, take_lock=True, boot_entry="ns_exec"):
    """Bring container ``params['name']`` to ``params['state']``; return the result dict.

    ``take_lock=False`` is for a caller that holds the container's lock
    (``lock_container``) itself over several steps (the container module); a
    second lock from the same process would wait for itself. ``boot_entry``
    names the module whose converge starts the container again after a
    reboot (boot.py): the one whose task this is.
    """
    state = params.get("state") or "run"
    if state == "run":
        return _run(params, check_mode, state_root)
    name = params.get("name")
    if not name:
        raise ContainerError("state=%s needs a name: the container is tracked by it" % state)
    spec_.check_name(name)
    state_dir = StateDir(name, state_root)
    if state == "exec":
        return _exec(params, state_dir, check_mode)
    if state not in ("started", "stopped", "absent"):
        raise ContainerError("unknown state %r: use run, started, stopped, absent or exec" % state)
    if check_mode or not take_lock:
        # Check mode changes nothing, so it takes no lock and creates no directory.
        return _converge(params, state, state_dir, check_mode, boot_entry)
    lock_fd = lock_container(name, state_root)
    try:
        result = _converge(params, state, state_dir, check_mode, boot_entry)
    finally:
        os.close(lock_fd)
    return await_health(params, result, state_root)


def await_health(params, result, state_root=STATE_ROOT):
    """``result`` of a started container with its ``health``, once healthy, when the task asks to wait.

    Waited for without the container's lock: a restart the supervisor makes
    meanwhile takes it, and may be what makes the container healthy.
    """
    if params.get("state") != "started" or not params.get("wait_healthy") or result.get("pid") is None:
        return result
    timeout = spec_.wait_healthy_timeout(params.get("wait_healthy_timeout"))
    result = dict(result)
    result["health"] = health.shown(supervise.wait_healthy(StateDir(params["name"], state_root), timeout))
    return result


def _stop_timeout(params, record):
    """The task's stop_timeout, else the one the container was started with, else the default."""
    if params.get("stop_timeout") is not None:
        return float(params["stop_timeout"])
    recorded = (record.config or {}).get("stop_timeout") if record is not None else None
    return float(options.DEFAULT_STOP_TIMEOUT if recorded is None else recorded)


def _leftovers(record, mount_namespace):
    """Processes of the container still in its cgroup beside PID 1 (none known when the cgroup is gone)."""
    try:
        placement = _placement_of(record)
    except CgroupError:
        return []
    if placement is None:
        return []
    pids = placement.cgroup.pids()
    if placement.owned:
        return sorted(pids)
    return sorted(pid for pid in pids if mount_namespace and launch.namespace_ids(pid).get("mnt") == mount_namespace)


def _kill_leftovers(record, mount_namespace):
    """Kill by cgroup what of the container outlived PID 1's stop (it may have left PID 1's session)."""
    try:
        placement = _placement_of(record)
    except CgroupError:
        return
    if placement is not None:
        launch.kill_container_processes(placement.cgroup, placement.owned, mount_namespace)


def _converge(params, state, state_dir, check_mode, boot_entry):
    record = state_dir.read()
    running = record is not None and record.is_running()
    before = describe(record)
    if state == "started":
        return _converge_started(params, state_dir, record, running, before, check_mode, boot_entry)

    stop_timeout = _stop_timeout(params, record)
    strays = [pid for pid in find_strays(state_dir) if not (running and pid == record.pid)]
    supervisors = supervise.find_supervisors(state_dir)
    # Every container has a mount namespace of its own: what shares it is the
    # container's, whichever session it moved to (and with fd 0 closed).
    mount_namespace = launch.namespace_ids(record.pid).get("mnt") if running else None
    leftovers = _leftovers(record, mount_namespace)
    # A boot record is the container's too: absent removes it, even when nothing else is left
    # (after a reboot, say, when /run is empty).
    changed = (running or bool(strays) or bool(leftovers) or bool(supervisors)
               or (state == "absent" and (state_dir.exists() or boot.read(state_dir.name) is not None)))
    if state == "absent" or record is None:
        after = {"state": "absent"}
    else:
        after = dict(before, state="stopped", pid=None)
    if check_mode or not changed:
        facts = _container_facts(record, state_dir, after["state"])
        facts.update(changed=changed, diff={"before": before, "after": after})
        return facts
    # First the supervisor: it restarts nothing from now on, and records the exit.
    supervise.hand_off(supervisors)
    if running:
        stop_process_tree(record.pid, record.start_time, stop_timeout)
    kill_strays(state_dir)
    if leftovers or running:
        _kill_leftovers(record, mount_namespace)
    # The supervisors exit once the container is gone, after writing what it left in the pipe.
    supervise.wait_gone(supervisors)
    if state == "absent":
        _remove_own_cgroup(state_dir.name, record, stop_timeout, params.get("cgroup_parent"))
        state_dir.remove()
        boot.forget(state_dir.name)
        record = None
    else:
        boot.mark_stopped(state_dir.name)
    facts = _container_facts(record, state_dir, after["state"])
    facts.update(changed=True, diff={"before": before, "after": after})
    return facts


def _converge_started(params, state_dir, record, running, before, check_mode, boot_entry):
    spec = spec_.build_spec(options.settings(params), create_mount_points=not check_mode)
    digest = config_digest(spec.digest_input())
    if running and record.config_digest == digest:
        supervised = bool(supervise.find_supervisors(state_dir))
        if not supervised and not check_mode:
            # Its supervisor was killed: a new one adopts the container, which runs on.
            supervise.repair(record, state_dir)
        return dict(_container_facts(record, state_dir, "started"), changed=not supervised,
                    repaired=not supervised, diff={"before": before, "after": before})
    after = {"state": "started", "pid": None, "config": spec.config()}
    changed_settings = changed_settings_of(record, spec) if running else []
    if check_mode:
        return {"changed": True, "state": "started", "name": state_dir.name, "recreated": running,
                "changed_settings": changed_settings, "diff": {"before": before, "after": after}}
    if running:
        # Another config: recreate, as docker_container does.
        stop_process_tree(record.pid, record.start_time, _stop_timeout(params, record))
    kill_strays(state_dir)
    new_cgroup = spec.cgroup or placement_.own_cgroup_name(spec.name, spec.cgroup_parent)
    if record is not None and record.cgroup_owned and record.cgroup and record.cgroup != new_cgroup:
        # It moves to another cgroup: the one of its own it had goes.
        _remove_own_cgroup(state_dir.name, record, _stop_timeout(params, record))
    _start(spec, state_dir)
    boot.remember(state_dir.name, boot_entry, params, state_dir.root)
    record = state_dir.read()
    result = dict(_container_facts(record, state_dir, "started"), changed=True, recreated=running,
                  changed_settings=changed_settings)
    result["diff"] = {"before": before, "after": describe(record)}
    return result


def changed_settings_of(record, spec):
    """The names of the defining settings a running container has other values of than ``spec``."""
    recorded = _defining(record.config)
    wanted = spec.config()
    return sorted(name for name in set(recorded) | set(wanted) if recorded.get(name) != wanted.get(name))


def _run(params, check_mode, state_root):
    timeout = launch.check_timeout(params.get("timeout"))
    if (params.get("restart_policy") or "no") != "no":
        raise ContainerError("restart_policy %s is for state=started: a container of state=run is removed when "
                             "its command exits (docker run --rm); leave restart_policy out" % params["restart_policy"])
    for key in ("healthcheck", "wait_healthy"):
        if params.get(key):
            raise ContainerError("%s is for state=started: the supervisor of a detached container runs the checks, "
                                 "and state=run returns when its command exits; leave %s out" % (key, key))
    spec = spec_.build_spec(options.settings(params), create_mount_points=not check_mode)
    output_settings = output.OutputSettings.from_params(params, label=spec.name or "run")
    facts = {"state": "run", "name": spec.name, "hostname": spec.hostname, "cgroup": spec.cgroup,
             "log_path": None, "enter_command": None}
    if check_mode:
        # Running the command is the change; its results cannot be predicted,
        # so none is returned: an "rc" of null would make Ansible's task
        # executor fail the task ("rc" present and not 0).
        return dict(facts, changed=True, pid=None, namespaces={})
    # The launch, not the whole run, under the state root's lock: no tree is
    # swapped while the container launches on it, and a swap after that sees
    # it running from the tree.
    root_lock = [lock_state_root(state_root)]

    def release_root_lock():
        if root_lock:
            os.close(root_lock.pop())
    try:
        placement = placement_.prepare(spec)
        try:
            result = launch.run_container(spec, stdin_data=params.get("stdin"), timeout=timeout,
                                          cgroup=placement.cgroup, cgroup_owned=placement.owned,
                                          output_settings=output_settings, after_launch=release_root_lock)
        finally:
            # Like docker run --rm: nothing of the container stays, not even a
            # process that left its session.
            placement.remove()
    finally:
        release_root_lock()
    return dict(facts, changed=True, **result)


def _exec(params, state_dir, check_mode):
    timeout = launch.check_timeout(params.get("timeout"))
    output_settings = output.OutputSettings.from_params(params, label=state_dir.name)
    record = state_dir.read()
    if record is None or not record.is_running():
        raise ContainerError("container %s is not running: start it with state=started before exec"
                             % state_dir.name)
    if check_mode:
        # As for run: no rc, no output, nothing the command did not do.
        return dict(_container_facts(record, state_dir, "exec"), changed=True)
    try:
        spec = spec_.exec_spec(state_dir.name, record.config, params, record.pid)
    except OSError as exc:
        # Its root is read through /proc/<pid>/root: gone when PID 1 exits meanwhile.
        if record.is_running():
            raise ContainerError("cannot read the root of container %s through /proc/%d/root: %s"
                                 % (state_dir.name, record.pid, exc))
        raise ContainerError("container %s exited while exec started (%s): start it again with state=started"
                             % (state_dir.name, exc))
    placement = _placement_of(record)
    result = launch.exec_in_container(record.pid, spec, stdin_data=params.get("stdin"),
                                      timeout=timeout,
                                      cgroup=placement.cgroup if placement is not None else None,
                                      is_same_process=record.is_running, output_settings=output_settings)
    facts = _container_facts(record, state_dir, "started")
    facts.update(result)
    facts.update(changed=True, state="exec")
    return facts
