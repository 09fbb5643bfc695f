# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container settings as data: one row per option.

Every setting a container can have is one ``Option`` row of ``OPTIONS``.
A row knows its Ansible type, its one default, its documentation, whether
it is part of the config digest (a change recreates the container) and what
``exec`` does with it:

* ``EXEC_TASK``: exec uses the task's value (the command);
* ``EXEC_MERGE``: the task's value is merged over the container's (env);
* ``EXEC_INHERIT``: the task's value if given, else the container's (workdir, user);
* ``EXEC_FIXED``: always the container's; exec cannot change it (namespaces,
  capabilities: ``docker exec`` joins what the container has).

Modules build their argument_spec from the table (``argument_spec()``), the
doc fragment ``handmade.containers.container_options`` repeats its
documentation (a unit test keeps the two equal), ``settings()`` applies the
defaults, and ``spec.build_spec`` turns the settings into a launchable
spec. Adding an option is adding a row here plus the code that uses it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.handmade.containers.plugins.module_utils._capabilities import DEFAULT_CAPABILITIES
from ansible_collections.handmade.containers.plugins.module_utils._container import restarts

EXEC_TASK = "task"
EXEC_MERGE = "merge"
EXEC_INHERIT = "inherit"
EXEC_FIXED = "fixed"

DEFAULT_NAMESPACES = ("pid", "mount", "uts", "ipc", "net", "cgroup")
DEFAULT_STOP_TIMEOUT = 10.0


class Option:
    """One container setting.

    ``default`` is the only default of the setting. Options that ``exec``
    may take from the container (``EXEC_INHERIT``, ``EXEC_MERGE``) keep it
    out of the argument_spec, so that a task which leaves them out can be
    told from one that asks for the default; ``settings()`` applies it.
    """

    def __init__(self, name, type, description, default=None, elements=None, choices=None,
                 suboptions=None, digest=True, on_exec=EXEC_FIXED, digest_omits_default=False):
        self.name = name
        self.type = type
        self.description = description
        self.default = default
        self.elements = elements
        self.choices = choices
        self.suboptions = suboptions
        self.digest = digest
        self.on_exec = on_exec
        # An option added after containers already ran: at its default it is
        # left out of the config digest, so that a container started before
        # the option existed (and so with its default) is not recreated.
        self.digest_omits_default = digest_omits_default
        self.required = False  # only a suboption (a volume's dest) is ever required

    @property
    def argument_default(self):
        """The default the argument_spec (and so the documentation) carries."""
        if self.on_exec in (EXEC_INHERIT, EXEC_MERGE):
            return None
        return self.default

    def argument(self):
        """This row as an AnsibleModule argument_spec entry."""
        entry = {"type": self.type}
        for key, value in (("elements", self.elements), ("choices", self.choices),
                           ("default", _copy(self.argument_default))):
            if value is not None:
                entry[key] = list(value) if isinstance(value, tuple) else value
        if self.suboptions:
            entry["options"] = dict((sub.name, sub.argument()) for sub in self.suboptions)
        return entry

    def documentation(self):
        """This row as the option's entry in the module documentation."""
        entry = {"description": list(self.description), "type": self.type}
        for key, value in (("elements", self.elements), ("choices", self.choices),
                           ("default", _copy(self.argument_default))):
            if value is not None:
                entry[key] = list(value) if isinstance(value, tuple) else value
        if self.required:
            entry["required"] = True
        if self.suboptions:
            entry["suboptions"] = dict((sub.name, sub.documentation()) for sub in self.suboptions)
        return entry


class SubOption(Option):
    """An option of a list of dicts (a volume's dest, type, ...)."""

    def __init__(self, name, type, description, default=None, choices=None, required=False):
        Option.__init__(self, name, type, description, default=default, choices=choices)
        self.required = required

    def argument(self):
        entry = Option.argument(self)
        if self.required:
            entry["required"] = True
        return entry


def _copy(value):
    return list(value) if isinstance(value, (list, tuple)) else value


MOUNT_SUBOPTIONS = (
    SubOption("src", "path", ["Host path for V(bind) mounts."]),
    SubOption("dest", "str", ["Absolute path inside the container."], required=True),
    SubOption("type", "str", ["V(bind) a host path, or a fresh V(tmpfs)."], default="bind",
              choices=("bind", "tmpfs")),
    SubOption("readonly", "bool", [
        "Mount it read-only, all the way down: mounts below O(mounts[].src) on the host are read-only "
        "inside too."], default=False),
    SubOption("options", "str", ["Mount data for V(tmpfs), for example V(size=64m,mode=1777)."]),
)

