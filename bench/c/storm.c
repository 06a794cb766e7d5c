/* storm: orphan storm under an init that is PID 1 of a fresh PID namespace with its own /proc
 * (unshare --pid --fork --mount-proc INIT -- storm N).
 *
 * t0: we fork N children; each forks one grandchild and exits at once, so every grandchild
 * is re-parented to PID 1, the init (we are not a subreaper). The grandchildren block on a
 * pipe. We reap our own N children (only they are ours), then at t1 close the pipe's write
 * end: all N orphans exit together and the init must reap them. We poll
 * /proc/1/task/1/children, which lists live and zombie children alike, every 200 µs until
 * our own pid is the only one left (t2): no zombie and no orphan remains in the namespace.
 * Prints "orphans=N total_ms=t2-t0 reap_ms=t2-t1". Exit 3 on a 60 s timeout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static char buf[1 << 20];

/* Number of PID 1's children other than us; -1 if the file cannot be read. */
static int others(pid_t self) {
    int fd = open("/proc/1/task/1/children", O_RDONLY);
    if (fd < 0) return -1;
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += r;
    close(fd);
    buf[len] = 0;
    int n = 0;
    for (char *p = buf; *p;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p) break;
        if (pid != self) n++;
        p = end;
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: storm N\n"); return 2; }
    int n = atoi(argv[1]);
    pid_t self = getpid();
    if (getppid() != 1) fprintf(stderr, "storm: warning: parent is %d, not PID 1\n", getppid());
    if (others(self) != 0) { fprintf(stderr, "storm: PID 1 has other children already (or no /proc)\n"); return 2; }
    int go[2];
    if (pipe(go) != 0) { perror("pipe"); return 2; }

    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(go[1]);
            if (fork() == 0) { /* the grandchild: wait for the release, then exit */
                char c;
                while (read(go[0], &c, 1) < 0 && errno == EINTR) {}
                _exit(0);
            }
            _exit(0);
        }
        if (pid < 0) { perror("storm: fork"); return 2; }
    }
    while (waitpid(-1, NULL, 0) > 0) {}
    int orphans = others(self);
    if (orphans != n) fprintf(stderr, "storm: warning: %d orphans re-parented, expected %d\n", orphans, n);
    double t1 = now_ms();
    close(go[1]); /* release: every orphan exits now */
    struct timespec pause = {0, 200000};
    for (;;) {
        int left = others(self);
        if (left == 0) break;
        if (now_ms() - t0 > 60000) {
            fprintf(stderr, "storm: %d orphans still unreaped after 60 s\n", left);
            return 3;
        }
        nanosleep(&pause, NULL);
    }
    double t2 = now_ms();
    printf("orphans=%d total_ms=%.3f reap_ms=%.3f\n", orphans, t2 - t0, t2 - t1);
    return 0;
}
