/* termexit: time from SIGTERM to the init's exit, the init being PID 1 of a new PID namespace.
 *
 * Usage: termexit COMM INIT [ARG...]
 *
 * unshare(CLONE_NEWPID), fork: the child becomes PID 1 of the new namespace and execs
 * INIT ARG... (e.g. `reaper -- sleep 1000`). We wait until the init has a child whose
 * /proc comm is COMM (the command runs), let it settle for 50 ms, then take t0, send SIGTERM
 * to the init, wait for it (SIGCHLD, then waitpid), take t1. Prints "NANOSECONDS WAIT_STATUS". The init's stdout
 * goes to our stderr, so stdout holds only the result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int read_file(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return (int)n;
}

/* Does `init` have a child whose comm is `comm`? */
static int command_running(pid_t init, const char *comm) {
    char path[64], buf[4096], name[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", init, init);
    if (read_file(path, buf, sizeof buf) < 0) return 0;
    for (char *p = buf, *end;; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p) return 0;
        snprintf(path, sizeof path, "/proc/%ld/comm", pid);
        if (read_file(path, name, sizeof name) > 0) {
            name[strcspn(name, "\n")] = 0;
            if (strcmp(name, comm) == 0) return 1;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: termexit COMM INIT [ARG...]\n"); return 2; }
    if (unshare(CLONE_NEWPID) != 0) { perror("unshare(CLONE_NEWPID)"); return 2; }
    /* SIGCHLD is blocked so we can wait for the init with a timeout (sigtimedwait). */
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    pid_t init = fork();
    if (init < 0) { perror("fork"); return 2; }
    if (init == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        dup2(2, 1);
        execv(argv[2], &argv[2]);
        perror(argv[2]);
        _exit(127);
    }
    struct timespec tick = {0, 1000000}, settle = {0, 50000000};
    for (int i = 0; !command_running(init, argv[1]); i++) {
        int status;
        if (waitpid(init, &status, WNOHANG) == init) {
            fprintf(stderr, "termexit: init exited early (status %d)\n", status);
            return 2;
        }
        if (i > 5000) {
            fprintf(stderr, "termexit: %s did not start\n", argv[1]);
            kill(init, SIGKILL);
            return 2;
        }
        nanosleep(&tick, NULL);
    }
    nanosleep(&settle, NULL);
    struct timespec a, b;
    int status;
    clock_gettime(CLOCK_MONOTONIC, &a);
    kill(init, SIGTERM);
    struct timespec limit = {10, 0};
    while (waitpid(init, &status, WNOHANG) != init) {
        if (sigtimedwait(&chld, NULL, &limit) < 0 && errno != EINTR) {
            fprintf(stderr, "termexit: the init did not exit within 10 s of SIGTERM\n");
            kill(init, SIGKILL);
            waitpid(init, &status, 0);
            return 3;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%lld %d\n", (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec), status);
    return 0;
}
