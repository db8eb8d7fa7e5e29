#!/bin/sh
# perf/bufchurn -cycles FILE, the file perf/run draws cycles.png from: every
# cycle of the run, in order, with nothing made up and nothing hidden.
#  - polled often enough, the numbers run on without a hole, and the victim
#    hits a cycle is credited with never exceed what it moved to the victim
#    (one thread: the only getter is the one whose allocations collect);
#  - polled too rarely (more cycles between two polls than the history's 64),
#    the lost cycles are said in a "# gap" line, and the numbers written are
#    still increasing.
churn="${GCPOOL_BUILDDIR:-.}/perf/bufchurn"
out=$(mktemp)
trap 'rm -f "$out" "$out.log"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# bufchurn runs under Boehm, which the sanitizers and valgrind exclude.
if grep -q '^#define GCPOOL_SANITIZERS' "${GCPOOL_BUILDDIR:-.}/config.h" 2>/dev/null ||
    { [ -n "$GCPOOL_TEST_NO_BOEHM" ] && [ "$GCPOOL_TEST_NO_BOEHM" != 0 ]; }; then
    echo "SKIP: bufchurn runs under Boehm, which the sanitizers and valgrind exclude"
    exit 77
fi

GCPOOL_GC=boehm "$churn" -pool -garbage 4096 -n 5000 -t 1 -cycles "$out" -poll-every 1 >"$out.log" 2>&1 ||
    fail "bufchurn -cycles: $(cat "$out.log")"
awk -F '\t' '
    /^#/ || NF == 0 { print "gap or comment at line " NR ": " $0; bad = 1; next }
    NF != 8 { print "line " NR " has " NF " fields"; bad = 1; next }
    n && $1 != n + 1 { print "cycle " $1 " follows " n; bad = 1 }
    $7 > $5 { print "cycle " $1 ": " $7 " victim hits of " $5 " moved"; bad = 1 }
    { n = $1; rows++ }
    END { if (rows < 20) { print "only " rows " cycles"; bad = 1 } exit bad }
' "$out" || fail "the cycle file polled every request (above)"
rows=$(grep -vc '^#' "$out")

GCPOOL_GC=boehm "$churn" -pool -garbage 4096 -n 5000 -t 1 -cycles "$out" -poll-every 100000 >"$out.log" 2>&1 ||
    fail "bufchurn -cycles -poll-every 100000: $(cat "$out.log")"
grep -q '^# gap: cycles 1\.\.[0-9]* lost$' "$out" || fail "cycles lost between polls are not reported: $(head -3 "$out")"
awk -F '\t' '!/^#/ && NF { if (n && $1 <= n) { print "cycle " $1 " after " n; exit 1 } n = $1 }' "$out" ||
    fail "the cycle numbers of a file with gaps do not increase"
echo "PASS: $rows cycles without a gap when polled every request; gaps reported when polled too rarely"
