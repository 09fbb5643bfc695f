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
import time

from ansible_collections.handmade.containers.plugins.module_utils._container import (
    launch,
    options,
    output,
    placement as placement_,
    spec as spec_,
)
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (
    RECORD_FORMAT,
    STATE_ROOT,
    ContainerRecord,
    StateDir,
    config_digest,
    find_strays,
    kill_strays,
    lock_container,
    lock_state_root,
    process_start_time,
    stop_process_tree,
    stop_relays,
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
    # A relay of an earlier start still draining into this directory would
    # rotate files under the new one: it finishes first.
    stop_relays(state_dir)
    # Launched under the state root's lock: no tree is swapped while a
    # container launches on it (compose swaps trees under the same lock).
    root_lock = lock_state_root(state_dir.root)
    try:
        return _launch(spec, state_dir)
    finally:
        os.close(root_lock)


def _launch(spec, state_dir):
    dir_fd, stdin_fd, log_fd = state_dir.prepare()
    placement = None

    def record_before_start(pid):
        # Recorded before the child may run anything: if this process dies
        # now, the child reads EOF instead of "go" and exits untouched.
        try:
            state_dir.write(ContainerRecord(
                format=RECORD_FORMAT, name=spec.name, pid=pid, start_time=process_start_time(pid),
                config_digest=config_digest(spec.digest_input()), config=spec.settings,
                log_path=state_dir.log_path, created=time.time(),
                cgroup=placement.name, cgroup_owned=placement.owned))
        except OSError as exc:
            raise ContainerError("cannot record container %s in %s: %s (is /run full or read-only?)"
                                 % (spec.name, state_dir.record_path, exc))

    try:
        placement = placement_.prepare(spec)
        return launch.start_detached(spec, stdin_fd, dir_fd, log_fd, cgroup=placement.cgroup,
                                     before_start=record_before_start)
    except BaseException:
        # A container that never ran leaves no state behind.
        if placement is not None:
            placement.remove()
        state_dir.remove()
        raise
    finally:
        for fd in (stdin_fd, dir_fd, log_fd):
            os.close(fd)


def ensure_state(params, check_mode=False, state_root=STATE_ROOT, take_lock=True):
    """Bring container ``params['name']`` to ``params['state']``; return the result dict.

    ``take_lock=False`` is for a caller that holds the container's lock
    (``lock_container``) itself over several steps (the container module); a
    second lock from the same process would wait for itself.
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
        return _converge(params, state, state_dir, check_mode)
    lock_fd = lock_container(name, state_root)
    try:
        return _converge(params, state, state_dir, check_mode)
    finally:
        os.close(lock_fd)


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


def _converge(params, state, state_dir, check_mode):
    record = state_dir.read()
    running = record is not None and record.is_running()
    before = describe(record)
    if state == "started":
        return _converge_started(params, state_dir, record, running, before, check_mode)

    stop_timeout = _stop_timeout(params, record)
    strays = [pid for pid in find_strays(state_dir) if not (running and pid == record.pid)]
    # Every container has a mount namespace of its own: what shares it is the
    # container's, whichever session it moved to (and with fd 0 closed).
    mount_namespace = launch.namespace_ids(record.pid).get("mnt") if running else None
    leftovers = _leftovers(record, mount_namespace)
    changed = running or bool(strays) or bool(leftovers) or (state == "absent" and state_dir.exists())
    if state == "absent" or record is None:
        after = {"state": "absent"}
    else:
        after = dict(before, state="stopped", pid=None)
    if check_mode or not changed:
        facts = _container_facts(record, state_dir, after["state"])
        facts.update(changed=changed, diff={"before": before, "after": after})
        return facts
    if running:
        stop_process_tree(record.pid, record.start_time, stop_timeout)
    kill_strays(state_dir)
    # The log relays exit once the container is gone, after writing what it left in the pipe.
    stop_relays(state_dir)
    if leftovers or running:
        _kill_leftovers(record, mount_namespace)
    if state == "absent":
        _remove_own_cgroup(state_dir.name, record, stop_timeout, params.get("cgroup_parent"))
        state_dir.remove()
        record = None
    facts = _container_facts(record, state_dir, after["state"])
    facts.update(changed=True, diff={"before": before, "after": after})
    return facts


def _converge_started(params, state_dir, record, running, before, check_mode):
    spec = spec_.build_spec(options.settings(params), create_mount_points=not check_mode)
    digest = config_digest(spec.digest_input())
    if running and record.config_digest == digest:
        return dict(_container_facts(record, state_dir, "started"), changed=False,
                    diff={"before": before, "after": before})
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
    # The container's volumes are already mounted in its namespace and its
    # devices made and allowed in its cgroup: exec neither mounts nor re-checks
    # them (the record holds the devices as kernel rules, not as the option).
    started_with = dict(record.config or {}, name=state_dir.name, mounts=[], devices=[])
    try:
        spec = spec_.build_spec(options.settings(params, started_with=started_with),
                                create_mount_points=False, lookup_root="/proc/%d/root" % record.pid)
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
