/* spawnproto: what reaper's spawn costs against a CLONE_VM|CLONE_VFORK spawn (posix_spawn's
 * approach), both with the exec result reported synchronously. A measurement prototype for
 * issue 24, not used by bench/run's tables.
 *
 *   spawnproto N [BALLAST_KB] -- CMD [ARG...]
 *
 * Runs CMD N times each way, interleaved, and prints the median microseconds from the start
 * of the spawn to (a) the parent knowing the exec succeeded and (b) waitpid returning:
 *   fork   fork(); child: sigprocmask, setpgid, execve; exec errors through a CLOEXEC pipe
 *          (reaper's spawn.rs today)
 *   vfork  clone(CLONE_VM|CLONE_VFORK) on a separate stack; the child does the same with raw
 *          syscalls only and writes the errno into the shared memory; no pipe: the parent
 *          resumes once the child has exec'd or died
 * BALLAST_KB touches that much heap first, so the parent's RSS resembles reaper's (fork copies
 * page tables, vfork does not). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char **cmd;
static sigset_t childmask;
static volatile int child_err;

static long long now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void child_body(void) {
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &childmask, NULL, 8);
    syscall(SYS_setpgid, 0, 0);
    syscall(SYS_execve, cmd[0], cmd, environ);
}

static pid_t spawn_fork(void) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        child_body();
        int e = errno;
        (void)!write(p[1], &e, sizeof e);
        _exit(127);
    }
    close(p[1]);
    int e = 0;
    ssize_t n = read(p[0], &e, sizeof e);
    close(p[0]);
    if (n == sizeof e) return -1;
    return pid;
}

static int vfork_child(void *arg) {
    (void)arg;
    long r;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &childmask, NULL, 8);
    syscall(SYS_setpgid, 0, 0);
    r = syscall(SYS_execve, cmd[0], cmd, environ);
    child_err = r < 0 ? errno : 0;
    syscall(SYS_exit, 127);
    return 127;
}

static pid_t spawn_vfork(void) {
    static char stack[64 * 1024] __attribute__((aligned(16)));
    child_err = 0;
    pid_t pid = clone(vfork_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
    if (pid < 0 || child_err) {
        if (pid > 0) waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

static int cmpll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 4) return fputs("usage: spawnproto N [BALLAST_KB] -- CMD [ARG...]\n", stderr), 2;
    int n = atoi(argv[1]), k = 2;
    long ballast = 0;
    if (strcmp(argv[k], "--") != 0) ballast = atol(argv[k++]);
    if (strcmp(argv[k], "--") != 0) return 2;
    cmd = argv + k + 1;
    if (ballast > 0) {
        char *b = malloc(ballast * 1024);
        if (b) memset(b, 1, ballast * 1024);
    }
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &childmask);
    long long *t[2][2];
    for (int m = 0; m < 2; m++)
        for (int w = 0; w < 2; w++) t[m][w] = malloc(sizeof(long long) * n);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 2; j++) {
            int m = (i + j) % 2;
            long long a = now();
            pid_t pid = m ? spawn_vfork() : spawn_fork();
            long long b = now();
            if (pid < 0) return fprintf(stderr, "spawn failed\n"), 1;
            int st;
            waitpid(pid, &st, 0);
            long long c = now();
            t[m][0][i] = b - a;
            t[m][1][i] = c - a;
        }
    }
    const char *name[2] = {"fork ", "vfork"};
    for (int m = 0; m < 2; m++) {
        qsort(t[m][0], n, sizeof(long long), cmpll);
        qsort(t[m][1], n, sizeof(long long), cmpll);
        printf("%s exec known %.1f us, exited %.1f us (medians of %d)\n", name[m],
               t[m][0][n / 2] / 1000.0, t[m][1][n / 2] / 1000.0, n);
    }
    return 0;
}
