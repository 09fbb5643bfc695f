/*
 * isolation_probe: the system calls a hostile root process inside a
 * container would make that busybox cannot, one per argument, each reported
 * on a line of its own:
 *
 *     NAME ok [VALUE]      the call succeeded (VALUE: what it returned)
 *     NAME err ERRNO       it failed with that errno number
 *
 * Arguments (run in order; "int80" last, since it may end the process):
 *
 *     keysearch:DESC   keyctl(KEYCTL_SEARCH) for the "user" key DESC in the
 *                      session keyring (ENOKEY 126: not there)
 *     keyring          keyctl(KEYCTL_GET_KEYRING_ID) of the session keyring
 *                      (VALUE: its serial; no keyring is created)
 *     add_key          add_key("user", ...) to the session keyring
 *     vsock            socket(AF_VSOCK, SOCK_STREAM, 0)
 *     userfaultfd      userfaultfd(UFFD_USER_MODE_ONLY | O_CLOEXEC), which
 *                      the kernel allows without CAP_SYS_PTRACE
 *     int80            the i386 getpid (20) through int $0x80 (VALUE: the
 *                      pid; a filter that checks the architecture kills
 *                      the process with SIGSYS before anything is printed)
 *
 * Static (gcc -static), so that it runs in any rootfs. Raw syscall(2), no
 * libkeyutils: the numbers come from the kernel headers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEYCTL_GET_KEYRING_ID 0
#define KEYCTL_SEARCH 10
#define KEY_SPEC_SESSION_KEYRING (-3)
#define PROBE_AF_VSOCK 40
#define PROBE_UFFD_USER_MODE_ONLY 1

static void report(const char *name, long result)
{
    if (result < 0)
        printf("%s err %d\n", name, errno);
    else
        printf("%s ok %ld\n", name, result);
    fflush(stdout);
}

static long int80_getpid(void)
{
#if defined(__x86_64__)
    long ret;
    /* int $0x80 enters the i386 syscall table whatever the program's
     * bitness; 20 is getpid there. r8-r11 are clobbered by the entry. */
    __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
    if (ret < 0) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
#else
    errno = ENOSYS;
    return -1;
#endif
}

int main(int argc, char **argv)
{
    int status = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "keysearch:", 10) == 0) {
            report("keysearch", syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user",
                                        arg + 10, 0));
        } else if (strcmp(arg, "keyring") == 0) {
            report("keyring", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
        } else if (strcmp(arg, "add_key") == 0) {
            report("add_key", syscall(SYS_add_key, "user", "handmade-isolation-probe", "x", 1,
                                      KEY_SPEC_SESSION_KEYRING));
        } else if (strcmp(arg, "vsock") == 0) {
            long fd = socket(PROBE_AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
            report("vsock", fd);
            if (fd >= 0)
                close((int)fd);
        } else if (strcmp(arg, "userfaultfd") == 0) {
            long fd = syscall(SYS_userfaultfd, O_CLOEXEC | PROBE_UFFD_USER_MODE_ONLY);
            report("userfaultfd", fd);
            if (fd >= 0)
                close((int)fd);
        } else if (strcmp(arg, "int80") == 0) {
            report("int80", int80_getpid());
        } else {
            fprintf(stderr, "isolation_probe: unknown probe %s\n", arg);
            status = 2;
        }
    }
    return status;
}
