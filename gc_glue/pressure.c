/* Memory pressure: a cycle when the system (or the process's cgroup) is short
 * of memory, under any cycle source.
 *
 * Two readings, on slow paths only (gcp_glue_poll: a miss, a ring growing), at
 * most every GCPOOL_PRESSURE_MS (0: never):
 *   Linux PSI, GCPOOL_PRESSURE_FILE (unset: /proc/pressure/memory): "some
 *     avg10" above GCPOOL_PRESSURE_AVG10 percent is pressure, "full avg10"
 *     above it (every task stalled at once) severe;
 *   cgroup v2, GCPOOL_PRESSURE_CGROUP (unset: the process's own, from
 *     /proc/self/cgroup, under /sys/fs/cgroup): memory.current above 90 % of
 *     memory.high or memory.max (the lower one that is set) is pressure, above
 *     97 % severe.  Neither set: no reading.
 * A file that is missing or unreadable turns its reading off for good, in
 * silence (no PSI in the kernel, no cgroup v2): that is a system without the
 * feature, not an error.  A file that reads but makes no sense turns it off
 * with one warning line.
 *
 * Cost: a relaxed load of the next time due and a clock read per slow path;
 * when due, one thread (the claim below) reads a few small files with open/read into
 * a stack buffer; the others go on. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gc_glue/glue.h"
#include "lib/env.h"
#include "lib/report.h"

/* Relaxed: a time, and two flags that only turn readings off.  The thread
 * whose compare-exchange moves next_ms on is the one that reads this period:
 * a claim, not a lock, so nothing is left held when another thread forks.
 * Two readings overlap only when one takes longer than GCPOOL_PRESSURE_MS;
 * they share nothing but these atomics and cgroup_dir, written once by the
 * thread that moves cgroup_state from 0 (not looked for) to 1 (being looked
 * for), then published with 2 (release; acquired by its readers).  No
 * pthread_once: a signal handler's get could wait for its own thread. */
static _Atomic uint64_t next_ms;
static _Atomic bool psi_off, cgroup_off;
static _Atomic int cgroup_state;
static char cgroup_dir[512]; /* "" when there is none */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The file's first len - 1 bytes, NUL-terminated; false when it cannot be
 * opened or read. */
