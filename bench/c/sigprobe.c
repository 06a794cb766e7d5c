/* sigprobe: signal round trip through the init.
 *
 * Usage: sigprobe TRIPS [WARMUP [RAWFILE]]
 *
 * Run as the init's command (the init is our parent). Blocks SIGUSR1, then loops:
 * clock_gettime; kill(getppid(), SIGUSR1); sigtimedwait; clock_gettime. The init forwards
 * the signal back to us (dumb-init to our process group; we are its leader). The first
 * WARMUP trips are not recorded. Prints "trips=N median_us=X p99_us=Y" on stdout and, with
 * RAWFILE, every recorded trip in nanoseconds, one per line. Exit 3 if a signal does not
 * come back within 5 s (the init did not forward it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long ns(const struct timespec *t) { return t->tv_sec * 1000000000LL + t->tv_nsec; }

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: sigprobe TRIPS [WARMUP [RAWFILE]]\n");
        return 2;
    }
    int trips = atoi(argv[1]);
    int warmup = argc > 2 ? atoi(argv[2]) : 0;
    const char *raw = argc > 3 ? argv[3] : NULL;
    if (trips < 1 || warmup < 0) return 2;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) { perror("sigprocmask"); return 2; }
    pid_t parent = getppid();
    long long *s = malloc(sizeof *s * trips);
    if (!s) return 2;
    struct timespec timeout = {5, 0};

    for (int i = 0; i < warmup + trips; i++) {
        struct timespec a, b;
        siginfo_t si;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (kill(parent, SIGUSR1) != 0) { perror("kill(parent)"); return 2; }
        int r;
        do r = sigtimedwait(&set, &si, &timeout); while (r < 0 && errno == EINTR);
        if (r < 0) {
            fprintf(stderr, "sigprobe: SIGUSR1 did not come back after trip %d\n", i);
            return 3;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (i >= warmup) s[i - warmup] = ns(&b) - ns(&a);
    }
    if (raw) {
        FILE *f = fopen(raw, "w");
        if (!f) { perror(raw); return 2; }
        for (int i = 0; i < trips; i++) fprintf(f, "%lld\n", s[i]);
        fclose(f);
    }
    qsort(s, trips, sizeof *s, cmp);
    int p99 = (int)((trips - 1) * 0.99 + 0.5);
    printf("trips=%d median_us=%.2f p99_us=%.2f\n", trips, s[(trips - 1) / 2] / 1e3, s[p99] / 1e3);
    return 0;
}
