#!/bin/sh
# The installed library exports gcpool_* and nothing else (-fvisibility=hidden).
lib="${GCPOOL_BUILDDIR:-.}/.libs/libgcpool.so"
if [ ! -f "$lib" ]; then
    echo "SKIP: $lib not built (static-only build)"
    exit 77
fi
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort)
stray=$(printf '%s\n' "$exported" | grep -v '^gcpool_' | grep -Ev '^(_init|_fini|_end|_edata|__bss_start)$' || true)
if [ -n "$stray" ]; then
    echo "FAIL: symbols outside gcpool_* exported from $lib:"
    printf '%s\n' "$stray"
    exit 1
fi
count=$(printf '%s\n' "$exported" | grep -c '^gcpool_')
# The fast path's contract (gcpool/fastpath.h): v3, and v1 and v2 kept for programs built
# against them.
for need in gcpool_create gcpool_destroy gcpool_get gcpool_put gcpool_collect gcpool_cycles gcpool_read_stats \
    gcpool_fastpath_v3 gcpool_fastpath_get_v3 gcpool_fastpath_put_v3 \
    gcpool_fastpath_v2 gcpool_fastpath_get_v2 gcpool_fastpath_put_v2 \
    gcpool_fastpath_v1 gcpool_fastpath_get_v1 gcpool_fastpath_put_v1; do
    printf '%s\n' "$exported" | grep -qx "$need" || { echo "FAIL: $need not exported"; exit 1; }
done
echo "PASS: $count symbols exported, all gcpool_*"
