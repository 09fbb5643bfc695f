# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # The container options of plugins/module_utils/_container/options.py,
    # as every module that starts containers documents them. The table is
    # the source: tests/unit/plugins/doc_fragments/test_container_options.py
    # keeps this text equal to it (print it anew with `PYTHONPATH=.build/collections
    # python3 tests/unit/plugins/doc_fragments/test_container_options.py`).
    DOCUMENTATION = r"""
options:
  name:
    description:
      - Container name, V([A-Za-z0-9][A-Za-z0-9_.-]*), at most 63 characters.
      - Required for every O(state) but V(run). Also the default O(hostname).
    type: str
  rootfs:
    description:
      - Path of the root filesystem on the managed host, for example what M(handmade.containers.rootfs_fetch) extracted.
      - Required for O(state=run) and O(state=started).
    type: path
  command:
    description:
      - The program and its arguments, as a list (no shell involved) or a string split like a shell would split
        it.
      - A name without C(/) is looked up in the container's C(PATH) inside the rootfs.
    type: raw
    default: /bin/sh
  env:
    description:
      - Environment variables for the command. C(PATH) defaults to V(/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin),
        C(HOME) and C(HOSTNAME) are set too.
      - With O(state=exec), added to the environment the container was started with.
    type: dict
  workdir:
    description:
      - Working directory inside the container. Default V(/).
      - With O(state=exec), the working directory the container was started with unless given.
    type: str
  user:
    description:
      - V(uid[:gid]) or V(name[:group]) (names looked up in the rootfs' C(/etc/passwd) and C(/etc/group)). Default
        root.
      - A non-root user keeps O(capabilities) as ambient capabilities.
      - With O(state=exec), the user the container was started with unless given.
    type: str
  hostname:
    description:
      - Hostname inside the container (needs the V(uts) namespace). Default O(name).
    type: str
  namespaces:
    description:
      - The namespaces to create. V(mount) is required (the rootfs is pivot_root'ed in it). Leave V(net) out to
        share the host's network; with it the container has only C(lo), up.
      - V(user) is refused for now.
    type: list
    elements: str
    default:
      - pid
      - mount
      - uts
      - ipc
      - net
      - cgroup
  init:
    description:
      - Run the command under a small init as PID 1, as C(docker run --init) does with tini. The init forwards SIGTERM,
        SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and the other signals a process manager sends to the command,
        reaps orphaned processes, and exits with the command's status (128 + N when signal N ended it).
      - 'Set it when the command does not act as an init: a shell as PID 1 ignores SIGTERM (the kernel drops signals
        to a namespace''s init that has no handler for them), so O(state=stopped) waits the whole O(stop_timeout);
        a program that starts processes it does not wait for leaves zombies.'
      - The init is part of the collection (x86_64 and aarch64, about 1.5 KB, 16 kB of memory), so the image needs
        nothing for it. It runs from a sealed memfd, never from a path in the rootfs or on the host.
      - Processes of O(state=exec) join the container and are not its children.
    type: bool
    default: false
  cgroup:
    description:
      - Name of a cgroup made by M(handmade.containers.cgroup), for example V(handmade/web). The container joins
        it before it runs anything.
    type: str
  cgroup_parent:
    description:
      - Where a container without O(cgroup) gets a cgroup of its own, C(<cgroup_parent>/<name>), made before it
        starts and removed with it, as C(docker run --cgroup-parent). V(handmade) or a cgroup below it, such as
        V(handmade/web). Default V(handmade/containers).
      - Mutually exclusive with O(cgroup).
    type: str
  mounts:
    description:
      - Volumes. C(dest) is resolved inside the rootfs the way the container sees it; a C(dest) that climbs out
        of the rootfs (through C(..) or a symlink) is refused. Missing mount points are created.
    type: list
    elements: dict
    default: []
    suboptions:
      src:
        description:
          - Host path for V(bind) mounts.
        type: path
      dest:
        description:
          - Absolute path inside the container.
        type: str
        required: true
      type:
        description:
          - V(bind) a host path, or a fresh V(tmpfs).
        type: str
        choices:
          - bind
          - tmpfs
        default: bind
      readonly:
        description:
          - 'Mount it read-only, all the way down: mounts below O(mounts[].src) on the host are read-only inside
            too.'
        type: bool
        default: false
      options:
        description:
          - Mount data for V(tmpfs), for example V(size=64m,mode=1777).
        type: str
  readonly_rootfs:
    description:
      - Make the root filesystem read-only inside the container, all the way down (mounts below the rootfs on the
        host are read-only inside too). C(/dev), C(/dev/shm) and tmpfs volumes stay writable.
    type: bool
    default: false
  capabilities:
    description:
      - Capabilities the container keeps (names with or without C(CAP_)). Every other one is dropped from all sets
        and from the bounding set.
      - The default is Docker's set of 14.
    type: list
    elements: str
    default:
      - CHOWN
      - DAC_OVERRIDE
      - FSETID
      - FOWNER
      - MKNOD
      - NET_RAW
      - SETGID
      - SETUID
      - SETFCAP
      - SETPCAP
      - NET_BIND_SERVICE
      - SYS_CHROOT
      - KILL
      - AUDIT_WRITE
  no_new_privileges:
    description:
      - Set C(PR_SET_NO_NEW_PRIVS), so setuid binaries cannot raise privileges.
    type: bool
    default: true
  seccomp:
    description:
      - The seccomp filter installed right before the command runs, in every process of the container (O(state=exec)
        included).
      - 'V(default) is Docker''s default profile: an allowlist of system calls, everything else fails with C(EPERM);
        namespaces, mounts, the kernel keyring, BPF, kernel modules, userfaultfd and C(AF_VSOCK) sockets are refused
        unless O(capabilities) keeps the capability Docker asks for. Calls of another architecture (32-bit C(int
        0x80) on x86_64) kill the process.'
      - V(unconfined) installs none. An absolute path names a profile in Docker's JSON format on the managed host.
    type: str
    default: default
  devices:
    description:
      - 'Host devices the container may use, as C(docker run --device) takes them: V(/dev/fuse), V(/dev/net/tun),
        V(/dev/loop7:rw), V(/dev/sdb:/dev/xvdb:rwm) (host path, path inside, access), or a dict with C(path), C(container_path)
        and C(access), or C(type), C(major), C(minor) and C(access) for a rule alone.'
      - 'Every other device stays refused: the container''s cgroup denies all devices but Docker''s set (null, zero,
        full, random, urandom, tty, console, ptmx, the ptys, /dev/net/tun), through the v1 devices controller or,
        on cgroup v2, a BPF device program. Making a node (mknod) is allowed, opening it is not.'
    type: list
    elements: raw
    default: []
  stop_timeout:
    description:
      - Seconds between SIGTERM and SIGKILL when stopping. Default V(10).
      - 'Recorded with a started container: O(state=stopped) and O(state=absent) use the value it was started with
        unless the task gives one, as C(docker stop) does.'
    type: float
  restart_policy:
    description:
      - 'With O(state=started), what the container''s supervisor does when the container exits, as C(docker run
        --restart): V(no) leaves it exited; V(on-failure) starts it again after an exit other than 0, at most O(restart_retries)
        times in a row; V(always) and V(unless-stopped) start it again after every exit.'
      - A container stopped by a task (O(state=stopped), O(state=absent), a recreate) is never restarted. After
        a reboot of a host that runs systemd, V(always) containers start again, and V(unless-stopped) ones unless
        a task had stopped them.
      - The delay before a restart doubles from 100 ms up to one minute, and starts again from 100 ms once the container
        had run 10 seconds. A change recreates a running container.
    type: str
    choices:
      - 'no'
      - on-failure
      - always
      - unless-stopped
    default: 'no'
  restart_retries:
    description:
      - With O(restart_policy=on-failure), how many restarts in a row are made before the container is left exited
        (C(docker run --restart on-failure:N)); V(0) for no limit.
    type: int
    default: 0
  healthcheck:
    description:
      - 'With O(state=started), a check of the service inside, as C(docker run --health-cmd): the container''s supervisor
        runs O(healthcheck.test) inside the container (as O(state=exec) does, with the container''s user, capabilities,
        seccomp filter and cgroup) every O(healthcheck.interval). Exit 0 is healthy, any other exit or a check that
        outlives O(healthcheck.timeout) a failure.'
      - The health starts as V(starting); the first success makes it V(healthy), O(healthcheck.retries) failures
        in a row V(unhealthy). M(handmade.containers.container_info) returns it with the last 5 results (each with
        at most 4096 bytes of output). A container that is restarted starts as V(starting) again.
      - Durations are seconds or Docker's spelling (V(30s), V(1m30s), V(500ms)). A change recreates a running container.
    type: dict
    suboptions:
      test:
        description:
          - The check. A string is a command line run by C(/bin/sh -c) in the container (Docker's V(CMD-SHELL));
            a list is a program and its arguments, looked up in the container's C(PATH), optionally after V(CMD)
            (or V([CMD-SHELL, <command line>])).
        type: raw
        required: true
      interval:
        description:
          - Time from the end of one check to the start of the next, and before the first. At least V(1ms). Default
            V(30s).
        type: raw
      timeout:
        description:
          - How long one check may run before it is killed and counted as a failure. At least V(1ms). Default V(30s).
        type: raw
      retries:
        description:
          - Failures in a row that make the container V(unhealthy). Default V(3).
        type: int
      start_period:
        description:
          - Time after the start during which failures do not count, until the first success. Default V(0s).
        type: raw
  wait_healthy:
    description:
      - 'With O(state=started), return only once the container''s health is V(healthy), as the C(state: healthy)
        of community.docker.docker_container; needs O(healthcheck). The task fails, leaving the container running,
        when it is not healthy after O(wait_healthy_timeout) seconds, or exits for good meanwhile; the message quotes
        the last check''s output.'
    type: bool
    default: false
  wait_healthy_timeout:
    description:
      - With O(wait_healthy=true), how many seconds to wait for V(healthy). Default V(300).
    type: float
    default: 300.0
  log_max_size:
    description:
      - 'With O(state=started), the size at which C(container.log) is rotated, as the C(max-size) of Docker''s json-file
        log driver: V(5m), V(512k), V(1g) (1024-based) or bytes. At least V(1k); the log is always rotated, since
        it lives in C(/run) (memory on most hosts).'
      - When the next output would not fit, the file is cut at the end of a line and renamed C(container.log.1)
        (C(.1) becomes C(.2), and so on) and a new C(container.log) is started. The container's supervisor, one
        process per container, writes it (see the ns_exec documentation).
      - With the default O(log_max_files), at most 20 MiB of log are kept. A change recreates a running container,
        as Docker does for its log options.
    type: raw
    default: 5m
  log_max_files:
    description:
      - 'With O(state=started), how many log files are kept, the current one included, as the C(max-file) of Docker''s
        json-file log driver: 1 to 1000. The oldest is dropped at each rotation.'
      - At most O(log_max_size) times O(log_max_files) bytes of log stay on disk, plus in each file the rest of
        the line that was under way when it was cut (at most 64 KiB).
    type: int
    default: 4
"""
