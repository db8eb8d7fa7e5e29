/* The tests' one door into the library's insides, as Go's export_test.go is:
 * every lib/, gc_glue/ and topology/ header a test needs is included here and
 * nowhere else under tests/ (tests/test_internal_door.sh checks), each with
 * why a test needs it, and so are the hidden symbols no header declares.  When
 * the library renames or moves an internal header, this file is the one to
 * follow it.  A test that needs none of this includes testutil.h alone, which
 * uses the public API only.
 *
 * The internals are hidden (-fvisibility=hidden): the programs that include
 * this link libgcpool_core.la, the convenience library every object of the
 * installed one comes from, not libgcpool.la (Makefile.am's TEST_LIBS). */
#ifndef GCPOOL_TEST_INTERNAL_H
#define GCPOOL_TEST_INTERNAL_H

#include "tests/testutil.h"

/* lib/env.h: the GCPOOL_* table (test_env checks every row and the printers)
 * and gcp_env_reload, so that a test can set a variable after the library
 * read the environment (test_setenv below). */
#include "lib/env.h"

/* gc_glue/glue.h: which cycle source the process ended up with
 * (gcp_glue_source), for test_cycle below and the tests of how it is chosen
 * (test_pool, test_sim, test_late_init, test_buf, test_debug). */
#include "gc_glue/glue.h"

/* lib/pin.h: which pin runs (gcp_pin_name, for test_use_pin below and the
 * tests' reports) and how often rseq sequences restarted (gcp_pin_restarts):
 * test_conservation checks that signals did restart some, test_abort counts
 * them. */
#include "lib/pin.h"

/* lib/pool.h: struct gcpool, whose creation index names unnamed pools in
 * checked mode's messages (test_debug builds the expected text), and the
 * locals' layout (gcp_local_stride, struct gcp_local), which test_topology
 * checks against the topology's local_align. */
#include "lib/pool.h"

/* topology/topology.h: the steal tables, built by test_topology from real
 * machines' topologies (tests/topologies) and synthetic ones. */
#include "topology/topology.h"

/* lib/ring.h: the rings and the chain of rings, tested alone by test_ring
 * (Go's poolqueue tests, which reach poolDequeue through export_test.go). */
#include "lib/ring.h"

/* lib/mem.h: gcp_mem_fail_at, to make the nth allocation fail
 * (test_badinput). */
#include "lib/mem.h"

/* lib/debug.h: checked mode switched on and its drop rate set inside one
 * process (test_debug, test_fork, test_late_init), GCP_DEBUG_HELD_MAX. */
#include "lib/debug.h"

/* lib/peek.h and lib/stats.h: the statistics read through a reader that
 * copies, as gcpool-stat's of another process does (test_stats). */
#include "lib/peek.h"
#include "lib/stats.h"

/* lib/buf.c's allocation hooks: hidden and in no header (nothing else in the
 * library swaps them), so declared here; test_buf replaces them to count and
 * check every buffer that reaches malloc, free or the collector. */
extern void *(*gcp_buf_sys_alloc)(size_t);
extern void (*gcp_buf_sys_free)(void *);
extern void *(*gcp_buf_gc_alloc)(size_t);

/* ---- helpers that need the above ----------------------------------------------- */

/* Sets (value non-NULL) or unsets a GCPOOL_* variable and makes the library read
 * the environment again.  Call before the first pool of the test process. */
static inline void test_setenv(const char *name, const char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    gcp_env_reload();
}

/* Picks the cycle source for this test process: 0 sim, 1 Boehm.  Returns false
 * when Boehm cannot run here (sanitizer builds), after saying so. */
static inline bool test_use_source(int boehm)
{
    if (boehm && !TEST_BOEHM_OK) {
        fprintf(stderr, "SKIP: Boehm and the sanitizers do not mix; Boehm case skipped\n");
        return false;
    }
    /* Set by quickstart's valgrind step: Boehm under valgrind is slow and noisy. */
    const char *no_boehm = getenv("GCPOOL_TEST_NO_BOEHM");
    if (boehm && no_boehm && *no_boehm && strcmp(no_boehm, "0") != 0) {
        fprintf(stderr, "SKIP: GCPOOL_TEST_NO_BOEHM is set; Boehm case skipped\n");
        return false;
    }
    if (boehm)
        GC_INIT();
    test_setenv("GCPOOL_GC", boehm ? "boehm" : "sim");
    return true;
}

/* Picks the pin for this test process: 0 the lock pin, 1 rseq.  Returns false,
 * after saying so, when rseq is not available here. */
static inline bool test_use_pin(int rseq)
{
    test_setenv("GCPOOL_PIN", rseq ? "rseq" : "lock");
    if (rseq && strcmp(gcp_pin_name(), "rseq") != 0) {
        printf("SKIP: rseq is not available in this process; rseq case skipped\n");
        return false;
    }
    return true;
}

/* One cleanup cycle the way the source runs it: a collection under Boehm. */
static inline void test_cycle(void)
{
    if (gcp_glue_source() == GCP_SOURCE_BOEHM)
        GC_gcollect();
    else
        gcpool_collect();
}

/* The modes most concurrency tests run in, by name: the cycle source and the
 * pin (tests that need more, such as checked mode, keep their own table). */
struct test_mode {
    const char *name;
    bool boehm; /* the cycle source: Boehm, else the simulator */
    bool rseq;  /* the pin: rseq, else the lock */
};

static const struct test_mode test_modes[] = {
    {"sim/lock", false, false},
    {"boehm/lock", true, false},
    {"sim/rseq", false, true},
    {"boehm/rseq", true, true},
};

/* One axis alone, for tests that vary only the source or only the pin. */
struct test_source {
    const char *name;
    bool boehm; /* Boehm, else the simulator */
};

static const struct test_source test_sources[] = {{"sim", false}, {"boehm", true}};

struct test_pin {
    const char *name;
    bool rseq; /* rseq, else the lock */
};

static const struct test_pin test_pins[] = {{"lock", false}, {"rseq", true}};

/* Sets the process up for mode m: false, after saying so, when it cannot run
 * here (see test_use_source, test_use_pin). */
static inline bool test_use_mode(const struct test_mode *m)
{
    return test_use_source(m->boehm) && test_use_pin(m->rseq);
}

#endif
