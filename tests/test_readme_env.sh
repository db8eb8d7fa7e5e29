#!/bin/sh
# The README's environment table is the one lib/env.c declares: regenerate it
# with gcpool-info --env-markdown and compare.  A variable added to the code
# and not to the README (or the reverse) fails here.
top="${TEST_SRCDIR:-.}"
info="${GCPOOL_BUILDDIR:-.}/gcpool-info"
expected=$(mktemp)
actual=$(mktemp)
trap 'rm -f "$expected" "$actual"' EXIT
"$info" --env-markdown >"$expected" || { echo "FAIL: gcpool-info --env-markdown"; exit 1; }
sed -n '/<!-- env-table: begin -->/,/<!-- env-table: end -->/p' "$top/README.md" | sed '1d;$d' >"$actual"
if ! diff -u "$expected" "$actual"; then
    echo "FAIL: README.md's environment table differs from lib/env.c's (regenerate it with gcpool-info --env-markdown)"
    exit 1
fi
echo "PASS: README's table matches the $(grep -c '^| `GCPOOL_' "$expected") variables of lib/env.c"
