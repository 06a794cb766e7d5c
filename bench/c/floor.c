/* floor: the least an init can do, the reference column of bench/run (not a product).
 *
 *   floor [--] CMD [ARG...]
 *
 * Blocks every signal, forks and execs CMD with the old mask, then waits synchronously:
 * SIGCHLD reaps every child that has ended (the command and orphans), any other signal is
 * forwarded to the command. Exits with the command's status (128 + signal if killed). A
 * subreaper when not PID 1, like reaper and catatonit. No options, no drain, no error paths
 * beyond the minimum. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    sigset_t all, old;
    int first = argc > 1 && strcmp(argv[1], "--") == 0 ? 2 : 1;
    if (first >= argc) {
        fputs("usage: floor [--] CMD [ARG...]\n", stderr);
        return 2;
    }
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    if (getpid() != 1) prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t child = fork();
    if (child < 0) return perror("floor: fork"), 1;
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[first], argv + first);
        perror("floor: exec");
        _exit(127);
    }
    for (;;) {
        int status, sig = sigwaitinfo(&all, NULL);
        pid_t pid;
        if (sig != SIGCHLD) {
            if (sig > 0) kill(child, sig);
            continue;
        }
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            if (pid == child)
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
}
