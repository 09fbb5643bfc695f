# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One container as a whole: its root filesystem, its cgroup limits and its process, in one call.

``ensure_container(params)`` is what the container module does, in the
order the walkthrough does it by hand, each step through the module_utils
of its step module (rootfs_fetch, cgroup, ns_exec):

1. the root filesystem (``fetch``): fetched into ``rootfs`` when it is
   missing or another release is asked for. A tree that changes under a
   running container is replaced only once that container is stopped
   (runc cannot change the root of a running process either); the container
   then starts again on the new tree. Any other process rooted in the tree
   stops the task before anything is stopped.
2. the limits: written into the container's cgroup (``cgroup``, or its own
   ``<cgroup_parent>/<name>``) before the process starts, so they hold from
   its first instruction; a running container's limits change in place, as
   ``docker update`` changes them.
3. the process: ``lifecycle.ensure_state`` (started, stopped, absent).

All three run under the state root's lock. The result carries each step's
values, ``actions`` (what was done, or in check mode what would be, one
sentence each) and a diff of the three parts.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.handmade.containers.plugins.module_utils import _rootfs
from ansible_collections.handmade.containers.plugins.module_utils._cgroup import limits as limits_
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.errors import CgroupError
from ansible_collections.handmade.containers.plugins.module_utils._cgroup.manager import ensure_present
from ansible_collections.handmade.containers.plugins.module_utils._container import (
    inspect,
    launch,
    lifecycle,
    placement as placement_,
    spec as spec_,
)
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.record import (
    STATE_ROOT,
    StateDir,
    lock_container,
    lock_state_root,
)

STATES = ("started", "stopped", "absent")

# Where a fetched root filesystem goes when the task names no rootfs.
DEFAULT_ROOTFS_ROOT = "/var/lib/handmade-containers/rootfs"


def default_rootfs(name):
    return os.path.join(DEFAULT_ROOTFS_ROOT, name)


def ensure_container(params, check_mode=False, state_root=STATE_ROOT):
    """Converge container ``params['name']`` in all its parts; return the module's result."""
    name = params.get("name")
    spec_.check_name(name)
    state = params.get("state") or "started"
    if state not in STATES:
        raise ContainerError("unknown state %r: use %s" % (state, ", ".join(STATES)))
    params = dict(params, state=state)
    if params.get("fetch") is not None and not params.get("rootfs"):
        params["rootfs"] = default_rootfs(name)
    if state == "started" and not params.get("rootfs"):
        raise ContainerError("state=started needs a root filesystem: give rootfs (a tree that exists), or fetch "
                             "(what to download into it)")
    # Checked before any step makes a cgroup below it.
    spec_.check_cgroup_parent(params.get("cgroup"), params.get("cgroup_parent"))
    lock_fd = None if check_mode else lock_container(name, state_root)
    try:
        if state == "absent":
            result = _absent(params, check_mode, state_root)
        else:
            result = _present(params, check_mode, state_root)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    if not check_mode:
        result = lifecycle.await_health(params, result, state_root)
    # What container_info says of it now, so that one task tells all (the role's container_status).
    result["info"] = inspect.inspect_container(StateDir(name, state_root))
    return result


class _Outcome:
    """The result being put together: what changed, the sentences saying so, before and after."""

    def __init__(self):
        self.changed = False
        self.actions = []
        self.before = {}
        self.after = {}

    def note(self, changed, action=None):
        if changed:
            self.changed = True
            if action:
                self.actions.append(action)


