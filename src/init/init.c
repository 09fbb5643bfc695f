/*
 * Copyright: handmade.containers contributors
 * GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
 *
 * The built-in init of a container started with `init: true`, the part
 * `docker run --init` gives a container through tini: PID 1 that
 *
 *   - runs the command as its one child;
 *   - forwards the signals a process manager sends (SIGTERM, SIGINT, SIGHUP,
 *     SIGQUIT, SIGUSR1, SIGUSR2, the others listed in FORWARDED and the
 *     realtime ones) to it, and drops every other signal sent to it:
 *     a shell as PID 1 ignores SIGTERM, since the kernel drops signals to a
 *     namespace's init that has no handler for them;
 *   - reaps every orphan the kernel re-parents to it, so that zombies do
 *     not pile up in the container's PID table;
 *   - exits with the command's status, 128 + N when signal N killed it, as
 *     a shell reports it. The other processes of the PID namespace then go
 *     with it (the kernel kills them when its init exits).
 *
 * It needs nothing from the image: no libc, no loader, no file. It is
 * built static and freestanding (scripts/build-init.sh, for x86_64 and
 * aarch64), shipped as bytes in plugins/module_utils/_container/init_program.py,
 * written to a sealed memfd by the container's future PID 1 and executed
 * from that fd, so it is never a path in the rootfs or on the host.
 *
 * Usage: init EXECUTABLE ARGV0 [ARG...]: execve(EXECUTABLE, [ARGV0, ARG...]).
 *
 * How the signals arrive: every signal stays blocked, and it takes them
 * one at a time with rt_sigtimedwait. A blocked
 * signal is queued even to a namespace's init without a handler (the kernel
 * ignores only unblocked ones), which is what makes a handler unnecessary.
 * The process that execs init blocks every signal first (init.finalize):
 * the mask and the pending signals survive execve, so a SIGTERM sent the
 * instant the container starts waits for the loop below instead of being
 * dropped before init could block it. The command gets an empty mask.
 */

#if defined(__x86_64__)
#define NR_WRITE 1
#define NR_RT_SIGPROCMASK 14
#define NR_CLONE 56
#define NR_EXECVE 59
#define NR_WAIT4 61
#define NR_KILL 62
#define NR_RT_SIGTIMEDWAIT 128
#define NR_PRCTL 157
#define NR_EXIT_GROUP 231

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

/* The kernel enters with argc at the stack pointer; hand that to main. */
__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "  xor %rbp, %rbp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call start\n"
        "  hlt\n");

#elif defined(__aarch64__)
#define NR_WRITE 64
#define NR_EXIT_GROUP 94
#define NR_KILL 129
#define NR_RT_SIGPROCMASK 135
#define NR_RT_SIGTIMEDWAIT 137
#define NR_PRCTL 167
#define NR_CLONE 220
#define NR_EXECVE 221
#define NR_WAIT4 260

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
}

__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  mov x0, sp\n"
        "  bl start\n"
        "  brk #0\n");

#else
#error "the built-in init is written for x86_64 and aarch64"
#endif

#define SIGCHLD 17
#define SIG_BLOCK 0
#define SIG_SETMASK 2
#define WNOHANG 1
#define EINTR 4
#define ECHILD 10
#define PR_SET_CHILD_SUBREAPER 36
#define SIGSET_BYTES 8

typedef unsigned long sigset;

/* Everything a process manager or a user sends to stop, reload or tell a
 * program something, and every realtime signal (34 to 64; 32 and 33 are
 * the C library's own). Not forwarded, but taken and dropped so that none
 * stays queued on init: SIGKILL and SIGSTOP cannot be caught (the kernel
 * applies them to init itself, or ignores them from inside); the signals
 * the CPU raises for a fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP,
 * SIGSYS, SIGABRT), which the command raises for itself; the terminal's
 * job control (SIGTSTP, SIGTTIN, SIGTTOU: init has no terminal to stop on);
 * SIGCHLD, which is init's. */
static const int FORWARDED[] = {
    1,  /* SIGHUP */
    2,  /* SIGINT */
    3,  /* SIGQUIT */
    10, /* SIGUSR1 */
    12, /* SIGUSR2 */
    13, /* SIGPIPE */
    14, /* SIGALRM */
    15, /* SIGTERM */
    18, /* SIGCONT */
    23, /* SIGURG */
    24, /* SIGXCPU */
    25, /* SIGXFSZ */
    26, /* SIGVTALRM */
    27, /* SIGPROF */
    28, /* SIGWINCH */
    29, /* SIGIO */
    30, /* SIGPWR */
};
#define FIRST_REALTIME 34
#define LAST_SIGNAL 64

