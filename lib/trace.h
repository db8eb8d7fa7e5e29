/* USDT tracepoints, provider gcpool, for perf and bpftrace on a production
 * process (README, "Tracing").  With <sys/sdt.h> (Debian: systemtap-sdt-dev;
 * configure looks for it) each GCP_TRACEn is one NOP in the code and a note
 * in .note.stapsdt naming the probe and where its arguments live; without
 * it, nothing at all.  No semaphores: an untraced probe costs the NOP only,
 * and the arguments are computed only where already at hand.  Probes sit on
 * slow paths only, never in the inline hit path (fastpath.h) nor in
 * gcpool_get and gcpool_put's own code, which stay instruction for
 * instruction what they were (tests/test_usdt.sh, README).
 *
 * The probes (arguments in order):
 *   cycle__start  number, cause                       lib/cycle.c, inside the collector
 *   cycle__end    number, cause, duration_ns, moved   lib/history.c
 *   drop          pool, objects                       lib/cycle.c, a cycle's drop
 *   drop__bound   pool, object                        lib/pool.c, a put over the retention bound
 *   miss          pool                                lib/pool.c, a get found nothing
 *   new           pool, object                        lib/pool.c, new_fn returned
 *   steal         pool, object                        lib/pool.c, taken from another CPU */
#ifndef GCPOOL_TRACE_H
#define GCPOOL_TRACE_H

#if defined(HAVE_SYS_SDT_H) && !defined(GCP_NO_TRACE)
#include <sys/sdt.h>
#define GCP_TRACING 1
#define GCP_TRACE1(name, a) DTRACE_PROBE1(gcpool, name, a)
#define GCP_TRACE2(name, a, b) DTRACE_PROBE2(gcpool, name, a, b)
#define GCP_TRACE4(name, a, b, c, d) DTRACE_PROBE4(gcpool, name, a, b, c, d)
#else
#define GCP_TRACING 0
/* Arguments unevaluated (sizeof), but used: no unused-variable warnings. */
#define GCP_TRACE1(name, a) ((void)sizeof(a))
#define GCP_TRACE2(name, a, b) ((void)sizeof(a), (void)sizeof(b))
#define GCP_TRACE4(name, a, b, c, d) ((void)sizeof(a), (void)sizeof(b), (void)sizeof(c), (void)sizeof(d))
#endif

#endif
