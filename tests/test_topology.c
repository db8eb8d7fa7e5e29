/* Topology: which CPUs get a local, the CPU -> local table, padding and steal
 * orders, checked on real machines' exports, synthetic machines, this machine,
 * and through the gcpool-info tool.
 *
 * The checks derive what they expect from hwloc independently (a topology the
 * test loads itself, walked by ancestor objects and cpusets), not from the
 * depth arithmetic topology/hwloc.c uses.  Check forks per test, so the
 * setenv calls of one test do not leak into the next. */
#ifndef _GNU_SOURCE /* config.h, forced in by the build, defines it */
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <hwloc.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/internal.h"

/* ---- helpers ------------------------------------------------------------- */

/* Describes the machine to load next: an XML file, a synthetic description, or
 * (both NULL) this machine. */
static void use_machine(const char *xml, const char *synthetic)
{
    if (xml)
        setenv("HWLOC_XMLFILE", xml, 1);
    else
        unsetenv("HWLOC_XMLFILE");
    if (synthetic)
        setenv("HWLOC_SYNTHETIC", synthetic, 1);
    else
        unsetenv("HWLOC_SYNTHETIC");
}

/* The test's own view of the same machine, loaded by hwloc from the same
 * environment variables. */
static hwloc_topology_t ref_load(void)
{
    hwloc_topology_t topo;
    ck_assert_int_eq(hwloc_topology_init(&topo), 0);
    ck_assert_int_eq(hwloc_topology_load(topo), 0);
    return topo;
}

/* The PUs a process may use on a machine that is not this one. */
static hwloc_bitmap_t ref_allowed(hwloc_topology_t topo)
{
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    hwloc_bitmap_and(set, hwloc_topology_get_allowed_cpuset(topo),
                     hwloc_topology_get_topology_cpuset(topo));
    return set;
}

static hwloc_obj_t pu_of(hwloc_topology_t topo, const struct gcp_topology *t, unsigned l)
{
    hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo, t->local_os_index[l]);
    ck_assert_msg(pu != NULL, "local %u: OS CPU %u unknown to hwloc", l, t->local_os_index[l]);
    return pu;
}

static bool pu_under(hwloc_obj_t x, hwloc_obj_t pu)
{
    return x->cpuset && hwloc_bitmap_isset(x->cpuset, pu->os_index);
}

static char *tmp_xml_path(void)
{
    static char path[64];
    strcpy(path, "/tmp/gcpool-topo-XXXXXX.xml");
    int fd = mkstemps(path, 4);
    ck_assert_int_ge(fd, 0);
    close(fd);
    return path;
}

/* ---- the shared checks --------------------------------------------------- */

/* Every OS CPU of the table maps to a local exactly when hwloc allows it, and
 * the allowed ones map one-to-one onto 0..nlocals-1. */
static void check_table(const struct gcp_topology *t, hwloc_const_bitmap_t allowed)
{
    unsigned *hits = calloc(t->nlocals, sizeof *hits);
    unsigned mapped = 0;

    ck_assert_int_eq(t->nlocals, hwloc_bitmap_weight(allowed));
    for (unsigned l = 0; l < t->nlocals; l++) {
        unsigned os = t->local_os_index[l];
        ck_assert_uint_lt(os, t->ncpu_table);
        ck_assert_int_eq(t->cpu_to_local[os], (int)l);
    }
    for (unsigned os = 0; os < t->ncpu_table; os++) {
        int l = t->cpu_to_local[os];
        ck_assert_msg((l >= 0) == (hwloc_bitmap_isset(allowed, os) != 0),
                      "OS CPU %u: local %d, allowed %d", os, l, hwloc_bitmap_isset(allowed, os));
        if (l >= 0) {
            ck_assert_int_lt(l, (int)t->nlocals);
            hits[l]++;
            mapped++;
        }
    }
    for (unsigned l = 0; l < t->nlocals; l++)
        ck_assert_uint_eq(hits[l], 1);
    ck_assert_uint_eq(mapped, t->nlocals);
    /* Any CPU number at all lands on some local. */
    int probes[] = {-1, INT_MIN, INT_MAX, (int)t->ncpu_table, (int)t->ncpu_table + 7};
    for (unsigned i = 0; i < sizeof probes / sizeof probes[0]; i++)
        ck_assert_uint_lt(gcp_topology_local_of(t, probes[i]), t->nlocals);
    for (unsigned os = 0; os < t->ncpu_table; os++)
        ck_assert_uint_lt(gcp_topology_local_of(t, (int)os), t->nlocals);
    free(hits);
}

