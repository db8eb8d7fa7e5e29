#!/bin/sh
# The README's table of statistics fields is the library's list
# (GCPOOL_STAT_FIELDS in include/gcpool.h): regenerate it with
# gcpool-info --stats-markdown and compare.  A counter added to the list and
# not to the README (or the reverse) fails here; man/update-stats fixes it.
top="${TEST_SRCDIR:-.}"
info="${GCPOOL_BUILDDIR:-.}/gcpool-info"
expected=$(mktemp)
actual=$(mktemp)
trap 'rm -f "$expected" "$actual"' EXIT
"$info" --stats-markdown >"$expected" || { echo "FAIL: gcpool-info --stats-markdown"; exit 1; }
sed -n '/<!-- stats-table: begin -->/,/<!-- stats-table: end -->/p' "$top/README.md" | sed '1d;$d' >"$actual"
if ! diff -u "$expected" "$actual"; then
    echo "FAIL: README.md's table of statistics fields differs from GCPOOL_STAT_FIELDS (regenerate it: man/update-stats)"
    exit 1
fi
fields=$(grep -c '^| `' "$expected")
[ "$fields" -gt 0 ] || { echo "FAIL: gcpool-info --stats-markdown printed no field"; exit 1; }
echo "PASS: README's table matches the $fields fields of GCPOOL_STAT_FIELDS"
