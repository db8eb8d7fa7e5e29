/* gcpool-info: what gcpool would do on this machine (or on the one hwloc is told
 * to load with HWLOC_XMLFILE / HWLOC_SYNTHETIC): version, cycle source, pin
 * method, padding, the CPU -> local table, steal orders and every GCPOOL_*
 * variable in force.
 *
 * It reads the same process-wide topology the library uses (gcp_topology()),
 * so what it prints is what a pool in a program started the same way gets. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcpool.h"
#include "lib/env.h"
#include "lib/pin.h"
#include "lib/pool.h"
#include "tools/env-man.h"
#include "tools/stats-fields.h"
#include "topology/topology.h"

enum { EXIT_TOPOLOGY = 1, EXIT_USAGE = 2 };

struct options {
    bool json;
    bool env_markdown; /* --env-markdown: the README's table, and nothing else */
    bool env_man;      /* --env-man: the same table as man source, for gcpool(7) */
    bool stats_markdown; /* --stats-markdown: the README's table of statistics fields */
    bool stats_man;      /* --stats-man: the same as man source, for gcpool(3) */
    bool steal;     /* --steal-order given */
    unsigned local; /* its argument */
};

static void usage(FILE *out)
{
    fputs("Usage: gcpool-info [--json] [--steal-order L] [--env-markdown] [--env-man]\n"
          "                   [--stats-markdown] [--stats-man] [--help]\n"
          "Shows how gcpool sees this machine: version, cycle source, pin method,\n"
          "cache line and local size, the CPU -> local table and every GCPOOL_*\n"
          "variable in force.  HWLOC_XMLFILE=file.xml or HWLOC_SYNTHETIC=\"...\"\n"
          "describe another machine instead.\n"
          "  --json           one JSON object instead of text\n"
          "  --steal-order L  also the locals local L steals from, in order\n"
          "  --env-markdown   the GCPOOL_* variables as the README's Markdown table\n"
          "  --env-man        the same table as man source (gcpool(7)'s ENVIRONMENT)\n"
          "  --stats-markdown the statistics counters as the README's Markdown table\n"
          "  --stats-man      the same as man source (gcpool(3)'s list of fields)\n"
          "  --help           this text\n",
          out);
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("gcpool-info: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (try --help)\n", stderr);
    return -1;
}

static int parse_local(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 0x7fffffffL)
        return usage_error("--steal-order wants a local number, not '%s'", s);
    *out = (unsigned)v;
    return 0;
}

/* 0 to go on, 1 when --help printed everything, -1 on a bad argument. */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"steal-order", required_argument, NULL, 's'},
        {"env-markdown", no_argument, NULL, 'm'},
        {"env-man", no_argument, NULL, 'r'},
        {"stats-markdown", no_argument, NULL, 'M'},
        {"stats-man", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0; /* our own one-line messages instead of getopt's */
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            o->json = true;
            break;
        case 's':
            o->steal = true;
            if (parse_local(optarg, &o->local) < 0)
                return -1;
            break;
        case 'm':
            o->env_markdown = true;
            break;
        case 'r':
            o->env_man = true;
            break;
        case 'M':
            o->stats_markdown = true;
            break;
        case 'R':
            o->stats_man = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            if (optopt == 's')
                return usage_error("%s needs a local number", "--steal-order");
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    return 0;
}

/* The cycle source a program started like this one gets: "boehm" or "sim".
 * This tool never initialises the collector, and under GCPOOL_GC=auto the
 * library itself would answer sim here; what a reader needs is what a program
 * that calls GC_INIT() before its first pool gets. */
static const char *cycle_source(void)
{
    return gcp_env_long(GCP_ENV_GC) == GCP_GC_SIM ? "sim" : "boehm";
}

/* The same, with the rule that gives it. */
static const char *cycle_source_text(void)
{
    switch (gcp_env_long(GCP_ENV_GC)) {
    case GCP_GC_BOEHM:
        return "boehm (GCPOOL_GC=boehm: the first pool initialises the collector)";
    case GCP_GC_SIM:
        return "sim (GCPOOL_GC=sim)";
    default:
        return "boehm in a program that calls GC_INIT() before its first pool (GCPOOL_GC=auto; "
               "sim until the collector starts, and where it never does)";
    }
}