static int forwarded(long signal)
{
    unsigned int i;
    if (signal >= FIRST_REALTIME && signal <= LAST_SIGNAL)
        return 1;
    for (i = 0; i < sizeof(FORWARDED) / sizeof(FORWARDED[0]); i++)
        if (FORWARDED[i] == signal)
            return 1;
    return 0;
}

static unsigned long length(const char *text)
{
    unsigned long n = 0;
    while (text[n])
        n++;
    return n;
}

static void say(const char *text)
{
    sys6(NR_WRITE, 2, (long)text, (long)length(text), 0, 0, 0);
}

static void say_errno(long negative_errno)
{
    char digits[24];
    int at = sizeof(digits) - 1;
    unsigned long value = (unsigned long)-negative_errno;
    digits[at] = 0;
    do {
        digits[--at] = (char)('0' + value % 10);
        value /= 10;
    } while (value && at > 0);
    say(digits + at);
}

static void leave(int status)
{
    for (;;)
        sys6(NR_EXIT_GROUP, status, 0, 0, 0, 0, 0);
}

/* A shell's way of telling how a child ended: its exit status, or 128 + N
 * when signal N ended it. */
static int shell_status(int wait_status)
{
    int signal = wait_status & 0x7f;
    if (signal == 0)
        return (wait_status >> 8) & 0xff;
    return 128 + signal;
}

__attribute__((used)) void start(long *stack)
{
    long argc = stack[0];
    char **argv = (char **)(stack + 1);
    char **envp = argv + argc + 1;
    /* Every signal: the ones to forward, SIGCHLD, and the rest to drop. */
    sigset waited = ~0UL;
    sigset none = 0;
    unsigned char info[128];
    long child, signal, pid;
    int status;

    if (argc < 3) {
        say("handmade-init: usage: init EXECUTABLE ARGV0 [ARG...]\n");
        leave(127);
    }
    /* Orphans come to init anyway when it is PID 1; this holds them even in
     * a container that shares the host's PID namespace. */
    sys6(NR_PRCTL, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0, 0);
    /* Blocked before the fork (already, when started by the collection):
     * a signal sent while the child starts waits for the loop below. */
    sys6(NR_RT_SIGPROCMASK, SIG_BLOCK, (long)&waited, 0, SIGSET_BYTES, 0, 0);

    child = sys6(NR_CLONE, SIGCHLD, 0, 0, 0, 0, 0);
    if (child < 0) {
        say("handmade-init: cannot fork the command: errno ");
        say_errno(child);
        say("\n");
        leave(127);
    }
    if (child == 0) {
        long failed;
        sys6(NR_RT_SIGPROCMASK, SIG_SETMASK, (long)&none, 0, SIGSET_BYTES, 0, 0);
        failed = sys6(NR_EXECVE, (long)argv[1], (long)(argv + 2), (long)envp, 0, 0, 0);
        say("handmade-init: cannot exec ");
        say(argv[1]);
        say(": errno ");
        say_errno(failed);
        say("\n");
        leave(127);
    }

    for (;;) {
        signal = sys6(NR_RT_SIGTIMEDWAIT, (long)&waited, (long)info, 0, SIGSET_BYTES, 0, 0);
        if (signal == -EINTR)
            continue; /* a stop and continue of init itself */
        if (signal < 0) {
            /* No signals to take (a seccomp profile without
             * rt_sigtimedwait): reap, without forwarding, rather than spin. */
            say("handmade-init: cannot wait for signals, errno ");
            say_errno(signal);
            say(": reaping only\n");
            for (;;) {
                pid = sys6(NR_WAIT4, -1, (long)&status, 0, 0, 0, 0);
                if (pid == child)
                    leave(shell_status(status));
                if (pid < 0 && pid != -EINTR)
                    leave(127);
            }
        }
        if (signal != SIGCHLD) {
            if (forwarded(signal))
                sys6(NR_KILL, child, signal, 0, 0, 0, 0);
            continue;
        }
        /* One SIGCHLD may stand for many children: reap until none is left
         * to reap right now. */
        for (;;) {
            pid = sys6(NR_WAIT4, -1, (long)&status, WNOHANG, 0, 0, 0);
            if (pid <= 0)
                break;
            if (pid == child)
                leave(shell_status(status));
        }
    }
}
