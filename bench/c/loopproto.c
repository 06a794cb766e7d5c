/* loopproto: the floor's init with reaper's wake-up pattern, to price each syscall of a
 * forwarded signal apart from reaper's own code (a measurement prototype for issue 24, not
 * used by bench/run's tables).
 *
 *   loopproto MODE [--] CMD [ARG...]
 *
 * MODE: "floor"  sigwaitinfo + kill (bench/c/floor.c's loop)
 *       "sfd"    poll(signalfd) + read + kill
 *       "sfdw"   poll(signalfd) + read + kill + waitid(WNOHANG|WNOWAIT) (reaper today)
 *       "sfdb"   read(blocking signalfd) + kill + waitid (no poll)
 *       "sfdbw"  as "sfdb" with the waitid only after a SIGCHLD
 * Every mode reaps on SIGCHLD and exits with the command's status. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t child;

static int reap(void) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        if (pid == child) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return -1;
}

int main(int argc, char **argv) {
    sigset_t all, old;
    if (argc < 3) return fputs("usage: loopproto MODE [--] CMD [ARG...]\n", stderr), 2;
    const char *mode = argv[1];
    int first = strcmp(argv[2], "--") == 0 ? 3 : 2;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    if (getpid() != 1) prctl(PR_SET_CHILD_SUBREAPER, 1);
    child = fork();
    if (child < 0) return perror("fork"), 1;
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[first], argv + first);
        _exit(127);
    }
    int use_poll = strcmp(mode, "sfd") == 0 || strcmp(mode, "sfdw") == 0;
    int always_wait = strcmp(mode, "sfdw") == 0 || strcmp(mode, "sfdb") == 0;
    if (strcmp(mode, "floor") == 0) {
        for (;;) {
            int sig = sigwaitinfo(&all, NULL), code;
            if (sig != SIGCHLD) {
                if (sig > 0) kill(child, sig);
                continue;
            }
            if ((code = reap()) >= 0) return code;
        }
    }
    int fd = signalfd(-1, &all, SFD_CLOEXEC | (use_poll ? SFD_NONBLOCK : 0));
    if (fd < 0) return perror("signalfd"), 1;
    for (;;) {
        struct signalfd_siginfo si[16];
        if (use_poll) {
            struct pollfd p = {fd, POLLIN, 0};
            poll(&p, 1, -1);
        }
        ssize_t n = read(fd, si, sizeof si);
        int chld = 0;
        for (ssize_t i = 0; i < n / (ssize_t)sizeof si[0]; i++) {
            if (si[i].ssi_signo == SIGCHLD) chld = 1;
            else kill(child, si[i].ssi_signo);
        }
        if (always_wait || chld) {
            siginfo_t info;
            memset(&info, 0, sizeof info);
            waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
            if (info.si_pid) {
                int code = reap();
                if (code >= 0) return code;
            }
        }
    }
}
