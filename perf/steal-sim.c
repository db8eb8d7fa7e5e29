/* What the topology steal order saves, counted rather than timed: on the
 * machine hwloc describes (HWLOC_SYNTHETIC or HWLOC_XMLFILE for a large one),
 * every local in turn finds a random quarter of the other locals holding
 * objects and steals from the first of them in its steal order.  Counts how
 * many steals cross a NUMA node or a package under each order.
 *
 *   HWLOC_SYNTHETIC="pack:2 numa:2 l3:2 core:4 pu:2" perf/steal-sim [rounds]
 */
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "topology/topology.h"

struct place {
    int numa, package;
};

/* NUMA node and package of each local, from hwloc directly. */
static struct place *places_of(const struct gcp_topology *t)
{
    hwloc_topology_t topo;
    hwloc_topology_init(&topo);
    if (hwloc_topology_load(topo) != 0)
        return NULL;
    struct place *pl = calloc(t->nlocals, sizeof *pl);
    for (unsigned l = 0; l < t->nlocals; l++) {
        hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo, t->local_os_index[l]);
        hwloc_obj_t pkg = pu ? hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pu) : NULL;
        pl[l].numa = pu && pu->nodeset ? hwloc_bitmap_first(pu->nodeset) : -1;
        pl[l].package = pkg ? (int)pkg->logical_index : -1;
    }
    hwloc_topology_destroy(topo);
    return pl;
}

/* xorshift64: the same "random" holders for both orders. */
static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void count(const struct gcp_topology *t, const struct place *pl, long rounds,
                  long *steals, long *cross_numa, long *cross_pkg)
{
    uint64_t seed = 0x9e3779b97f4a7c15u;
    char *holds = calloc(t->nlocals, 1);
    *steals = *cross_numa = *cross_pkg = 0;
    for (long r = 0; r < rounds; r++) {
        for (unsigned l = 0; l < t->nlocals; l++)
            holds[l] = next(&seed) % 4 == 0;
        for (unsigned thief = 0; thief < t->nlocals; thief++) {
            const unsigned *order = gcp_topology_steal_order(t, thief);
            for (unsigned k = 0; k + 1 < t->nlocals; k++) {
                unsigned v = order[k];
                if (!holds[v])
                    continue;
                ++*steals;
                *cross_numa += pl[v].numa != pl[thief].numa;
                *cross_pkg += pl[v].package != pl[thief].package;
                break;
            }
        }
    }
    free(holds);
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 1000;
    const char *names[] = {"topology", "roundrobin"};
    for (int mode = 0; mode < 2; mode++) {
        struct gcp_topology t;
        if (gcp_topology_load(&t, mode ? GCP_STEAL_ROUNDROBIN : GCP_STEAL_TOPOLOGY) != 0) {
            fprintf(stderr, "steal-sim: %s\n", t.error);
            return 1;
        }
        struct place *pl = places_of(&t);
        if (!pl)
            return 1;
        long steals, numa, pkg;
        count(&t, pl, rounds, &steals, &numa, &pkg);
        printf("%-10s locals=%u steals=%ld cross-NUMA=%ld (%.1f%%) cross-package=%ld (%.1f%%)\n",
               names[mode], t.nlocals, steals, numa, 100.0 * numa / steals, pkg,
               100.0 * pkg / steals);
        free(pl);
        gcp_topology_free(&t);
    }
    return 0;
}