def _present(params, check_mode, state_root):
    outcome = _Outcome()
    name = params["name"]
    state_dir = StateDir(name, state_root)
    record = state_dir.read()
    running = record is not None and record.is_running()

    rootfs = _converge_rootfs(params, record if running else None, check_mode, state_root, outcome)
    limits = _converge_limits(params, check_mode, outcome)

    new_tree = rootfs is not None and rootfs["changed"]
    if check_mode and new_tree:
        # The tree is not there yet (or not the new one): nothing can be
        # checked against it, but what a real run does is known.
        process = _rehearse_on_new_tree(params, state_dir, record, running)
    else:
        try:
            process = lifecycle.ensure_state(params, check_mode=check_mode, state_root=state_root,
                                             take_lock=False, boot_entry="container")
        except BaseException:
            _remove_cgroup_made_for(params, limits, check_mode)
            raise
    if new_tree and running and params["state"] == "started":
        # Stopped for the swap and started on the new tree: a new container.
        process["recreated"] = True
    outcome.before["container"] = process["diff"]["before"]
    outcome.after["container"] = process["diff"]["after"]
    outcome.note(process["changed"], _process_action(params, process, running, rootfs))

    result = dict(process)
    result.update(changed=outcome.changed, actions=outcome.actions, rootfs=params.get("rootfs"),
                  rootfs_fetch=_without_diff(rootfs), limits=limits["limits"] if limits else None,
                  cgroup_paths=limits["paths"] if limits else None,
                  diff={"before": outcome.before, "after": outcome.after})
    return result


def _converge_rootfs(params, running_record, check_mode, state_root, outcome):
    """Step 1: the tree at ``rootfs`` as ``fetch`` describes it; None without ``fetch``."""
    fetch = params.get("fetch")
    if fetch is None:
        return None
    dest = params["rootfs"]
    fetch_params = dict(fetch, dest=dest, force=False)
    try:
        planned = _rootfs.fetch_rootfs(fetch_params, check_mode=True)
    except _rootfs.RootfsError as exc:
        raise ContainerError("fetch: %s" % exc)
    outcome.before["rootfs"] = planned["diff"]["before"]
    outcome.after["rootfs"] = planned["diff"]["after"]
    if not planned["changed"]:
        return planned
    replaced = bool(planned["diff"]["before"])
    what = "%s %s" % (planned["version"] or "", planned["url"] or fetch.get("src") or "")
    outcome.note(True, "%s the root filesystem %s with %s" % (
        "replace" if replaced else "fetch", dest, " ".join(what.split())))
    if running_record is not None:
        outcome.note(True, "stop %s to replace its root filesystem" % params["name"])
    if check_mode:
        return planned
    if running_record is not None:
        _stop_for_new_tree(params, running_record, dest, state_root)
    # The fetch under the state root's lock, which every launch holds:
    # fetch_rootfs checks again that nothing runs from the tree, and no
    # container can start on it between that check and the swap. Other
    # containers' launches wait meanwhile (a release upgrade is rare; their
    # stops and everything else go on).
    root_lock = lock_state_root(state_root)
    try:
        fetched = _rootfs.fetch_rootfs(fetch_params)
    except _rootfs.RootfsError as exc:
        raise ContainerError("fetch: %s" % exc)
    finally:
        os.close(root_lock)
    outcome.after["rootfs"] = fetched["diff"]["after"]
    return fetched


def _stop_for_new_tree(params, record, dest, state_root):
    """Stop the container before its tree is replaced; refuse while anything else runs from the tree."""
    mount_namespace = launch.namespace_ids(record.pid).get("mnt")
    others = [pid for pid in _rootfs.processes_rooted_in(dest)
              if launch.namespace_ids(pid).get("mnt") != mount_namespace]
    if others:
        raise ContainerError("the root filesystem %s is to be replaced, but processes outside container %s run "
                             "from it (pids %s): stop them (another container on the same tree?) or give this "
                             "container a rootfs of its own" % (dest, params["name"],
                                                                ", ".join(str(pid) for pid in others[:10])))
    lifecycle.ensure_state(dict(params, state="stopped"), state_root=state_root, take_lock=False)