static void check_padding(const struct gcp_topology *t)
{
    ck_assert_uint_gt(t->line_size, 0);
    ck_assert_uint_ge(t->local_align, 128);
    ck_assert_uint_eq(t->local_align & (t->local_align - 1), 0);
    ck_assert_uint_eq(t->local_align % t->line_size, 0);
}

/* Victims for which in(victim) holds come before every other victim. */
static void check_prefix(const unsigned *order, unsigned nv, bool (*in)(void *, unsigned), void *ctx,
                         unsigned thief, const char *what)
{
    bool outside_seen = false;
    for (unsigned i = 0; i < nv; i++) {
        bool inside = in(ctx, order[i]);
        ck_assert_msg(!(inside && outside_seen),
                      "local %u: victim %u (position %u) shares its %s but comes after one that "
                      "does not", thief, order[i], i, what);
        outside_seen |= !inside;
    }
}

struct under_ctx {
    hwloc_topology_t topo;
    const struct gcp_topology *t;
    hwloc_obj_t x;        /* under this object */
    hwloc_obj_t thief_pu; /* same NUMA nodeset as this PU (when x is NULL) */
};

static bool victim_under(void *p, unsigned victim)
{
    struct under_ctx *c = p;
    return pu_under(c->x, pu_of(c->topo, c->t, victim));
}

static bool victim_same_numa(void *p, unsigned victim)
{
    struct under_ctx *c = p;
    return hwloc_bitmap_isequal(pu_of(c->topo, c->t, victim)->nodeset, c->thief_pu->nodeset);
}

/* Each order lists every other local once; the victims under each ancestor of
 * the thief (its core, so SMT siblings first, then L2, L3, package, …) come
 * before those outside it; those of its NUMA node before those of others. */
static void check_orders(const struct gcp_topology *t, hwloc_topology_t topo)
{
    unsigned n = t->nlocals;
    unsigned char *seen = malloc(n);

    for (unsigned a = 0; a < n; a++) {
        const unsigned *order = gcp_topology_steal_order(t, a);
        memset(seen, 0, n);
        for (unsigned i = 0; i + 1 < n; i++) {
            ck_assert_uint_lt(order[i], n);
            ck_assert_uint_ne(order[i], a);
            ck_assert_msg(!seen[order[i]], "local %u steals from %u twice", a, order[i]);
            seen[order[i]] = 1;
        }
        if (t->steal_mode != GCP_STEAL_TOPOLOGY)
            continue;
        hwloc_obj_t pu = pu_of(topo, t, a);
        struct under_ctx c = {topo, t, NULL, pu};
        for (c.x = pu->parent; c.x; c.x = c.x->parent)
            check_prefix(order, n - 1, victim_under, &c, a, hwloc_obj_type_string(c.x->type));
        if (!hwloc_bitmap_iszero(pu->nodeset))
            check_prefix(order, n - 1, victim_same_numa, &c, a, "NUMA node");
    }
    free(seen);
}

/* Loads the machine the environment names, and runs every check on it. */
static void check_machine(unsigned expect_locals)
{
    struct gcp_topology t;
    ck_assert_int_eq(gcp_topology_load(&t, GCP_STEAL_TOPOLOGY), 0);
    ck_assert(t.from_hwloc);
    ck_assert(!t.this_system);
    ck_assert_uint_eq(t.steal_mode, GCP_STEAL_TOPOLOGY);
    ck_assert_uint_eq(t.nlocals, expect_locals);

    hwloc_topology_t topo = ref_load();
    hwloc_bitmap_t allowed = ref_allowed(topo);
    check_table(&t, allowed);
    check_padding(&t);
    check_orders(&t, topo);
    hwloc_bitmap_free(allowed);
    hwloc_topology_destroy(topo);
    gcp_topology_free(&t);
}

/* ---- real machines' exports ---------------------------------------------- */

