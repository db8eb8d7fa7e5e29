#!/bin/sh
# tests/internal.h is the tests' one door into the library (Go's
# export_test.go): no other file under tests/ includes a lib/, gc_glue/ or
# topology/ header or declares a gcp_* symbol by hand, so that a rename inside
# the library touches one test file.  testutil.h uses the public API only.
src="${TEST_SRCDIR:-.}"
headers=$(cd "$src" && ls lib/*.h lib/*/*.h gc_glue/*.h topology/*.h 2>/dev/null | sed 's|.*/||' | sort -u)
[ -n "$headers" ] || { echo "FAIL: no library headers found under $src"; exit 1; }
status=0
for f in "$src"/tests/*.c "$src"/tests/*.h; do
    case "$f" in */tests/internal.h) continue ;; esac
    for h in $headers; do
        if grep -Eq "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]([^\">]*/)?$h[\">]" "$f"; then
            echo "FAIL: ${f#"$src"/} includes the library's $h: reach it through tests/internal.h"
            status=1
        fi
    done
    if grep -Eq '^[[:space:]]*extern[^;]*\bgcp_' "$f"; then
        echo "FAIL: ${f#"$src"/} declares a gcp_* symbol itself: declare it in tests/internal.h"
        status=1
    fi
done
if grep -Eq '\b(gcp|GCP)_' "$src/tests/testutil.h"; then
    echo "FAIL: tests/testutil.h uses the library's internals (gcp_*): move that to tests/internal.h"
    status=1
fi
[ $status = 0 ] && echo "PASS: only tests/internal.h reaches inside the library"
exit $status
