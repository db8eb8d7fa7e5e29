#!/bin/sh
# The USDT probes (lib/trace.h): every probe is in the built library's
# .note.stapsdt under provider gcpool, none lies inside the hit path's
# functions (gcpool_get, gcpool_put, gcpool_fastpath_*: their code is what it
# would be without probes), and, when asked (TEST_USDT_ATTACH=1) where this
# machine lets a test attach (perf, tracefs already mounted, uprobe_events
# writable), perf counts the cycles a program runs.  Skipped (77) when configure found no <sys/sdt.h>.
build="${GCPOOL_BUILDDIR:-.}"
probes="cycle__start cycle__end drop drop__bound miss new steal"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

if ! grep -q '^#define HAVE_SYS_SDT_H 1' "$build/config.h" || grep -q '^#define GCP_NO_TRACE 1' "$build/config.h"; then
    echo "SKIP: built without USDT probes (no <sys/sdt.h>: apt-get install systemtap-sdt-dev; or --disable-usdt)"
    exit 77
fi
command -v readelf >/dev/null 2>&1 || { echo "SKIP: readelf is not installed (binutils)"; exit 77; }
lib="$build/.libs/libgcpool.so"
[ -f "$lib" ] || lib="$build/.libs/libgcpool.a" # a static-only build: the archive's members
[ -f "$lib" ] || { echo "FAIL: no library in $build/.libs"; exit 1; }
tmp=$(mktemp -d "$build/usdt.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# "Provider: gcpool" then "Name: X" then "Location: 0x...", one note each.
readelf -n "$lib" | awk '/Provider:/ {p = $2} /Name:/ {n = $2} /Location:/ {sub(",", "", $2); print p, n, $2}' >"$tmp/notes"
for probe in $probes; do
    grep -q "^gcpool $probe " "$tmp/notes" || bad "probe gcpool:$probe is not in $lib"
done
stray=$(awk '$1 != "gcpool"' "$tmp/notes")
[ -z "$stray" ] || bad "probes outside provider gcpool: $stray"

# No probe inside the hit path (shared library: addresses are the notes').
if [ "${lib%.so}" != "$lib" ]; then
    nm -S --defined-only "$lib" | awk '$4 ~ /^gcpool_(get|put|fastpath_.*)$/ && $3 == "T"' >"$tmp/hit"
    [ -s "$tmp/hit" ] || bad "no gcpool_get or gcpool_put in $lib"
    while read -r provider name loc; do
        while read -r start size type sym; do
            inside=$(printf '%d %d %d\n' "$loc" "0x$start" "0x$size" | awk '{print ($1 >= $2 && $1 < $2 + $3)}')
            [ "$inside" = 1 ] && bad "probe $provider:$name at $loc is inside $sym, the hit path"
        done <"$tmp/hit"
    done <"$tmp/notes"
fi
[ $fail = 0 ] || exit 1
echo "PASS: $(wc -l <"$tmp/notes") probe sites, provider gcpool: $probes; none in the hit path"

# Attaching: asked for (TEST_USDT_ATTACH=1: it adds uprobe events to the
# running kernel, state outside the tree, removed again on exit), root (or a
# permissive perf_event_paranoid), perf, and a tracefs mounted already (the
# test mounts nothing) with uprobe_events writable.
why=""
tracefs=$(awk '$3 == "tracefs" {print $2; exit}' /proc/mounts 2>/dev/null)
if [ "${TEST_USDT_ATTACH:-0}" != 1 ]; then why="not asked for (TEST_USDT_ATTACH=1 make check TESTS=tests/test_usdt.sh: it writes the kernel's uprobe_events)"
elif ! command -v perf >/dev/null 2>&1; then why="perf is not installed (linux-perf)"
elif [ "${lib%.so}" = "$lib" ]; then why="a static-only build: perf probe attaches to the shared library"
elif [ -z "$tracefs" ]; then why="no tracefs mounted (mount -t tracefs nodev /sys/kernel/tracing, as root)"
elif [ ! -w "$tracefs/uprobe_events" ]; then why="$tracefs/uprobe_events is not writable (not root, or no uprobes in this kernel)"
elif grep -q 'sdt_gcpool' "$tracefs/uprobe_events"; then why="sdt_gcpool events exist already (another run, or a user's)"
fi
if [ -n "$why" ]; then
    echo "SKIP (attach): $why"
    exit 0 # the listing passed; only the attach is skipped, with its reason
fi
PERF_BUILDID_DIR="$tmp/perf"
export PERF_BUILDID_DIR
real=$(readlink -f "$lib")
cleanup() { perf probe -q -d 'sdt_gcpool:*' >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT
if ! perf probe -q -x "$real" -a %sdt_gcpool:cycle__start >"$tmp/probe" 2>&1; then
    echo "SKIP (attach): perf probe refused: $(tail -1 "$tmp/probe")"
    exit 0
fi
# A program that runs three explicit cycles, linked to this very library.
cat >"$tmp/three.c" <<'PROG'
#include <gcpool.h>
int main(void)
{
    gcpool_t *p = gcpool_create(NULL);
    static int obj;
    gcpool_put(p, &obj);
    for (int i = 0; i < 3; i++)
        gcpool_collect();
    gcpool_destroy(p);
    return 0;
}
PROG
top="${TEST_SRCDIR:-.}"
${CC:-cc} -I"$top/include" "$tmp/three.c" -o "$tmp/three" "$real" -Wl,-rpath,"$(dirname "$real")" ||
    { echo "FAIL: cannot build the attach test's program"; exit 1; }
GCPOOL_GC=sim perf stat -x, -e sdt_gcpool:cycle__start -o "$tmp/stat" "$tmp/three" ||
    { echo "FAIL: perf stat failed"; cat "$tmp/stat"; exit 1; }
count=$(awk -F, '/sdt_gcpool:cycle__start/ {print $1}' "$tmp/stat")
if [ "$count" != 3 ]; then
    echo "FAIL: perf counted '$count' gcpool:cycle__start, not 3"
    cat "$tmp/stat"
    exit 1
fi
echo "PASS (attach): perf counted 3 gcpool:cycle__start in a program that ran 3 cycles"
