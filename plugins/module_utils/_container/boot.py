# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Containers that come back after a reboot: their boot records, and the one systemd unit that starts them.

``/run`` is empty after a reboot, and with it every container's state. A
container started with ``restart_policy`` ``always`` or ``unless-stopped``
therefore also has a boot record, ``/var/lib/handmade-containers/boot/
<name>.json``: the task's parameters (without ``fetch``: the tree is on
disk, and a boot needs no network) and whether a task stopped it. On a host
that runs systemd, the first such container installs one unit,
``handmade-containers.service`` (enabled by its link in
``multi-user.target.wants``, so no ``systemctl`` call and no daemon reload
is needed): at boot it runs ``main(["start"])`` from the runtime directory,
which converges each remembered container as its task did, cgroup limits
included; at shutdown ``main(["stop"])`` stops them through their
supervisors (SIGTERM, SIGKILL after stop_timeout), which does not count as
stopped by hand.

One unit for all rather than one per container (podman's quadlet model):
the containers run in the collection's own cgroups (``handmade/...``, with
their limits and device rules), not in cgroups systemd makes for units. A
unit per container would make systemd the owner of each container's cgroup
on cgroup v2 (``Delegate=`` moves the container under
``system.slice/<unit>``, away from ``cgroup_parent``), and each new
container would need a daemon reload. The one unit is a oneshot whose
processes leave its cgroup for the containers' and the supervisors' own,
so systemd neither tracks nor kills them when its start is done.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import json
import os
import sys

from ansible_collections.handmade.containers.plugins.module_utils._container import restarts, runtime
from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError

BOOT_DIR = "/var/lib/handmade-containers/boot"
UNIT_NAME = "handmade-containers.service"
UNIT_DIR = "/etc/systemd/system"
WANTS_DIR = os.path.join(UNIT_DIR, "multi-user.target.wants")
# systemd is the running init exactly when this exists (sd_booted(3)).
SYSTEMD_RUNNING = "/run/systemd/system"
# What a boot record may not take from the task: never a download at boot, and
# no wait for health that would hold the other containers back.
NOT_AT_BOOT = ("fetch", "state", "wait_healthy", "wait_healthy_timeout")


class Places:
    """Where the boot records and the unit live (tests give their own)."""

    def __init__(self, boot_dir=BOOT_DIR, unit_dir=UNIT_DIR, systemd_running=SYSTEMD_RUNNING):
        self.boot_dir = boot_dir
        self.unit_dir = unit_dir
        self.wants_dir = os.path.join(unit_dir, "multi-user.target.wants")
        self.systemd_running = systemd_running


DEFAULT_PLACES = Places()


def _record_path(name, places):
    return os.path.join(places.boot_dir, name + ".json")


def remember(name, entry, params, state_root, places=DEFAULT_PLACES):
    """After a start: keep (or drop) the boot record of ``name``, as its restart policy says.

    ``entry`` is the module whose converge brings it back (``container`` or
    ``ns_exec``), ``params`` the task's parameters.
    """
    policy = params.get("restart_policy") or "no"
    if policy not in restarts.BOOT_POLICIES:
        forget(name, places)
        return
    kept = dict((key, value) for key, value in params.items() if key not in NOT_AT_BOOT and value is not None)
    _write(name, {"name": name, "entry": entry, "params": kept, "state_root": state_root,
                  "stopped_by_hand": False}, places)
    install_unit(places)


def mark_stopped(name, places=DEFAULT_PLACES):
    """A task stopped ``name``: ``unless-stopped`` stays down at boot, ``always`` comes back."""
    data = read(name, places)
    if data is not None and not data.get("stopped_by_hand"):
        data["stopped_by_hand"] = True
        _write(name, data, places)


def forget(name, places=DEFAULT_PLACES):
    try:
        os.unlink(_record_path(name, places))
    except OSError:
        pass


