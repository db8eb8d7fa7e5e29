/* Every GCPOOL_* environment variable, declared once in the table in env.c.
 * Values are read once (secure_getenv), checked, and kept; a bad value prints
 * one line to stderr naming the variable, the value and the default used. */
#ifndef GCPOOL_ENV_H
#define GCPOOL_ENV_H

#include <stdbool.h>
#include <stdio.h>

enum gcp_env_id {
    GCP_ENV_GC,              /* auto|boehm|sim */
    GCP_ENV_VICTIM,          /* bool */
    GCP_ENV_PIN,             /* auto|rseq|lock */
    GCP_ENV_STEAL,           /* topology|roundrobin */
    GCP_ENV_SHARED,          /* chain|locked */
    GCP_ENV_STATS,           /* off|text|json */
    GCP_ENV_STATS_FILE,      /* path */
    GCP_ENV_SIM_NEW,         /* 0 (off) .. */
    GCP_ENV_SIM_INTERVAL_MS, /* 0 (off) .. */
    GCP_ENV_RING_MIN,        /* power of two */
    GCP_ENV_RING_MAX,        /* power of two */
    GCP_ENV_DEBUG,           /* bool */
    GCP_ENV_BUF_MIN,         /* power of two: smallest buffer class (lib/buf.c) */
    GCP_ENV_BUF_MAX,         /* power of two: largest buffer class */
    GCP_ENV_SIM_GOGC,        /* 0 (off) .. : the pacer (gc_glue/pacer.c) */
    GCP_ENV_SIM_MIN_HEAP,    /* 1 .. : the pacer's least goal */
    GCP_ENV_PRESSURE_MS,     /* 0 (off) .. (gc_glue/pressure.c) */
    GCP_ENV_PRESSURE_FILE,   /* path: PSI */
    GCP_ENV_PRESSURE_AVG10,  /* 0 .. 100 */
    GCP_ENV_PRESSURE_CGROUP, /* path: a cgroup v2 directory */
    GCP_ENV_CYCLE_EVERY,     /* 1 .. : Boehm collections a cycle (gc_glue/boehm.c) */
    GCP_ENV_MAX_CACHED,      /* 0 (off) .. : the retention bound's default (lib/pool.c) */
    GCP_ENV_COUNT
};

/* Choice values, in table order. */
enum { GCP_GC_AUTO, GCP_GC_BOEHM, GCP_GC_SIM };
enum { GCP_PIN_AUTO, GCP_PIN_RSEQ, GCP_PIN_LOCK };
enum { GCP_SHARED_CHAIN, GCP_SHARED_LOCKED };
enum gcp_steal_mode { GCP_STEAL_TOPOLOGY, GCP_STEAL_ROUNDROBIN }; /* topology/ orders steals so */
enum { GCP_STATS_OFF, GCP_STATS_TEXT_, GCP_STATS_JSON_ };

/* The value in force: a number, a bool (0/1) or a choice's index. */
long gcp_env_long(enum gcp_env_id id);
/* The value in force of a string variable (NULL when unset). */
const char *gcp_env_str(enum gcp_env_id id);
/* The value in force as text ("auto", "1", "4096", …). */
const char *gcp_env_text(enum gcp_env_id id, char *buf, size_t len);
const char *gcp_env_name(enum gcp_env_id id);
/* Prints every variable: name, value in force, default, description.
 * json: one JSON object {"GCPOOL_X": "value", …} instead of a table. */
void gcp_env_print(FILE *out, bool json);
/* The README's table (Markdown): variable | type | default | range | description. */
void gcp_env_print_markdown(FILE *out);
/* Reads the environment again (tests only; not thread-safe). */
void gcp_env_reload(void);

#endif