static const struct {
    const char *file;
    unsigned allowed; /* from the README of the topologies folder */
    int disallowed;   /* an OS CPU that exists but must get no local, or -1 */
} machines[] = {
    {"16em64t-4s2c2t.xml", 16, -1},
    {"16em64t-4s2c2t-offlines.xml", 7, 2},   /* CPU 2 is offline */
    {"16amd64-8n2c-cpusets.xml", 10, 4},     /* CPU 4 is outside the cpuset */
    {"32em64t-2n8c2t-pci-noio.xml", 32, -1},
    {"fakecpukinds.xml", 4, -1},
};

static void use_machine_file(const char *file)
{
    const char *path = test_topology_path(file);
    /* The suite carries these files: a missing one is a failure, not a skip. */
    ck_assert_msg(access(path, R_OK) == 0, "%s: %s", path, strerror(errno));
    use_machine(path, NULL);
}

START_TEST(real_machines)
{
    use_machine_file(machines[_i].file);
    check_machine(machines[_i].allowed);

    struct gcp_topology t;
    ck_assert_int_eq(gcp_topology_load(&t, GCP_STEAL_TOPOLOGY), 0);
    if (machines[_i].disallowed >= 0) {
        int cpu = machines[_i].disallowed;
        ck_assert_int_lt(cpu, (int)t.ncpu_table);
        ck_assert_int_eq(t.cpu_to_local[cpu], -1);
        ck_assert_uint_lt(gcp_topology_local_of(&t, cpu), t.nlocals);
    }
    /* None of these exports records an L1 line size, except the 32-CPU one
     * (64): either way 64 bytes, and 128 for the stride unit. */
    ck_assert_uint_eq(t.line_size, 64);
    ck_assert_uint_eq(t.local_align, 128);
    gcp_topology_free(&t);
}
END_TEST

/* 4 packages x 2 cores x 2 threads: each local's first victim is its SMT
 * sibling, its next two the other core of its package. */
START_TEST(smt_sibling_first)
{
    use_machine_file("16em64t-4s2c2t.xml");
    struct gcp_topology t;
    ck_assert_int_eq(gcp_topology_load(&t, GCP_STEAL_TOPOLOGY), 0);
    hwloc_topology_t topo = ref_load();
    for (unsigned a = 0; a < t.nlocals; a++) {
        const unsigned *order = gcp_topology_steal_order(&t, a);
        hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu_of(topo, &t, a));
        hwloc_obj_t pack = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pu_of(topo, &t, a));
        ck_assert(pu_under(core, pu_of(topo, &t, order[0])));
        for (unsigned i = 1; i < 3; i++) {
            ck_assert(!pu_under(core, pu_of(topo, &t, order[i])));
            ck_assert(pu_under(pack, pu_of(topo, &t, order[i])));
        }
        for (unsigned i = 3; i + 1 < t.nlocals; i++)
            ck_assert(!pu_under(pack, pu_of(topo, &t, order[i])));
    }
    hwloc_topology_destroy(topo);
    gcp_topology_free(&t);
}
END_TEST

/* ---- synthetic machines -------------------------------------------------- */

#define BIG_SYNTHETIC "pack:2 numa:2 l3:2 core:4 pu:2"

START_TEST(synthetic_machines)
{
    use_machine(NULL, BIG_SYNTHETIC);
    check_machine(64);
    use_machine(NULL, "pack:2 core:3 pu:1"); /* no SMT, one NUMA node */
    check_machine(6);
    use_machine(NULL, "pu:1");
    check_machine(1);
}
END_TEST

/* Go's order: (l+1)%n, (l+2)%n, … — from an argument and from GCPOOL_STEAL. */
static void check_roundrobin(const struct gcp_topology *t)
{
    ck_assert_uint_eq(t->steal_mode, GCP_STEAL_ROUNDROBIN);
    for (unsigned l = 0; l < t->nlocals; l++)
        for (unsigned i = 0; i + 1 < t->nlocals; i++)
            ck_assert_uint_eq(gcp_topology_steal_order(t, l)[i], (l + i + 1) % t->nlocals);
}

START_TEST(roundrobin)
{
    use_machine(NULL, BIG_SYNTHETIC);
    struct gcp_topology t;
    ck_assert_int_eq(gcp_topology_load(&t, GCP_STEAL_ROUNDROBIN), 0);
    ck_assert_uint_eq(t.nlocals, 64);
    check_roundrobin(&t);
    gcp_topology_free(&t);

    test_setenv("GCPOOL_STEAL", "roundrobin");
    const struct gcp_topology *p = gcp_topology();
    ck_assert_uint_eq(p->nlocals, 64);
    check_roundrobin(p);
}
END_TEST