OPTIONS = (
    Option("name", "str", [
        "Container name, V([A-Za-z0-9][A-Za-z0-9_.-]*), at most 63 characters.",
        "Required for every O(state) but V(run). Also the default O(hostname).",
    ], digest=False),
    Option("rootfs", "path", [
        "Path of the root filesystem on the managed host, for example what "
        "M(handmade.containers.rootfs_fetch) extracted.",
        "Required for O(state=run) and O(state=started).",
    ]),
    Option("command", "raw", [
        "The program and its arguments, as a list (no shell involved) or a string split like a shell "
        "would split it.",
        "A name without C(/) is looked up in the container's C(PATH) inside the rootfs.",
    ], default="/bin/sh", on_exec=EXEC_TASK),
    Option("env", "dict", [
        "Environment variables for the command. C(PATH) defaults to "
        "V(/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin), C(HOME) and C(HOSTNAME) are set too.",
        "With O(state=exec), added to the environment the container was started with.",
    ], default={}, on_exec=EXEC_MERGE),
    Option("workdir", "str", [
        "Working directory inside the container. Default V(/).",
        "With O(state=exec), the working directory the container was started with unless given.",
    ], default="/", on_exec=EXEC_INHERIT),
    Option("user", "str", [
        "V(uid[:gid]) or V(name[:group]) (names looked up in the rootfs' C(/etc/passwd) and "
        "C(/etc/group)). Default root.",
        "A non-root user keeps O(capabilities) as ambient capabilities.",
        "With O(state=exec), the user the container was started with unless given.",
    ], on_exec=EXEC_INHERIT),
    Option("hostname", "str", [
        "Hostname inside the container (needs the V(uts) namespace). Default O(name).",
    ]),
    Option("namespaces", "list", [
        "The namespaces to create. V(mount) is required (the rootfs is pivot_root'ed in it). Leave V(net) "
        "out to share the host's network; with it the container has only C(lo), up.",
        "V(user) is refused for now.",
    ], default=DEFAULT_NAMESPACES, elements="str"),
    Option("init", "bool", [
        "Run the command under a small init as PID 1, as C(docker run --init) does with tini. The init "
        "forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and the other signals a process manager "
        "sends to the command, reaps orphaned processes, and exits with the command's status (128 + N when "
        "signal N ended it).",
        "Set it when the command does not act as an init: a shell as PID 1 ignores SIGTERM (the kernel drops "
        "signals to a namespace's init that has no handler for them), so O(state=stopped) waits the whole "
        "O(stop_timeout); a program that starts processes it does not wait for leaves zombies.",
        "The init is part of the collection (x86_64 and aarch64, about 1.5 KB, 16 kB of memory), so the image "
        "needs nothing for it. It runs from a sealed memfd, never from a path in the rootfs or on the host.",
        "Processes of O(state=exec) join the container and are not its children.",
    ], default=False, digest_omits_default=True),
    Option("cgroup", "str", [
        "Name of a cgroup made by M(handmade.containers.cgroup), for example V(handmade/web). The "
        "container joins it before it runs anything.",
    ]),
    Option("cgroup_parent", "str", [
        "Where a container without O(cgroup) gets a cgroup of its own, C(<cgroup_parent>/<name>), made "
        "before it starts and removed with it, as C(docker run --cgroup-parent). V(handmade) or a cgroup "
        "below it, such as V(handmade/web). Default V(handmade/containers).",
        "Mutually exclusive with O(cgroup).",
    ]),
    Option("mounts", "list", [
        "Volumes. C(dest) is resolved inside the rootfs the way the container sees it; a C(dest) that "
        "climbs out of the rootfs (through C(..) or a symlink) is refused. Missing mount points are created.",
    ], default=(), elements="dict", suboptions=MOUNT_SUBOPTIONS),
    Option("readonly_rootfs", "bool", [
        "Make the root filesystem read-only inside the container, all the way down (mounts below the "
        "rootfs on the host are read-only inside too). C(/dev), C(/dev/shm) and tmpfs volumes stay writable.",
    ], default=False),
    Option("capabilities", "list", [
        "Capabilities the container keeps (names with or without C(CAP_)). Every other one is dropped "
        "from all sets and from the bounding set.",
        "The default is Docker's set of 14.",
    ], default=DEFAULT_CAPABILITIES, elements="str"),
    Option("no_new_privileges", "bool", [
        "Set C(PR_SET_NO_NEW_PRIVS), so setuid binaries cannot raise privileges.",
    ], default=True),
    Option("seccomp", "str", [
        "The seccomp filter installed right before the command runs, in every process of the container "
        "(O(state=exec) included).",
        "V(default) is Docker's default profile: an allowlist of system calls, everything else fails with "
        "C(EPERM); namespaces, mounts, the kernel keyring, BPF, kernel modules, userfaultfd and C(AF_VSOCK) "
        "sockets are refused unless O(capabilities) keeps the capability Docker asks for. Calls of another "
        "architecture (32-bit C(int 0x80) on x86_64) kill the process.",
        "V(unconfined) installs none. An absolute path names a profile in Docker's JSON format on the managed host.",
    ], default="default"),
    Option("devices", "list", [
        "Host devices the container may use, as C(docker run --device) takes them: V(/dev/fuse), "
        "V(/dev/net/tun), V(/dev/loop7:rw), V(/dev/sdb:/dev/xvdb:rwm) (host path, path inside, access), or a "
        "dict with C(path), C(container_path) and C(access), or C(type), C(major), C(minor) and C(access) for "
        "a rule alone.",
        "Every other device stays refused: the container's cgroup denies all devices but Docker's set (null, "
        "zero, full, random, urandom, tty, console, ptmx, the ptys, /dev/net/tun), through the v1 devices "
        "controller or, on cgroup v2, a BPF device program. Making a node (mknod) is allowed, opening it is not.",
    ], default=(), elements="raw"),
    Option("stop_timeout", "float", [
        "Seconds between SIGTERM and SIGKILL when stopping. Default V(10).",
        "Recorded with a started container: O(state=stopped) and O(state=absent) use the value it was "
        "started with unless the task gives one, as C(docker stop) does.",
    ], default=DEFAULT_STOP_TIMEOUT, digest=False, on_exec=EXEC_INHERIT),
    Option("restart_policy", "str", [
        "With O(state=started), what the container's supervisor does when the container exits, as "
        "C(docker run --restart): V(no) leaves it exited; V(on-failure) starts it again after an exit other "
        "than 0, at most O(restart_retries) times in a row; V(always) and V(unless-stopped) start it again "
        "after every exit.",
        "A container stopped by a task (O(state=stopped), O(state=absent), a recreate) is never restarted. "
        "After a reboot of a host that runs systemd, V(always) containers start again, and V(unless-stopped) "
        "ones unless a task had stopped them.",
        "The delay before a restart doubles from 100 ms up to one minute, and starts again from 100 ms once "
        "the container had run 10 seconds. A change recreates a running container.",
    ], default="no", choices=restarts.POLICIES, digest_omits_default=True),
    Option("restart_retries", "int", [
        "With O(restart_policy=on-failure), how many restarts in a row are made before the container is "
        "left exited (C(docker run --restart on-failure:N)); V(0) for no limit.",
    ], default=0, digest_omits_default=True),
    Option("healthcheck", "dict", [
        "With O(state=started), a check of the service inside, as C(docker run --health-cmd): the container's "
        "supervisor runs O(healthcheck.test) inside the container (as O(state=exec) does, with the container's "
        "user, capabilities, seccomp filter and cgroup) every O(healthcheck.interval). Exit 0 is healthy, any "
        "other exit or a check that outlives O(healthcheck.timeout) a failure.",
        "The health starts as V(starting); the first success makes it V(healthy), O(healthcheck.retries) "
        "failures in a row V(unhealthy). M(handmade.containers.container_info) returns it with the last 5 "
        "results (each with at most 4096 bytes of output). A container that is restarted starts as "
        "V(starting) again.",
        "Durations are seconds or Docker's spelling (V(30s), V(1m30s), V(500ms)). A change recreates a "
        "running container.",
    ], suboptions=(
        SubOption("test", "raw", [
            "The check. A string is a command line run by C(/bin/sh -c) in the container (Docker's "
            "V(CMD-SHELL)); a list is a program and its arguments, looked up in the container's C(PATH), "
            "optionally after V(CMD) (or V([CMD-SHELL, <command line>])).",
        ], required=True),
        SubOption("interval", "raw", ["Time from the end of one check to the start of the next, and before the "
                                      "first. At least V(1ms). Default V(30s)."]),
        SubOption("timeout", "raw", ["How long one check may run before it is killed and counted as a failure. "
                                     "At least V(1ms). Default V(30s)."]),
        SubOption("retries", "int", ["Failures in a row that make the container V(unhealthy). Default V(3)."]),
        SubOption("start_period", "raw", [
            "Time after the start during which failures do not count, until the first success. Default V(0s)."]),
    ), digest_omits_default=True),
    Option("wait_healthy", "bool", [
        "With O(state=started), return only once the container's health is V(healthy), as the "
        "C(state: healthy) of community.docker.docker_container; needs O(healthcheck). The task fails, leaving "
        "the container running, when it is not healthy after O(wait_healthy_timeout) seconds, or exits for "
        "good meanwhile; the message quotes the last check's output.",
    ], default=False, digest=False),
    Option("wait_healthy_timeout", "float", [
        "With O(wait_healthy=true), how many seconds to wait for V(healthy). Default V(300).",
    ], default=300.0, digest=False),
    Option("log_max_size", "raw", [
        "With O(state=started), the size at which C(container.log) is rotated, as the C(max-size) of Docker's "
        "json-file log driver: V(5m), V(512k), V(1g) (1024-based) or bytes. At least V(1k); the log is always "
        "rotated, since it lives in C(/run) (memory on most hosts).",
        "When the next output would not fit, the file is cut at the end of a line and renamed "
        "C(container.log.1) (C(.1) becomes C(.2), and so on) and a new C(container.log) is started. The "
        "container's supervisor, one process per container, writes it (see the ns_exec documentation).",
        "With the default O(log_max_files), at most 20 MiB of log are kept. A change recreates a running "
        "container, as Docker does for its log options.",
    ], default="5m"),
    Option("log_max_files", "int", [
        "With O(state=started), how many log files are kept, the current one included, as the C(max-file) of "
        "Docker's json-file log driver: 1 to 1000. The oldest is dropped at each rotation.",
        "At most O(log_max_size) times O(log_max_files) bytes of log stay on disk, plus in each file the rest of "
        "the line that was under way when it was cut (at most 64 KiB).",
    ], default=4),
)

