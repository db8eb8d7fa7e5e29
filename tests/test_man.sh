#!/bin/sh
# The man pages (man/): each renders without a warning (groff -ww, and
# mandoc's lint when mandoc is installed); gcpool(7)'s environment list is the
# one lib/env.c declares (regenerated with gcpool-info --env-man), gcpool(3)'s
# statistics fields the ones GCPOOL_STAT_FIELDS lists (man/update-stats); and every
# function the library exports is named by a page, so that `man gcpool_get`
# finds it (the fast path's gcpool_fastpath_* are a contract with the
# header, not API).
top="${TEST_SRCDIR:-.}"
build="${GCPOOL_BUILDDIR:-.}"
pages="gcpool.3 gcpool_bufpool.3 gcpool_sync.3 gcpool.7 gcpool-info.1"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

if ! command -v groff >/dev/null 2>&1; then
    echo "SKIP: groff is not installed (apt-get install groff-base)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for page in $pages; do
    src="$top/man/$page"
    [ -f "$src" ] || { bad "$src is missing"; continue; }
    # -ww: every warning; -z: no output but the warnings; -t: tables.
    LC_ALL=C.UTF-8 groff -ww -z -man -t "$src" >"$tmp/groff" 2>&1
    [ -s "$tmp/groff" ] && bad "groff warns about $page:" && cat "$tmp/groff"
    if command -v mandoc >/dev/null 2>&1; then
        mandoc -Tlint -W style "$src" >"$tmp/mandoc" 2>&1
        [ -s "$tmp/mandoc" ] && bad "mandoc -Tlint warns about $page:" && cat "$tmp/mandoc"
    fi
done

# The environment list between the markers is what the library reads.
"$build/gcpool-info" --env-man >"$tmp/expected" || bad "gcpool-info --env-man failed"
sed -n '/^\.\\" env-table: begin/,/^\.\\" env-table: end/p' "$top/man/gcpool.7" | sed '1d;$d' >"$tmp/actual"
if ! diff -u "$tmp/expected" "$tmp/actual"; then
    bad "gcpool.7's environment list differs from lib/env.c's table (regenerate it: man/update-env)"
fi
vars=$(grep -c '^\.B GCPOOL_' "$tmp/expected")
[ "$vars" -gt 0 ] || bad "gcpool-info --env-man printed no variable"

# gcpool(3)'s list of statistics fields is GCPOOL_STAT_FIELDS (gcpool.h).
"$build/gcpool-info" --stats-man >"$tmp/expected" || bad "gcpool-info --stats-man failed"
sed -n '/^\.\\" stats-fields: begin/,/^\.\\" stats-fields: end/p' "$top/man/gcpool.3" | sed '1d;$d' >"$tmp/actual"
if ! diff -u "$tmp/expected" "$tmp/actual"; then
    bad "gcpool.3's statistics fields differ from GCPOOL_STAT_FIELDS (regenerate them: man/update-stats)"
fi
fields=$(grep -c '^\.B ' "$tmp/expected")
[ "$fields" -gt 0 ] || bad "gcpool-info --stats-man printed no field"

# Every exported function is in some page's NAME section.
lib="$build/.libs/libgcpool.so"
[ -f "$lib" ] || lib="$build/.libs/libgcpool.a"
if [ -f "$lib" ]; then
    names=$(for page in $pages; do
        sed -n '/^\.SH NAME/,/^\.SH/p' "$top/man/$page"
    done | tr -c 'a-z0-9_' '\n' | sort -u)
    for f in $(nm -g --defined-only "$lib" 2>/dev/null | awk '$2 == "T" {print $3}' | grep '^gcpool_' |
        grep -v '^gcpool_fastpath_' | sort -u); do
        printf '%s\n' "$names" | grep -qx "$f" || bad "$f is in no man page's NAME section"
    done
else
    bad "no library in $build/.libs to read the exported functions from"
fi

[ "$fail" -eq 0 ] || exit 1
echo "PASS: $(echo $pages | wc -w) pages render cleanly; gcpool.7 lists the $vars variables of lib/env.c, gcpool.3 the $fields statistics fields"