def read(name, places=DEFAULT_PLACES):
    try:
        with open(_record_path(name, places)) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write(name, data, places):
    try:
        os.makedirs(places.boot_dir, 0o700, exist_ok=True)
        temporary = os.path.join(places.boot_dir, ".%s.%s.tmp" % (name, binascii.hexlify(os.urandom(4)).decode()))
        # 0600: the parameters hold the container's environment.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, sort_keys=True)
        os.rename(temporary, _record_path(name, places))
    except OSError as exc:
        raise ContainerError("cannot write the boot record of container %s in %s: %s (is /var/lib writable?)"
                             % (name, places.boot_dir, exc))


def unit_text(runtime_dir, python=None):
    """The systemd unit that starts the remembered containers at boot and stops them at shutdown."""
    start = " ".join('"%s"' % part if " " in part else part
                     for part in runtime.command(runtime_dir, "_container.boot", python=python) + ["start"])
    stop = start[:-len("start")] + "stop"
    return "\n".join([
        "# Written by the handmade.containers collection; rewritten by its next container with a boot policy.",
        "[Unit]",
        "Description=handmade.containers: the containers whose restart policy is always or unless-stopped",
        "After=local-fs.target network.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=" + start,
        "ExecStop=" + stop,
        "TimeoutStopSec=120",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


def install_unit(places=DEFAULT_PLACES):
    """Write and enable the unit where systemd runs; returns whether it was (re)written."""
    if not os.path.isdir(places.systemd_running):
        return False  # no systemd: nothing starts containers at boot (documented)
    text = unit_text(runtime.install())
    path = os.path.join(places.unit_dir, UNIT_NAME)
    try:
        with open(path) as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    try:
        os.makedirs(places.wants_dir, 0o755, exist_ok=True)
        temporary = path + ".tmp"
        with open(temporary, "w") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.rename(temporary, path)
        link = os.path.join(places.wants_dir, UNIT_NAME)
        if not os.path.islink(link):
            os.symlink(os.path.join("..", UNIT_NAME), link)
    except OSError as exc:
        raise ContainerError("cannot install %s in %s: %s" % (UNIT_NAME, places.unit_dir, exc))
    return True


def _start_all(places):
    from ansible_collections.handmade.containers.plugins.module_utils._container import compose, lifecycle

    failed = 0
    for entry in sorted(os.listdir(places.boot_dir)) if os.path.isdir(places.boot_dir) else ():
        if not entry.endswith(".json") or entry.startswith("."):
            continue
        data = read(entry[:-len(".json")], places) or {}
        params = dict(data.get("params") or {}, state="started")
        if not restarts.starts_at_boot(params.get("restart_policy"), data.get("stopped_by_hand")):
            continue
        try:
            if data.get("entry") == "container":
                compose.ensure_container(params, state_root=data["state_root"])
            else:
                lifecycle.ensure_state(params, state_root=data["state_root"])
            _say(sys.stdout, "started container %s" % data.get("name"))
        except Exception as exc:  # one container that cannot start does not keep the others down
            failed += 1
            _say(sys.stderr, "container %s did not start: %s" % (data.get("name"), exc))
    return 1 if failed else 0


def _say(stream, line):
    """A line for the journal (the unit's stdout and stderr)."""
    stream.write(line + "\n")
    stream.flush()


def _stop_all(places):
    import signal

    from ansible_collections.handmade.containers.plugins.module_utils._container import supervise
    from ansible_collections.handmade.containers.plugins.module_utils._container.record import StateDir

    found = []
    for entry in sorted(os.listdir(places.boot_dir)) if os.path.isdir(places.boot_dir) else ():
        if entry.endswith(".json") and not entry.startswith("."):
            data = read(entry[:-len(".json")], places) or {}
            state_dir = StateDir(data.get("name") or entry[:-5], data.get("state_root") or "/run/handmade-containers")
            for pid, start_time in supervise.find_supervisors(state_dir):
                # SIGTERM: the supervisor stops its container itself; not by hand.
                os.kill(pid, signal.SIGTERM)
                found.append((pid, start_time))
    supervise.wait_gone(found, grace=100.0)
    return 0


def main(argv):
    """``start`` (at boot) or ``stop`` (at shutdown): what the unit runs."""
    places = DEFAULT_PLACES
    action = argv[0] if argv else "start"
    status = _start_all(places) if action == "start" else _stop_all(places)
    sys.stdout.flush()
    os._exit(status)