START_TEST(singleton_default_topology)
{
    use_machine(NULL, BIG_SYNTHETIC);
    test_setenv("GCPOOL_STEAL", NULL);
    const struct gcp_topology *p = gcp_topology();
    ck_assert_ptr_eq(p, gcp_topology()); /* loaded once */
    ck_assert(p->from_hwloc);
    ck_assert_uint_eq(p->steal_mode, GCP_STEAL_TOPOLOGY);
    ck_assert_uint_eq(p->nlocals, 64);
    /* The pool lays its locals out in units of local_align. */
    ck_assert_uint_eq(gcp_local_stride() % p->local_align, 0);
    ck_assert_uint_ge(gcp_local_stride(), sizeof(struct gcp_local));
}
END_TEST

/* Thieves that share a group of equally near victims must not all start at the
 * same one.  For each level, the thieves under one object of that level reach
 * position pos at the same kind of victim; those first victims must differ. */
static int key_of_type(hwloc_topology_t topo, hwloc_obj_t pu, hwloc_obj_type_t type)
{
    if (type == HWLOC_OBJ_NUMANODE)
        return hwloc_bitmap_first(pu->nodeset);
    hwloc_obj_t x = hwloc_get_ancestor_obj_by_type(topo, type, pu);
    return x ? (int)x->logical_index : -1;
}

static void check_spread(const struct gcp_topology *t, hwloc_topology_t topo, unsigned pos,
                         hwloc_obj_type_t level, unsigned expect_thieves)
{
    for (unsigned a = 0; a < t->nlocals; a++) {
        int key = key_of_type(topo, pu_of(topo, t, a), level);
        unsigned thieves = 0;
        for (unsigned b = 0; b < t->nlocals; b++) {
            if (key_of_type(topo, pu_of(topo, t, b), level) != key)
                continue;
            thieves++;
            ck_assert_msg(b == a || gcp_topology_steal_order(t, a)[pos] !=
                                        gcp_topology_steal_order(t, b)[pos],
                          "locals %u and %u both steal first from %u at position %u (%s level)", a,
                          b, gcp_topology_steal_order(t, a)[pos], pos, hwloc_obj_type_string(level));
        }
        ck_assert_uint_eq(thieves, expect_thieves);
    }
}

START_TEST(equal_victims_spread)
{
    /* Per thief: 1 SMT sibling, 6 more under its L3, 8 under the other L3 of
     * its NUMA node, 16 in the other NUMA node of its package, 32 elsewhere. */
    use_machine(NULL, BIG_SYNTHETIC);
    struct gcp_topology t;
    ck_assert_int_eq(gcp_topology_load(&t, GCP_STEAL_TOPOLOGY), 0);
    hwloc_topology_t topo = ref_load();
    check_spread(&t, topo, 1, HWLOC_OBJ_L3CACHE, 8);
    check_spread(&t, topo, 7, HWLOC_OBJ_L3CACHE, 8);
    check_spread(&t, topo, 15, HWLOC_OBJ_NUMANODE, 16);
    check_spread(&t, topo, 31, HWLOC_OBJ_PACKAGE, 32);
    hwloc_topology_destroy(topo);
    gcp_topology_free(&t);
}
END_TEST

/* Beyond the shared hardware, NUMA latencies decide.  Four NUMA nodes of two
 * cores each, under nothing but the machine; node 0 is nearest node 2, then 1,
 * then 3 (and so on, symmetrically). */
static const uint64_t latency[4][4] = {
    {10, 30, 15, 40},
    {30, 10, 40, 15},
    {15, 40, 10, 30},
    {40, 15, 30, 10},
};

static void export_with_latencies(const char *path)
{
    hwloc_topology_t topo;
    hwloc_obj_t nodes[4];
    ck_assert_int_eq(hwloc_topology_init(&topo), 0);
    ck_assert_int_eq(hwloc_topology_set_synthetic(topo, "numa:4 core:2 pu:1"), 0);
    ck_assert_int_eq(hwloc_topology_load(topo), 0);
    for (unsigned i = 0; i < 4; i++)
        nodes[i] = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, i);
    hwloc_distances_add_handle_t h = hwloc_distances_add_create(
        topo, "latency", HWLOC_DISTANCES_KIND_FROM_USER | HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(hwloc_distances_add_values(topo, h, 4, nodes, (hwloc_uint64_t *)&latency[0][0], 0), 0);
    ck_assert_int_eq(hwloc_distances_add_commit(topo, h, 0), 0);
    ck_assert_int_eq(hwloc_topology_export_xml(topo, path, 0), 0);
    hwloc_topology_destroy(topo);
}

