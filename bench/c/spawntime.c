/* spawntime: wall time of whole commands, interleaved.
 *
 * Usage: spawntime RUNS CMD [ARG...] [::: CMD [ARG...]]...
 *
 * Runs every command RUNS times, round-robin (one run of each command per iteration, the
 * starting command rotating), each with posix_spawn (stdout/stderr to /dev/null, CMD is an
 * absolute path) and waitpid, so the fork/exec cost is the same for all. The time is taken
 * from just before posix_spawn to just after waitpid. Prints one line per run:
 * "ITERATION COMMAND_INDEX NANOSECONDS WAIT_STATUS".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: spawntime RUNS CMD [ARG...] [::: CMD...]...\n"); return 2; }
    int runs = atoi(argv[1]);
    char **cmds[64];
    int ncmd = 0;
    cmds[ncmd++] = &argv[2];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], ":::") == 0) {
            argv[i] = NULL;
            if (ncmd == 64) return 2;
            cmds[ncmd++] = &argv[i + 1];
        }
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);

    long long (*res)[64] = calloc(runs, sizeof *res);
    int (*st)[64] = calloc(runs, sizeof *st);
    if (!res || !st) return 2;
    for (int it = 0; it < runs; it++) {
        for (int k = 0; k < ncmd; k++) {
            int c = (it + k) % ncmd;
            struct timespec a, b;
            pid_t pid;
            int status;
            clock_gettime(CLOCK_MONOTONIC, &a);
            int e = posix_spawn(&pid, cmds[c][0], &fa, NULL, cmds[c], environ);
            if (e != 0) { fprintf(stderr, "spawntime: %s: %s\n", cmds[c][0], strerror(e)); return 2; }
            if (waitpid(pid, &status, 0) != pid) { perror("waitpid"); return 2; }
            clock_gettime(CLOCK_MONOTONIC, &b);
            res[it][c] = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
            st[it][c] = status;
        }
    }
    for (int it = 0; it < runs; it++)
        for (int c = 0; c < ncmd; c++) printf("%d %d %lld %d\n", it, c, res[it][c], st[it][c]);
    return 0;
}