static bool read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n;
    do
        n = read(fd, buf, len - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

static void turn_off(_Atomic bool *off, const char *what, const char *path)
{
    /* The exchange: one warning, even from overlapping readings. */
    if (!atomic_exchange_explicit(off, true, memory_order_relaxed) && what)
        gcp_warn("gcpool: memory pressure: %s makes no sense (%s); not read again", path, what);
}

/* The value after "<line> avg10=" in a PSI file; false when absent or bad. */
static bool psi_avg10(const char *text, const char *line, double *out)
{
    char key[16];
    snprintf(key, sizeof key, "%s avg10=", line);
    for (const char *s = text; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL) {
        if (strncmp(s, key, strlen(key)) != 0)
            continue;
        char *end;
        errno = 0;
        *out = strtod(s + strlen(key), &end);
        return errno == 0 && end != s + strlen(key) && (*end == ' ' || *end == '\n' || !*end) &&
               *out >= 0 && *out <= 100;
    }
    return false;
}

static int psi_level(void)
{
    const char *path = gcp_env_str(GCP_ENV_PRESSURE_FILE);
    char buf[512];
    if (!path)
        path = "/proc/pressure/memory";
    if (!read_small(path, buf, sizeof buf)) {
        turn_off(&psi_off, NULL, path);
        return 0;
    }
    double some, full = 0;
    if (!psi_avg10(buf, "some", &some)) {
        turn_off(&psi_off, "no \"some avg10=\" percentage", path);
        return 0;
    }
    if (strstr(buf, "full ") && !psi_avg10(buf, "full", &full)) {
        turn_off(&psi_off, "a bad \"full avg10=\" percentage", path);
        return 0;
    }
    double limit = (double)gcp_env_long(GCP_ENV_PRESSURE_AVG10);
    return full > limit ? 2 : some > limit ? 1 : 0;
}

/* A cgroup file's number; "max" is none (UINT64_MAX).  -1 unreadable, 0 bad, 1 read. */
static int cgroup_value(const char *name, uint64_t *out)
{
    char path[600], buf[64];
    snprintf(path, sizeof path, "%s/%s", cgroup_dir, name);
    if (!read_small(path, buf, sizeof buf))
        return -1;
    if (strcmp(buf, "max\n") == 0 || strcmp(buf, "max") == 0) {
        *out = UINT64_MAX;
        return 1;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || end == buf || (*end && *end != '\n') || buf[0] == '-')
        return 0;
    *out = v;
    return 1;
}

/* cgroup_dir as prefix + path; left empty (the reading off) when it does not
 * fit, rather than cut into another directory's name. */
static void set_cgroup_dir(const char *prefix, const char *path)
{
    int n = snprintf(cgroup_dir, sizeof cgroup_dir, "%s%s", prefix, path);
    if (n < 0 || (size_t)n >= sizeof cgroup_dir)
        cgroup_dir[0] = '\0';
}

/* The process's cgroup v2 directory, from /proc/self/cgroup ("0::/path"). */
static void find_cgroup(void)
{
    const char *dir = gcp_env_str(GCP_ENV_PRESSURE_CGROUP);
    if (dir) {
        set_cgroup_dir("", dir);
        return;
    }
    char buf[512];
    if (!read_small("/proc/self/cgroup", buf, sizeof buf))
        return;
    char *line = strstr(buf, "0::");
    if (!line || (line != buf && line[-1] != '\n'))
        return; /* cgroup v1 only */
    line += 3;
    line[strcspn(line, "\n")] = '\0';
    set_cgroup_dir("/sys/fs/cgroup", strcmp(line, "/") ? line : "");
}

static int cgroup_level(void)
{
    int state = 0;
    /* Acquire on failure (so acquire in all): a 2 read sees cgroup_dir. */
    if (atomic_compare_exchange_strong_explicit(&cgroup_state, &state, 1, memory_order_acquire,
                                                memory_order_acquire)) {
        find_cgroup();
        state = 2;
        atomic_store_explicit(&cgroup_state, 2, memory_order_release);
    }
    if (state != 2)
        return 0; /* another reading is looking for it */
    if (!cgroup_dir[0]) {
        turn_off(&cgroup_off, NULL, NULL);
        return 0;
    }
    uint64_t cur, high = UINT64_MAX, max = UINT64_MAX;
    int r = cgroup_value("memory.current", &cur);
    int rh = r > 0 ? cgroup_value("memory.high", &high) : r;
    int rm = r > 0 ? cgroup_value("memory.max", &max) : r;
    if (r < 0 || (rh < 0 && rm < 0)) {
        turn_off(&cgroup_off, NULL, NULL); /* no memory controller here */
        return 0;
    }
    if (r == 0 || rh == 0 || rm == 0) {
        turn_off(&cgroup_off, "memory.current, memory.high or memory.max is not a number", cgroup_dir);
        return 0;
    }
    uint64_t limit = high < max ? high : max;
    if (limit == UINT64_MAX)
        return 0; /* no limit: nothing to be short of (read again later: it may be set) */
    /* cur / limit above 97 % or 90 %, in 128 bits: no overflow for any sizes. */
    unsigned __int128 c = (unsigned __int128)cur * 100u, l = limit;
    return c > l * 97u ? 2 : c > l * 90u ? 1 : 0;
}

int gcp_pressure_level(void)
{
    long every = gcp_env_long(GCP_ENV_PRESSURE_MS);
    if (every <= 0)
        return 0;
    uint64_t now = now_ms();
    uint64_t due = atomic_load_explicit(&next_ms, memory_order_relaxed);
    if (now < due)
        return 0;
    /* The claim: lost, another thread reads this period. */
    if (!atomic_compare_exchange_strong_explicit(&next_ms, &due, now + (uint64_t)every,
                                                 memory_order_relaxed, memory_order_relaxed))
        return 0;
    int level = 0;
    if (!atomic_load_explicit(&psi_off, memory_order_relaxed))
        level = psi_level();
    if (!atomic_load_explicit(&cgroup_off, memory_order_relaxed)) {
        int c = cgroup_level();
        level = c > level ? c : level;
    }
    return level;
}