START_TEST(numa_distances_order)
{
    char *path = tmp_xml_path();
    export_with_latencies(path);
    use_machine(path, NULL);
    struct gcp_topology t;
    ck_assert_int_eq(gcp_topology_load(&t, GCP_STEAL_TOPOLOGY), 0);
    ck_assert_uint_eq(t.nlocals, 8);
    hwloc_topology_t topo = ref_load();
    check_orders(&t, topo);

    for (unsigned a = 0; a < t.nlocals; a++) {
        unsigned home = (unsigned)hwloc_bitmap_first(pu_of(topo, &t, a)->nodeset);
        const unsigned *order = gcp_topology_steal_order(&t, a);
        uint64_t last = 0;
        for (unsigned i = 0; i + 1 < t.nlocals; i++) {
            unsigned node = (unsigned)hwloc_bitmap_first(pu_of(topo, &t, order[i])->nodeset);
            ck_assert_msg(latency[home][node] >= last, "local %u: victim %u (node %u) out of latency order",
                          a, order[i], node);
            last = latency[home][node];
        }
    }
    hwloc_topology_destroy(topo);
    gcp_topology_free(&t);
    unlink(path);
}
END_TEST

/* ---- padding -------------------------------------------------------------- */

/* A synthetic machine whose L1d and L2 report the given line sizes. */
static void export_with_lines(const char *path, unsigned l1, unsigned l2)
{
    hwloc_topology_t topo;
    ck_assert_int_eq(hwloc_topology_init(&topo), 0);
    ck_assert_int_eq(hwloc_topology_set_synthetic(topo, "l2:2 l1d:1 core:1 pu:2"), 0);
    ck_assert_int_eq(hwloc_topology_load(topo), 0);
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_L1CACHE, o));)
        o->attr->cache.linesize = l1;
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_L2CACHE, o));)
        o->attr->cache.linesize = l2;
    ck_assert_int_eq(hwloc_topology_export_xml(topo, path, 0), 0);
    hwloc_topology_destroy(topo);
}

START_TEST(line_size_and_align)
{
    static const struct { unsigned l1, l2, line, align; } cases[] = {
        {64, 64, 64, 128},   /* the common case: pad to two lines */
        {32, 64, 32, 128},   /* the L1d's line, not the L2's */
        {128, 128, 128, 128},
        {192, 64, 192, 256}, /* rounded up to a power of two */
        {256, 256, 256, 256},
        {0, 0, 64, 128},     /* unknown everywhere: the default */
        {0, 128, 128, 128},  /* L1d unknown: the nearest cache that knows */
    };
    char *path = tmp_xml_path();
    use_machine(path, NULL);
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gcp_topology t;
        export_with_lines(path, cases[i].l1, cases[i].l2);
        ck_assert_int_eq(gcp_topology_load(&t, GCP_STEAL_TOPOLOGY), 0);
        ck_assert_uint_eq(t.nlocals, 4);
        ck_assert_uint_eq(t.line_size, cases[i].line);
        ck_assert_uint_eq(t.local_align, cases[i].align);
        gcp_topology_free(&t);
    }
    unlink(path);
}
END_TEST

/* ---- failure -------------------------------------------------------------- */

static void check_flat_default(const struct gcp_topology *t, const char *mention)
{
    long conf = sysconf(_SC_NPROCESSORS_CONF);
    ck_assert(!t->from_hwloc);
    ck_assert_msg(strstr(t->error, mention) != NULL, "error \"%s\" does not name %s", t->error, mention);
    ck_assert_uint_eq(t->nlocals, conf > 0 ? (unsigned)conf : 1);
    for (unsigned l = 0; l < t->nlocals; l++) {
        ck_assert_uint_eq(t->local_os_index[l], l);
        ck_assert_int_eq(t->cpu_to_local[l], (int)l);
    }
    check_roundrobin(t);
    check_padding(t);
}

