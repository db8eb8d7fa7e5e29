/* The cycle history (history.c): the last GCPOOL_CYCLE_HISTORY cycles' records,
 * for gcpool_read_cycles and the JSON report. */
#ifndef GCPOOL_HISTORY_H
#define GCPOOL_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/pool.h"

/* A cycle being recorded: filled by rotate_all on its stack. */
struct gcp_cycle_rec {
    uint64_t number, cause, start_ns, duration_ns, moved;
    uint64_t dropped_before; /* gcp_history_drops() at the start */
    uint64_t vhits_before;   /* the pools' hit_victim at the start */
};

/* CLOCK_MONOTONIC in ns: a vDSO read, fine inside the collector. */
uint64_t gcp_history_now(void);
/* Starts rec: its number, cause, start time and drop count. */
void gcp_history_start(struct gcp_cycle_rec *rec, uint64_t number, enum gcpool_cycle_cause cause);
/* Publishes rec, the duration set now.  Registry lock held (the one writer):
 * no allocation, no lock, so inside the collector too. */
void gcp_history_record(struct gcp_cycle_rec *rec);
/* Objects cycles dropped, counted as they are: the in-collector drops and the
 * deferred drains (cycle.c). */
void gcp_history_count_drops(uint64_t n);
uint64_t gcp_history_drops(void);
/* gcpool_read_cycles, out not NULL; walk: count the newest's victim hits so
 * far (a walk of the pools under drain_mutex, or this thread's drain), else
 * stop them at its start.  The report walks from its busy section. */
int gcp_history_read(gcpool_cycle_t *out, size_t n, bool walk);
/* One pool's hit_victim summed over its locals (stats.c); loads only. */
uint64_t gcp_stats_victim_hits(const struct gcpool *p);
/* "collector", "sim", "explicit" or "other". */
const char *gcp_cycle_cause_name(uint32_t cause);

#endif