/* Where the topology came from, for the reader. */
static const char *source_text(const struct gcp_topology *t)
{
    return t->this_system ? "this system" : "another machine (HWLOC_XMLFILE / HWLOC_SYNTHETIC)";
}

static void print_text(const struct gcp_topology *t, const struct options *o)
{
    printf("gcpool %s\n", gcpool_version());
    printf("cycle source:  %s\n", cycle_source_text());
    printf("pin method:    %s\n", gcp_pin_name());
    printf("victim cache:  %s\n", gcp_env_long(GCP_ENV_VICTIM) ? "on" : "off");
    printf("steal order:   %s\n", t->steal_mode == GCP_STEAL_ROUNDROBIN ? "roundrobin" : "topology");
    printf("topology:      %s\n", source_text(t));
    printf("cache line:    %u bytes\n", t->line_size);
    printf("local size:    %zu bytes (a multiple of %u)\n", gcp_local_stride(), t->local_align);
    printf("locals:        %u\n", t->nlocals);
    printf("CPU -> local:\n");
    for (unsigned l = 0; l < t->nlocals; l++)
        printf("  cpu %-5u -> local %u\n", t->local_os_index[l], l);
    if (o->steal) {
        printf("steal order of local %u:", o->local);
        const unsigned *order = gcp_topology_steal_order(t, o->local);
        for (unsigned i = 0; i + 1 < t->nlocals; i++)
            printf(" %u", order[i]);
        putchar('\n');
    }
    printf("environment:\n");
    gcp_env_print(stdout, false);
}

static void print_json(const struct gcp_topology *t, const struct options *o)
{
    printf("{\"version\": \"%s\", \"gc\": \"%s\", \"pin\": \"%s\", \"victim\": %s,\n",
           gcpool_version(), cycle_source(), gcp_pin_name(),
           gcp_env_long(GCP_ENV_VICTIM) ? "true" : "false");
    printf(" \"steal\": \"%s\", \"this_system\": %s,\n",
           t->steal_mode == GCP_STEAL_ROUNDROBIN ? "roundrobin" : "topology",
           t->this_system ? "true" : "false");
    printf(" \"cacheline\": %u, \"local_align\": %u, \"local_size\": %zu, \"locals\": %u,\n",
           t->line_size, t->local_align, gcp_local_stride(), t->nlocals);
    printf(" \"cpus\": [");
    for (unsigned l = 0; l < t->nlocals; l++)
        printf("%s{\"os_index\": %u, \"local\": %u}", l ? ", " : "", t->local_os_index[l], l);
    printf("],\n");
    if (o->steal) {
        printf(" \"steal_order\": [");
        const unsigned *order = gcp_topology_steal_order(t, o->local);
        for (unsigned i = 0; i + 1 < t->nlocals; i++)
            printf("%s%u", i ? ", " : "", order[i]);
        printf("],\n");
    }
    printf(" \"env\": ");
    gcp_env_print(stdout, true);
    printf("}\n");
}

int main(int argc, char **argv)
{
    struct options o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? EXIT_SUCCESS : EXIT_USAGE;
    if (o.env_markdown) { /* needs no machine: printed from lib/env.c's table */
        gcp_env_print_markdown(stdout);
        return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_TOPOLOGY;
    }
    if (o.env_man)
        return gcp_env_print_man(stdout) == 0 && fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_TOPOLOGY;
    if (o.stats_markdown) /* from lib/stats.c's table of GCPOOL_STAT_FIELDS */
        return gcp_stats_print_markdown(stdout) == 0 && fflush(stdout) == 0 ? EXIT_SUCCESS
                                                                            : EXIT_TOPOLOGY;
    if (o.stats_man)
        return gcp_stats_print_man(stdout) == 0 && fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_TOPOLOGY;

    const struct gcp_topology *t = gcp_topology();
    if (!t->from_hwloc) {
        fprintf(stderr, "gcpool-info: no topology: %s\n", t->error);
        return EXIT_TOPOLOGY;
    }
    if (o.steal && o.local >= t->nlocals) {
        fprintf(stderr, "gcpool-info: --steal-order %u: there are only %u locals (0..%u)\n",
                o.local, t->nlocals, t->nlocals - 1);
        return EXIT_USAGE;
    }
    if (o.json)
        print_json(t, &o);
    else
        print_text(t, &o);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "gcpool-info: writing the output: %s\n", strerror(errno));
        return EXIT_TOPOLOGY;
    }
    return EXIT_SUCCESS;
}