START_TEST(hwloc_failure)
{
    struct gcp_topology t;
    use_machine("/nonexistent/machine.xml", NULL);
    ck_assert_int_eq(gcp_topology_load(&t, GCP_STEAL_TOPOLOGY), -1);
    check_flat_default(&t, "HWLOC_XMLFILE");
    gcp_topology_free(&t);

    use_machine(NULL, "bogus:3");
    ck_assert_int_eq(gcp_topology_load(&t, GCP_STEAL_TOPOLOGY), -1);
    check_flat_default(&t, "HWLOC_SYNTHETIC");
    gcp_topology_free(&t);

    /* The process-wide topology is never NULL, even then. */
    const struct gcp_topology *p = gcp_topology();
    ck_assert_ptr_nonnull(p);
    ck_assert(!p->from_hwloc);
    ck_assert_uint_ge(p->nlocals, 1);
}
END_TEST

/* ---- this machine --------------------------------------------------------- */

struct pinned {
    int cpu;     /* the CPU the thread pins itself to */
    int ran_on;  /* sched_getcpu() once pinned */
    unsigned local;
    int err;
};

static void *run_pinned(void *p)
{
    struct pinned *pi = p;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(pi->cpu, &one);
    pi->err = pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    sched_yield(); /* the kernel moves us at the latest here */
    pi->ran_on = sched_getcpu();
    pi->local = gcp_topology_local_of(gcp_topology(), pi->ran_on);
    return NULL;
}

START_TEST(this_machine_pinned_threads)
{
    use_machine(NULL, NULL);
    cpu_set_t mask;
    ck_assert_int_eq(sched_getaffinity(0, sizeof mask, &mask), 0);
    const struct gcp_topology *t = gcp_topology();
    ck_assert(t->from_hwloc);
    ck_assert(t->this_system);
    ck_assert_int_eq((int)t->nlocals, CPU_COUNT(&mask));
    check_padding(t);

    bool *used = calloc(t->nlocals, sizeof *used);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &mask))
            continue;
        struct pinned pi = {.cpu = cpu};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, run_pinned, &pi), 0);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ck_assert_int_eq(pi.err, 0);
        ck_assert_int_eq(pi.ran_on, cpu);
        ck_assert_uint_lt((unsigned)cpu, t->ncpu_table);
        ck_assert_int_eq(t->cpu_to_local[cpu], (int)pi.local); /* its own local, no fallback */
        ck_assert_msg(!used[pi.local], "CPU %d shares local %u with another CPU", cpu, pi.local);
        used[pi.local] = true;
    }
    free(used);
}
END_TEST

/* The process's affinity narrows this machine's locals, but not another
 * machine's. */
START_TEST(affinity_narrows_this_machine_only)
{
    cpu_set_t mask, one;
    ck_assert_int_eq(sched_getaffinity(0, sizeof mask, &mask), 0);
    if (CPU_COUNT(&mask) < 2) {
        printf("skipped: needs 2 allowed CPUs\n");
        return;
    }
    /* The process's binding is the union of its threads' masks: another
     * thread (ThreadSanitizer's own, say) keeps both CPUs in it. */
    DIR *tasks = opendir("/proc/self/task");
    int nthreads = 0;
    for (struct dirent *e; tasks && (e = readdir(tasks));)
        nthreads += e->d_name[0] != '.';
    if (tasks)
        closedir(tasks);
    if (nthreads != 1) {
        printf("skipped: %d threads in this process, and only this one can be narrowed\n", nthreads);
        return;
    }
    int first = -1, other = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE && other < 0; cpu++)
        if (CPU_ISSET(cpu, &mask))
            *(first < 0 ? &first : &other) = cpu;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);

    struct gcp_topology t;
    use_machine(NULL, NULL);
    ck_assert_int_eq(gcp_topology_load(&t, GCP_STEAL_TOPOLOGY), 0);
    ck_assert_uint_eq(t.nlocals, 1);
    ck_assert_uint_eq(t.local_os_index[0], (unsigned)first);
    ck_assert_int_eq(t.cpu_to_local[first], 0);
    ck_assert_int_eq(t.cpu_to_local[other], -1);
    ck_assert_uint_eq(gcp_topology_local_of(&t, other), 0);
    gcp_topology_free(&t);

    use_machine(NULL, "pack:2 core:3 pu:1");
    ck_assert_int_eq(gcp_topology_load(&t, GCP_STEAL_TOPOLOGY), 0);
    ck_assert(!t.this_system);
    ck_assert_uint_eq(t.nlocals, 6);
    gcp_topology_free(&t);
}
END_TEST