OPTIONS_BY_NAME = dict((option.name, option) for option in OPTIONS)


def argument_spec():
    """The container options as an AnsibleModule argument_spec (a fresh dict each call)."""
    return dict((option.name, option.argument()) for option in OPTIONS)


def documentation():
    """The container options as the doc fragment documents them."""
    return dict((option.name, option.documentation()) for option in OPTIONS)


def settings(params, started_with=None):
    """Every container setting from a task's ``params``, defaults applied.

    ``started_with`` is the settings of the running container, for
    ``exec``: each row then takes the task's value, the container's, or both
    merged, as its ``on_exec`` says.
    """
    values = {}
    for option in OPTIONS:
        given = params.get(option.name)
        if started_with is not None and option.on_exec != EXEC_TASK:
            recorded = started_with.get(option.name)
            if option.on_exec == EXEC_FIXED or (option.on_exec == EXEC_INHERIT and given is None):
                given = recorded
            elif option.on_exec == EXEC_MERGE:
                merged = dict(recorded or {})
                merged.update(given or {})
                given = merged
        values[option.name] = _copy(option.default) if given is None else given
    if isinstance(values["env"], dict):
        values["env"] = dict(values["env"])
    return values


def recorded(values):
    """Every setting of a container's record, by option: an option added after the record was written
    (``digest_omits_default``) reads as its default, what the container ran with."""
    return dict((option.name, values.get(option.name, option.default if option.digest_omits_default else None))
                for option in OPTIONS)


def defining(values):
    """The settings that define a container, as diffs and ``changed_settings`` compare them."""
    every = recorded(values)
    return dict((option.name, every[option.name]) for option in OPTIONS if option.digest)


def digest_input(values):
    """What the config digest covers: the defining settings, less those added later and left at their default."""
    return dict((name, value) for name, value in defining(values).items()
                if not (OPTIONS_BY_NAME[name].digest_omits_default and value == OPTIONS_BY_NAME[name].default))
