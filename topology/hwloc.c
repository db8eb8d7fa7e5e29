/* The machine as the pool sees it, read from hwloc; see topology.h.
 *
 * Locals are the PUs (logical CPUs) this process may run on, numbered in hwloc's
 * logical order, so the locals under any core, cache or package are neighbours:
 * that keeps the steal-order rotation below simple and the tables readable.
 *
 * Everything here runs once per process (or per test), off the hot path; the
 * hot path only reads cpu_to_local and the steal orders. */
#include "topology/topology.h"

#include <errno.h>
#include <hwloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/env.h"

#define DEFAULT_LINE_SIZE 64u
/* Adjacent-line prefetchers pull lines in pairs: 128 bytes keeps two locals
 * from sharing a prefetch pair even when the line is 64 bytes. */
#define MIN_LOCAL_ALIGN 128u

static void set_error(struct gcp_topology *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(struct gcp_topology *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->error, sizeof t->error, fmt, ap);
    va_end(ap);
}

static unsigned round_up_pow2(unsigned v)
{
    unsigned p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

static void set_line_size(struct gcp_topology *t, unsigned line)
{
    t->line_size = line ? line : DEFAULT_LINE_SIZE;
    t->local_align = round_up_pow2(t->line_size > MIN_LOCAL_ALIGN ? t->line_size : MIN_LOCAL_ALIGN);
}

/* Go's order: local l steals from l+1, l+2, … wrapping around. */
static void fill_roundrobin(struct gcp_topology *t)
{
    unsigned n = t->nlocals;
    for (unsigned l = 0; l < n; l++)
        for (unsigned i = 0; i + 1 < n; i++)
            t->steal_order[(size_t)l * (n - 1) + i] = (l + i + 1) % n;
}

/* Arrays for n locals and a table of ncpu entries (all -1).  steal_order gets at
 * least one entry so that a single local still has a non-NULL array. */
static int alloc_tables(struct gcp_topology *t, unsigned n, unsigned ncpu)
{
    size_t orders = (size_t)n * (n - 1);
    t->nlocals = n;
    t->ncpu_table = ncpu;
    t->local_os_index = calloc(n, sizeof *t->local_os_index);
    t->cpu_to_local = malloc((ncpu ? ncpu : 1) * sizeof *t->cpu_to_local);
    t->steal_order = calloc(orders ? orders : 1, sizeof *t->steal_order);
    if (!t->local_os_index || !t->cpu_to_local || !t->steal_order)
        return -1;
    for (unsigned c = 0; c < ncpu; c++)
        t->cpu_to_local[c] = -1;
    return 0;
}

/* When even the flat default cannot be allocated, one local backed by static
 * storage stands in, so gcp_topology() still never fails. */
static unsigned single_os_index;
static int single_cpu_to_local;
static unsigned single_steal_order;

static void free_tables(struct gcp_topology *t)
{
    if (t->local_os_index != &single_os_index) {
        free(t->local_os_index);
        free(t->cpu_to_local);
        free(t->steal_order);
    }
    t->local_os_index = NULL;
    t->cpu_to_local = NULL;
    t->steal_order = NULL;
}

/* What stands in when hwloc fails: every configured CPU a local of its own, in
 * OS order, stealing round robin.  Keeps t->error. */
static void flat_default(struct gcp_topology *t)
{
    long conf = sysconf(_SC_NPROCESSORS_CONF);
    unsigned n = conf > 0 ? (unsigned)conf : 1;

    free_tables(t);
    t->from_hwloc = false;
    t->this_system = true;
    t->steal_mode = GCP_STEAL_ROUNDROBIN; /* the order this default really has */
    set_line_size(t, DEFAULT_LINE_SIZE);
    if (alloc_tables(t, n, n) < 0) {
        free_tables(t);
        t->nlocals = 1;
        t->ncpu_table = 1;
        t->local_os_index = &single_os_index;
        t->cpu_to_local = &single_cpu_to_local;
        t->steal_order = &single_steal_order;
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        t->local_os_index[i] = i;
        t->cpu_to_local[i] = (int)i;
    }
    fill_roundrobin(t);
}

/* ---- loading ------------------------------------------------------------- */

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* hwloc reads HWLOC_SYNTHETIC and HWLOC_XMLFILE itself, but when the file is
 * missing or the description malformed it silently describes this machine
 * instead — and the caller who asked for another machine would never know.
 * Passing them on explicitly (synthetic first, as hwloc does) makes that an
 * error.  A backend set this way also stops hwloc from reading them again.
 * hwloc's debugging variables HWLOC_FSROOT and HWLOC_CPUID_PATH take
 * precedence over both in hwloc; when one is set, hwloc decides alone. */
static int choose_source(struct gcp_topology *t, hwloc_topology_t topo)
{
    const char *synthetic = env_nonempty("HWLOC_SYNTHETIC");
    const char *xml = env_nonempty("HWLOC_XMLFILE");

    if (getenv("HWLOC_FSROOT") || getenv("HWLOC_CPUID_PATH"))
        return 0;
    if (synthetic && hwloc_topology_set_synthetic(topo, synthetic) < 0) {
        set_error(t, "hwloc cannot use HWLOC_SYNTHETIC=\"%s\": %s", synthetic, strerror(errno));
        return -1;
    }
    if (!synthetic && xml && hwloc_topology_set_xml(topo, xml) < 0) {
        set_error(t, "hwloc cannot load HWLOC_XMLFILE=%s: %s", xml, strerror(errno));
        return -1;
    }
    return 0;
}

static int load_hwloc(struct gcp_topology *t, hwloc_topology_t topo)
{
    if (choose_source(t, topo) < 0)
        return -1;
    /* Only CPUs and caches matter here: skipping devices and instruction
     * caches makes the load cheaper. */
    hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_icache_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_NONE);
    if (hwloc_topology_load(topo) < 0) {
        set_error(t, "hwloc_topology_load failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The PUs this process may run on.  hwloc's allowed set already excludes what
 * the cgroup cpuset forbids; intersecting with the topology's own set drops
 * offline CPUs, and on this machine the process binding (the union of its
 * threads' affinity masks) narrows it further.  Another machine's topology
 * (XML, synthetic) has nothing to do with this process's binding. */
static hwloc_bitmap_t allowed_pus(hwloc_topology_t topo, bool this_system)
{
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    hwloc_bitmap_t bound = hwloc_bitmap_alloc();
    if (!set || !bound) {
        hwloc_bitmap_free(set);
        hwloc_bitmap_free(bound);
        return NULL;
    }
    hwloc_bitmap_and(set, hwloc_topology_get_allowed_cpuset(topo),
                     hwloc_topology_get_topology_cpuset(topo));
    /* A binding that cannot be read, or that shares nothing with the allowed
     * set (a race with a change of affinity), leaves the allowed set as is. */
    if (this_system && hwloc_get_cpubind(topo, bound, HWLOC_CPUBIND_PROCESS) == 0 &&
        hwloc_bitmap_intersects(set, bound))
        hwloc_bitmap_and(set, set, bound);
    hwloc_bitmap_free(bound);
    return set;
}

/* The allowed PU objects in logical order; returns how many (0 on failure). */
static unsigned collect_pus(hwloc_topology_t topo, hwloc_const_bitmap_t allowed, hwloc_obj_t **out)
{
    int total = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    unsigned n = 0;
    if (total <= 0 || !(*out = calloc((size_t)total, sizeof **out)))
        return 0;
    for (hwloc_obj_t pu = NULL; (pu = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PU, pu));)
        if (hwloc_bitmap_isset(allowed, pu->os_index))
            (*out)[n++] = pu;
    return n;
}

/* Entries in the OS CPU table: every CPU the machine has (online or not,
 * allowed or not) so a stray CPU number still finds its -1. */
static unsigned cpu_table_size(hwloc_topology_t topo, hwloc_obj_t *pus, unsigned n)
{
    int last = hwloc_bitmap_last(hwloc_topology_get_complete_cpuset(topo));
    unsigned size = last >= 0 ? (unsigned)last + 1 : 0;
    for (unsigned i = 0; i < n; i++)
        if (pus[i]->os_index >= size)
            size = pus[i]->os_index + 1;
    return size;
}

/* The line size of the nearest data (or unified) cache above pu, normally the
 * L1d.  Exports often record 0 ("unknown") for the L1: then the next level that
 * knows its line size is a better guess than the default. */
static unsigned line_size_above(hwloc_obj_t pu)
{
    for (hwloc_obj_t o = pu->parent; o; o = o->parent)
        if (hwloc_obj_type_is_dcache(o->type) && o->attr->cache.linesize)
            return o->attr->cache.linesize;
    return DEFAULT_LINE_SIZE;
}

/* ---- steal orders -------------------------------------------------------- */

/* How far apart NUMA nodes are, for ordering victims that share nothing
 * nearer than the machine.  UNKNOWN sorts after every known distance. */
#define UNKNOWN_DISTANCE UINT64_MAX

struct numa_info {
    unsigned nnodes;
    int *node_of;       /* [nlocals]: the local NUMA node's logical index, or -1 */
    uint64_t *distance; /* [nnodes * nnodes], or NULL when hwloc knows none */
};

/* The NUMA node nearest pu: the smallest one whose CPUs include it (several
 * may, e.g. DRAM and high-bandwidth memory of the same cores; the first wins). */
static int numa_node_of(hwloc_topology_t topo, hwloc_obj_t pu)
{
    hwloc_obj_t best = NULL;
    for (hwloc_obj_t nd = NULL; (nd = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, nd));)
        if (nd->cpuset && hwloc_bitmap_isset(nd->cpuset, pu->os_index) &&
            (!best || hwloc_bitmap_weight(nd->cpuset) < hwloc_bitmap_weight(best->cpuset)))
            best = nd;
    return best ? (int)best->logical_index : -1;
}

/* Latency matrix between NUMA nodes, indexed by logical index, or NULL. */
static uint64_t *numa_distances(hwloc_topology_t topo, unsigned nnodes)
{
    struct hwloc_distances_s *d = NULL;
    unsigned nr = 1;
    uint64_t *m = NULL;

    if (nnodes < 2 ||
        hwloc_distances_get_by_type(topo, HWLOC_OBJ_NUMANODE, &nr, &d,
                                    HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0) < 0 || nr == 0)
        return NULL;
    m = malloc((size_t)nnodes * nnodes * sizeof *m);
    if (m) {
        for (size_t i = 0; i < (size_t)nnodes * nnodes; i++)
            m[i] = UNKNOWN_DISTANCE;
        for (unsigned i = 0; i < d->nbobjs; i++)
            for (unsigned j = 0; j < d->nbobjs; j++) {
                hwloc_obj_t a = d->objs[i], b = d->objs[j];
                if (a && b && a->logical_index < nnodes && b->logical_index < nnodes)
                    m[(size_t)a->logical_index * nnodes + b->logical_index] =
                        d->values[(size_t)i * d->nbobjs + j];
            }
    }
    hwloc_distances_release(topo, d);
    return m;
}

static int numa_info_init(struct numa_info *ni, hwloc_topology_t topo, hwloc_obj_t *pus, unsigned n)
{
    int nnodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    ni->nnodes = nnodes > 0 ? (unsigned)nnodes : 0;
    ni->node_of = malloc(n * sizeof *ni->node_of);
    if (!ni->node_of)
        return -1;
    for (unsigned i = 0; i < n; i++)
        ni->node_of[i] = numa_node_of(topo, pus[i]);
    ni->distance = numa_distances(topo, ni->nnodes); /* NULL is fine: unknown */
    return 0;
}

static void numa_info_free(struct numa_info *ni)
{
    free(ni->node_of);
    free(ni->distance);
}

static uint64_t numa_distance(const struct numa_info *ni, unsigned a, unsigned b)
{
    int na = ni->node_of[a], nb = ni->node_of[b];
    if (!ni->distance || na < 0 || nb < 0)
        return UNKNOWN_DISTANCE;
    return ni->distance[(size_t)na * ni->nnodes + (size_t)nb];
}

/* One victim as seen from one thief.  depth is the hwloc depth of the deepest
 * object both PUs sit under: all such objects lie on the thief's own chain of
 * ancestors, so a deeper one is strictly nearer (core, then L2, L3, the die or
 * NUMA group, the package, the machine), whatever levels a machine has. */
struct victim {
    int depth;
    uint64_t distance;
    unsigned local;
};

static int nearer_first(const void *x, const void *y)
{
    const struct victim *a = x, *b = y;
    if (a->depth != b->depth)
        return a->depth > b->depth ? -1 : 1;
    if (a->distance != b->distance)
        return a->distance < b->distance ? -1 : 1;
    return a->local < b->local ? -1 : a->local > b->local;
}

/* The thief's rank among the locals under the object at depth: how many of
 * them have a smaller index.  v is sorted nearest first, so those locals are
 * exactly the prefix of v with depth >= the given one. */
static unsigned rank_under(const struct victim *v, unsigned nv, int depth, unsigned thief)
{
    unsigned r = 0;
    for (unsigned i = 0; i < nv && v[i].depth >= depth; i++)
        r += v[i].local < thief;
    return r;
}

/* Writes thief's order to out.  Victims at the same depth and NUMA distance
 * are equally good, so each thief starts such a group at its own rank within
 * the common subtree, rotating: e.g. the 8 threads under one L3 start at 8
 * different victims of that L3 instead of all at its first one (the spread
 * Go's (pid+i+1)%n gives, applied within each group). */
static void order_of(hwloc_topology_t topo, hwloc_obj_t *pus, const struct numa_info *ni,
                     unsigned n, unsigned thief, struct victim *v, unsigned *out)
{
    unsigned nv = 0;
    for (unsigned b = 0; b < n; b++) {
        if (b == thief)
            continue;
        hwloc_obj_t common = hwloc_get_common_ancestor_obj(topo, pus[thief], pus[b]);
        v[nv++] = (struct victim){common ? common->depth : 0, numa_distance(ni, thief, b), b};
    }
    qsort(v, nv, sizeof *v, nearer_first);

    for (unsigned start = 0, end; start < nv; start = end) {
        for (end = start + 1; end < nv && v[end].depth == v[start].depth &&
                              v[end].distance == v[start].distance;
             end++)
            ;
        unsigned k = end - start;
        unsigned r = rank_under(v, nv, v[start].depth, thief) % k;
        for (unsigned j = 0; j < k; j++)
            out[start + j] = v[start + (r + j) % k].local;
    }
}

static int fill_topology_orders(struct gcp_topology *t, hwloc_topology_t topo, hwloc_obj_t *pus)
{
    unsigned n = t->nlocals;
    struct numa_info ni = {0};
    struct victim *v = malloc((n > 1 ? n - 1 : 1) * sizeof *v);
    int rc = -1;

    if (v && numa_info_init(&ni, topo, pus, n) == 0) {
        for (unsigned l = 0; l < n; l++)
            order_of(topo, pus, &ni, n, l, v, t->steal_order + (size_t)l * (n - 1));
        rc = 0;
    }
    numa_info_free(&ni);
    free(v);
    return rc;
}

/* Fills t from a loaded hwloc topology. */
static int build(struct gcp_topology *t, hwloc_topology_t topo)
{
    hwloc_obj_t *pus = NULL;
    hwloc_bitmap_t allowed;
    unsigned n;
    int rc = -1;

    t->this_system = hwloc_topology_is_thissystem(topo);
    if (!(allowed = allowed_pus(topo, t->this_system))) {
        set_error(t, "out of memory reading the topology");
        return -1;
    }
    n = collect_pus(topo, allowed, &pus);
    hwloc_bitmap_free(allowed);
    if (n == 0) {
        set_error(t, "hwloc found no CPU this process may use");
        goto out;
    }
    if (alloc_tables(t, n, cpu_table_size(topo, pus, n)) < 0) {
        set_error(t, "out of memory building the topology tables");
        goto out;
    }
    for (unsigned l = 0; l < n; l++) {
        t->local_os_index[l] = pus[l]->os_index;
        t->cpu_to_local[pus[l]->os_index] = (int)l;
    }
    set_line_size(t, line_size_above(pus[0]));
    if (t->steal_mode == GCP_STEAL_ROUNDROBIN) {
        fill_roundrobin(t);
    } else if (fill_topology_orders(t, topo, pus) < 0) {
        set_error(t, "out of memory computing steal orders");
        goto out;
    }
    rc = 0;
out:
    free(pus);
    return rc;
}

int gcp_topology_load(struct gcp_topology *t, enum gcp_steal_mode steal_mode)
{
    hwloc_topology_t topo;
    int rc;

    memset(t, 0, sizeof *t);
    t->steal_mode = steal_mode;
    if (hwloc_topology_init(&topo) < 0) {
        set_error(t, "hwloc_topology_init failed: %s", strerror(errno));
        flat_default(t);
        return -1;
    }
    rc = load_hwloc(t, topo);
    if (rc == 0)
        rc = build(t, topo);
    hwloc_topology_destroy(topo);
    if (rc < 0) {
        flat_default(t);
        return -1;
    }
    t->from_hwloc = true;
    return 0;
}

void gcp_topology_free(struct gcp_topology *t)
{
    free_tables(t);
    t->nlocals = 0;
    t->ncpu_table = 0;
}

/* ---- the process-wide topology ------------------------------------------- */

static struct gcp_topology process_topology;
static pthread_once_t process_once = PTHREAD_ONCE_INIT;

static void load_process_topology(void)
{
    enum gcp_steal_mode mode =
        gcp_env_long(GCP_ENV_STEAL) == GCP_STEAL_ROUNDROBIN ? GCP_STEAL_ROUNDROBIN : GCP_STEAL_TOPOLOGY;
    /* On failure the flat default is in place and error says why; gcpool-info
     * reports it.  The library itself carries on with the default. */
    (void)gcp_topology_load(&process_topology, mode);
}

/* Set once the process topology is loaded: the lock pin asks for it on
 * every get and put, and a load is cheaper than pthread_once's call. */
static const struct gcp_topology *_Atomic process_ready;

const struct gcp_topology *gcp_topology(void)
{
    /* Acquire: pairs with the release below, so the topology is seen whole. */
    const struct gcp_topology *t = atomic_load_explicit(&process_ready, memory_order_acquire);
    if (__builtin_expect(t != NULL, 1))
        return t;
    pthread_once(&process_once, load_process_topology);
    atomic_store_explicit(&process_ready, &process_topology, memory_order_release);
    return &process_topology;
}