/* ---- gcpool-info ---------------------------------------------------------- */

/* Runs gcpool-info with args (stdout and stderr together); returns its exit
 * status, or -1 when GCPOOL_BUILDDIR is unset (the caller skips). */
static int run_info(const char *args, char *out, size_t len)
{
    const char *dir = getenv("GCPOOL_BUILDDIR");
    char cmd[PATH_MAX + 256];
    if (!dir || !*dir) {
        printf("skipped: GCPOOL_BUILDDIR is not set\n");
        return -1;
    }
    snprintf(cmd, sizeof cmd, "'%s/gcpool-info' %s 2>&1", dir, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t got = fread(out, 1, len - 1, p);
    out[got] = '\0';
    int status = pclose(p);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static unsigned count_of(const char *s, const char *what)
{
    unsigned n = 0;
    for (; (s = strstr(s, what)); s += strlen(what))
        n++;
    return n;
}

static long json_number(const char *json, const char *key)
{
    char pat[64];
    long v = -1;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(json, pat);
    ck_assert_msg(at != NULL, "no key %s in %s", key, json);
    ck_assert_int_eq(sscanf(at + strlen(pat), " %ld", &v), 1);
    return v;
}

static char info_out[1 << 16];

START_TEST(info_json_this_machine)
{
    use_machine(NULL, NULL);
    int rc = run_info("--json", info_out, sizeof info_out);
    if (rc < 0)
        return;
    ck_assert_msg(rc == 0, "gcpool-info --json: exit %d: %s", rc, info_out);
    static const char *const keys[] = {"version", "gc", "pin", "victim", "cacheline",
                                       "local_size", "locals", "cpus", "env"};
    for (unsigned i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char pat[32];
        snprintf(pat, sizeof pat, "\"%s\":", keys[i]);
        ck_assert_msg(strstr(info_out, pat), "no %s in %s", pat, info_out);
    }
    ck_assert(strstr(info_out, "\"victim\": true") || strstr(info_out, "\"victim\": false"));
    ck_assert(strstr(info_out, "\"GCPOOL_STEAL\":"));
    ck_assert_int_eq(json_number(info_out, "locals"), count_of(info_out, "\"os_index\":"));
    ck_assert_int_eq(json_number(info_out, "locals"), gcp_topology()->nlocals);
    ck_assert_int_eq(json_number(info_out, "local_size") % json_number(info_out, "cacheline"), 0);
    ck_assert(!strstr(info_out, "steal_order")); /* only when asked */
    ck_assert_uint_eq(count_of(info_out, "{"), count_of(info_out, "}"));
}
END_TEST

START_TEST(info_json_other_machine)
{
    use_machine_file("16em64t-4s2c2t.xml");
    test_setenv("GCPOOL_STEAL", NULL);
    int rc = run_info("--json --steal-order 5", info_out, sizeof info_out);
    if (rc < 0)
        return;
    ck_assert_msg(rc == 0, "exit %d: %s", rc, info_out);
    ck_assert_int_eq(json_number(info_out, "locals"), 16);
    ck_assert_uint_eq(count_of(info_out, "\"os_index\":"), 16);

    /* The steal order it prints is the one the library computes. */
    struct gcp_topology t;
    ck_assert_int_eq(gcp_topology_load(&t, GCP_STEAL_TOPOLOGY), 0);
    const char *at = strstr(info_out, "\"steal_order\": [");
    ck_assert_ptr_nonnull(at);
    at += strlen("\"steal_order\": [");
    for (unsigned i = 0; i + 1 < t.nlocals; i++) {
        unsigned v;
        int used;
        ck_assert_int_eq(sscanf(at, " %u%n", &v, &used), 1);
        ck_assert_uint_eq(v, gcp_topology_steal_order(&t, 5)[i]);
        at += used;
        ck_assert_int_eq(*at, i + 2 < t.nlocals ? ',' : ']');
        at++;
    }
    gcp_topology_free(&t);
}
END_TEST

START_TEST(info_text)
{
    use_machine(NULL, "pack:2 core:3 pu:1");
    int rc = run_info("--steal-order 0", info_out, sizeof info_out);
    if (rc < 0)
        return;
    ck_assert_msg(rc == 0, "exit %d: %s", rc, info_out);
    ck_assert(strstr(info_out, "locals:        6\n"));
    ck_assert(strstr(info_out, "steal order of local 0: "));
    ck_assert(strstr(info_out, "GCPOOL_VICTIM"));
    ck_assert_uint_eq(count_of(info_out, " -> local "), 6);
}
END_TEST

/* The tool never starts the collector, yet says what a program that calls
 * GC_INIT() first gets (it said "sim" under auto, the tool's own case). */
START_TEST(info_cycle_source)
{
    static const struct {
        const char *gc, *line, *json;
    } cases[] = {
        {NULL, "cycle source:  boehm in a program that calls GC_INIT() before its first pool",
         "\"gc\": \"boehm\""},
        {"boehm", "cycle source:  boehm (GCPOOL_GC=boehm", "\"gc\": \"boehm\""},
        {"sim", "cycle source:  sim (GCPOOL_GC=sim)", "\"gc\": \"sim\""},
    };
    use_machine(NULL, NULL);
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_setenv("GCPOOL_GC", cases[i].gc);
        int rc = run_info("", info_out, sizeof info_out);
        if (rc < 0)
            return;
        ck_assert_msg(rc == 0 && strstr(info_out, cases[i].line), "GCPOOL_GC=%s: %s", cases[i].gc,
                      info_out);
        ck_assert_int_eq(run_info("--json", info_out, sizeof info_out), 0);
        ck_assert_msg(strstr(info_out, cases[i].json), "GCPOOL_GC=%s: %s", cases[i].gc, info_out);
    }
}
END_TEST

/* Exactly one line, on stderr (merged here), and no output to parse. */
static void check_one_line_error(int rc, const char *out)
{
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strncmp(out, "gcpool-info: ", 13) == 0, "unexpected output: %s", out);
    ck_assert_uint_eq(count_of(out, "\n"), 1);
    ck_assert(!strchr(out, '{'));
}

