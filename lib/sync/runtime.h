/* What Go's sync takes from its runtime, for the Mutex and WaitGroup here:
 * a monotonic clock (runtime_nanotime) and the fatal exit (throw).  The
 * semaphores themselves are in each file, on the futex calls of futex.h. */
#ifndef GCPOOL_SYNC_RUNTIME_H
#define GCPOOL_SYNC_RUNTIME_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Monotonic nanoseconds, for the mutex's starvation threshold. */
static inline int64_t gcp_nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Go throws or panics on misuse of its sync types; a C caller cannot recover
 * from a broken lock either, so print the same message and abort. */
__attribute__((noreturn, cold)) static inline void gcp_sync_fatal(const char *msg)
{
    fprintf(stderr, "fatal error: %s\n", msg);
    abort();
}

#endif
