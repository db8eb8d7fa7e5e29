#!/bin/sh
# Go's pool tests, the conservation test and the exact statistics again in
# Go 1.12's mode: each local's shared part a growable array under Go's Mutex.
dir="${GCPOOL_BUILDDIR:-.}/tests"
export GCPOOL_SHARED=locked
status=0
for t in test_pool test_conservation test_stats; do
    echo "== $t with GCPOOL_SHARED=locked"
    "$dir/$t" || status=1
done
exit $status