START_TEST(info_errors)
{
    use_machine("/nonexistent", NULL);
    int rc = run_info("--json", info_out, sizeof info_out);
    if (rc < 0)
        return;
    check_one_line_error(rc, info_out);
    ck_assert(strstr(info_out, "/nonexistent"));

    use_machine(NULL, NULL);
    check_one_line_error(run_info("--no-such-option", info_out, sizeof info_out), info_out);
    check_one_line_error(run_info("--steal-order", info_out, sizeof info_out), info_out);
    check_one_line_error(run_info("--steal-order x", info_out, sizeof info_out), info_out);
    check_one_line_error(run_info("--steal-order 100000", info_out, sizeof info_out), info_out);
    check_one_line_error(run_info("extra", info_out, sizeof info_out), info_out);
    ck_assert_int_eq(run_info("--help", info_out, sizeof info_out), 0);
    ck_assert(strstr(info_out, "Usage: gcpool-info"));
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("topology");

    TCase *real = test_tcase(s, "real machines", 0);
    tcase_add_loop_test(real, real_machines, 0, (int)(sizeof machines / sizeof machines[0]));
    tcase_add_test(real, smt_sibling_first);

    TCase *syn = test_tcase(s, "synthetic machines", 0);
    tcase_add_test(syn, synthetic_machines);
    tcase_add_test(syn, roundrobin);
    tcase_add_test(syn, singleton_default_topology);
    tcase_add_test(syn, equal_victims_spread);
    tcase_add_test(syn, numa_distances_order);
    tcase_add_test(syn, line_size_and_align);
    tcase_add_test(syn, hwloc_failure);

    TCase *here = test_tcase(s, "this machine", 0);
    tcase_add_test(here, this_machine_pinned_threads);
    tcase_add_test(here, affinity_narrows_this_machine_only);

    TCase *info = test_tcase(s, "gcpool-info", 30);
    tcase_add_test(info, info_json_this_machine);
    tcase_add_test(info, info_json_other_machine);
    tcase_add_test(info, info_text);
    tcase_add_test(info, info_cycle_source);
    tcase_add_test(info, info_errors);

    return s;
}

TEST_MAIN(make_suite)