def _converge_limits(params, check_mode, outcome):
    """Step 2: the limits the task gives, in the container's cgroup; None when it gives none."""
    requested = dict((option, params.get(option)) for option in limits_.LIMIT_OPTIONS)
    if all(value is None for value in requested.values()):
        return None
    cgroup_name = params.get("cgroup") or placement_.own_cgroup_name(params["name"], params.get("cgroup_parent"))
    result = ensure_present(cgroup_name, requested, check_mode=check_mode)
    before, after = result["diff"]["before"], result["diff"]["after"]
    outcome.before["limits"] = before
    outcome.after["limits"] = after
    if before.get("state") == "absent":
        outcome.note(result["changed"], "create the cgroup %s with %s" % (cgroup_name, _limits_text(after)))
    else:
        changed = dict((key, value) for key, value in after.items() if before.get(key) != value)
        outcome.note(result["changed"], "set %s in the cgroup %s (was %s)" % (
            _limits_text(changed), cgroup_name,
            _limits_text(dict((key, before.get(key)) for key in changed))))
    return result


def _remove_cgroup_made_for(params, limits, check_mode):
    """A container that did not start leaves no cgroup of its own that step 2 made for it."""
    if check_mode or limits is None or params.get("cgroup") or limits["diff"]["before"].get("state") != "absent":
        return
    try:
        placement_.reopen(limits["name"], True).remove()
    except CgroupError:
        pass  # already gone


def _limits_text(values):
    return ", ".join("%s %s" % (key, "unset" if value is None else value)
                     for key, value in sorted(values.items()) if key != "state") or "no limits"


def _rehearse_on_new_tree(params, state_dir, record, running):
    """Check mode when the tree is still to be fetched: what the real run does after the swap.

    A running container is stopped by the swap (step 1 says so); then
    ``started`` starts it on the new tree and ``stopped`` has nothing left to do.
    """
    before = lifecycle.describe(record)
    if params["state"] == "started":
        after = {"state": "started", "pid": None}
        changed = True
    else:
        after = dict(before, state="stopped", pid=None) if record is not None else {"state": "absent"}
        changed = False
    return {"changed": changed, "state": params["state"], "name": state_dir.name, "pid": None,
            "recreated": False, "changed_settings": [], "diff": {"before": before, "after": after}}


def _process_action(params, process, running, rootfs):
    name = params["name"]
    state = params["state"]
    if state == "stopped":
        return "stop %s" % name
    if rootfs is not None and rootfs["changed"] and running:
        return "start %s again on the new root filesystem" % name
    if process.get("recreated"):
        because = process.get("changed_settings") or []
        return "recreate %s: %s changed" % (name, ", ".join(because)) if because else "recreate %s" % name
    return "start %s" % name


def _without_diff(result):
    if result is None:
        return None
    return dict((key, value) for key, value in result.items() if key not in ("diff", "changed"))


def _absent(params, check_mode, state_root):
    outcome = _Outcome()
    # The tree the container ran from, read before its record goes with it.
    record = StateDir(params["name"], state_root).read()
    recorded = (record.config or {}).get("rootfs") if record is not None else None
    rootfs = params.get("rootfs") or recorded or default_rootfs(params["name"])
    process = lifecycle.ensure_state(params, check_mode=check_mode, state_root=state_root, take_lock=False)
    outcome.before["container"] = process["diff"]["before"]
    outcome.after["container"] = process["diff"]["after"]
    outcome.note(process["changed"], "remove %s" % params["name"])
    if params.get("remove_rootfs"):
        try:
            removed = _rootfs.remove_tree(rootfs, check_mode=check_mode)
        except _rootfs.RootfsError as exc:
            raise ContainerError(str(exc))
        outcome.before["rootfs"] = {"path": rootfs} if removed else {}
        outcome.after["rootfs"] = {}
        outcome.note(removed, "remove the root filesystem %s" % rootfs)
    result = dict(process)
    result.update(changed=outcome.changed, actions=outcome.actions, rootfs=rootfs, rootfs_fetch=None,
                  limits=None, cgroup_paths=None, diff={"before": outcome.before, "after": outcome.after})
    return result
