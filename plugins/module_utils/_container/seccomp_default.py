# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker's default seccomp profile, as Python data in Docker's JSON shape.

The rules are those of moby's default profile (``profiles/seccomp/default.json``,
Apache-2.0, The Moby Authors), which Docker applies to every ``docker run``
without ``--security-opt seccomp=...``, as Docker 28 ships it (28.2 and
later): the syscalls of Linux up to 6.13 (libseccomp 2.6.0), the ``lsm_*``
calls only with CAP_SYS_ADMIN, ``socket`` refused for AF_VSOCK (40) and the
kernel keyring calls (``add_key``, ``keyctl``, ``request_key``) refused.

In short: every syscall not named below fails with EPERM. Calls that reach
beyond the container (mount, namespaces, modules, the clock, reboot, BPF,
perf, ptrace of other processes) are allowed only together with the
capability that the kernel would check anyway. ``clone`` is allowed only
without namespace flags unless CAP_SYS_ADMIN is kept, and ``clone3``, whose
flags sit behind a pointer that seccomp cannot read, fails with ENOSYS so
that glibc falls back to ``clone``.

Keep the data in Docker's shape: a user profile given by path has the same
form and goes through the same compiler (seccomp.py). Names an architecture
lacks are skipped there.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

# Calls every container may make.
# (One string split at import: 361 separate string constants cost more to
# load in the fresh interpreter each task runs in.)
_ALLOWED = tuple("""
    accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
    clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
    clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
    eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
    fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync
    fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
    ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat
    getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
    getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
    getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
    get_thread_area gettid gettimeofday getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init
    inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
    io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule
    landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount
    listxattr listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
    map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
    mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
    mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock
    munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
    pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64
    preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read
    readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages
    removexattr removexattrat rename renameat renameat2 restart_syscall riscv_hwprobe rmdir rseq
    rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
    rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
    sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
    sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
    sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
    sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
    setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
    setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
    setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask
    sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statmount statx symlink symlinkat
    sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
    timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
    timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask
    uname unlink unlinkat uretprobe utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid
    waitpid write writev
""".split())

# What CAP_SYS_ADMIN guards: mounts, namespaces, the domain and host names,
# quotas, BPF, perf, fanotify, the LSM attribute calls. Without it, clone and
# clone3 get the restricted rules further down.
_SYS_ADMIN = (
    "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
    "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount", "mount_setattr", "move_mount",
    "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
    "syslog", "umount", "umount2", "unshare",
)

# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
# | CLONE_NEWPID | CLONE_NEWNET: clone is allowed when none of them is set.
_CLONE_NAMESPACE_FLAGS = 0x7E020000


def _allow(names, **conditions):
    rule = {"names": tuple(names), "action": "SCMP_ACT_ALLOW"}
    rule.update(conditions)
    return rule


def _with_cap(capability, *names):
    return _allow(names, includes={"caps": (capability,)})


def _personality(value):
    return _allow(("personality",), args=({"index": 0, "value": value, "op": "SCMP_CMP_EQ"},))


DEFAULT_PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": (
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ("SCMP_ARCH_X86", "SCMP_ARCH_X32")},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ("SCMP_ARCH_ARM",)},
        {"architecture": "SCMP_ARCH_MIPS64", "subArchitectures": ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32")},
        {"architecture": "SCMP_ARCH_MIPS64N32", "subArchitectures": ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64")},
        {"architecture": "SCMP_ARCH_MIPSEL64", "subArchitectures": ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32")},
        {"architecture": "SCMP_ARCH_MIPSEL64N32", "subArchitectures": ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64")},
        {"architecture": "SCMP_ARCH_S390X", "subArchitectures": ("SCMP_ARCH_S390",)},
        {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": None},
    ),
    "syscalls": (
        _allow(_ALLOWED),
        # Tracing one's own children: safe once the kernel checks ptrace
        # access itself (4.8 closed the seccomp bypass through ptrace).
        _allow(("process_vm_readv", "process_vm_writev", "ptrace"), includes={"minKernel": "4.8"}),
        # Every address family but AF_VSOCK, which reaches the host and the
        # VMs next to it whatever the network namespace.
        _allow(("socket",), args=({"index": 0, "value": 40, "op": "SCMP_CMP_NE"},)),
        # personality(): only the execution domains programs really ask for
        # (PER_LINUX, PER_LINUX32, with UNAME26) and the query 0xffffffff.
        _personality(0x0),
        _personality(0x0008),
        _personality(0x20000),
        _personality(0x20008),
        _personality(0xffffffff),
        _allow(("sync_file_range2", "swapcontext"), includes={"arches": ("ppc64le",)}),
        _allow(("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
                "set_tls"), includes={"arches": ("arm", "arm64")}),
        _allow(("arch_prctl",), includes={"arches": ("amd64", "x32")}),
        _allow(("modify_ldt",), includes={"arches": ("amd64", "x32", "x86")}),
        _allow(("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
               includes={"arches": ("s390", "s390x")}),
        _allow(("riscv_flush_icache",), includes={"arches": ("riscv64",)}),
        _with_cap("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
        _with_cap("CAP_SYS_ADMIN", *_SYS_ADMIN),
        _allow(("clone",), args=({"index": 0, "value": _CLONE_NAMESPACE_FLAGS, "op": "SCMP_CMP_MASKED_EQ"},),
               excludes={"caps": ("CAP_SYS_ADMIN",), "arches": ("s390", "s390x")}),
        # s390 passes clone's flags second.
        _allow(("clone",), args=({"index": 1, "value": _CLONE_NAMESPACE_FLAGS, "op": "SCMP_CMP_MASKED_EQ"},),
               comment="s390 parameter ordering for clone is different",
               includes={"arches": ("s390", "s390x")}, excludes={"caps": ("CAP_SYS_ADMIN",)}),
        # ENOSYS, not EPERM: glibc then falls back to clone, which the rule
        # above can check.
        {"names": ("clone3",), "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ("CAP_SYS_ADMIN",)}},
        _with_cap("CAP_SYS_BOOT", "reboot"),
        _with_cap("CAP_SYS_CHROOT", "chroot"),
        _with_cap("CAP_SYS_MODULE", "delete_module", "init_module", "finit_module"),
        _with_cap("CAP_SYS_PACCT", "acct"),
        _with_cap("CAP_SYS_PTRACE", "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                  "process_vm_writev", "ptrace"),
        _with_cap("CAP_SYS_RAWIO", "iopl", "ioperm"),
        _with_cap("CAP_SYS_TIME", "settimeofday", "stime", "clock_settime", "clock_settime64"),
        _with_cap("CAP_SYS_TTY_CONFIG", "vhangup"),
        _with_cap("CAP_SYS_NICE", "get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
        _with_cap("CAP_SYSLOG", "syslog"),
        _with_cap("CAP_BPF", "bpf"),
        _with_cap("CAP_PERFMON", "perf_event_open"),
    ),
}
