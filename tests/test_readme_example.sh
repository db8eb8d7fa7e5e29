#!/bin/sh
# The README's usage example (between its usage-example markers) is a program:
# it compiles without a warning under -Wall -Wextra, runs, and its report at
# exit counts exactly the 100 000 gets it made.  make check builds it against
# the build tree; make installcheck (run by make distcheck) sets
# GCPOOL_INSTALLED=1 and builds it as the README says, with
# `pkg-config --cflags --libs gcpool bdw-gc` against the installed library.
top="${TEST_SRCDIR:-.}"
build="${GCPOOL_BUILDDIR:-.}"
cc="${CC:-cc}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
    [ -f "$dir/out" ] && cat "$dir/out"
    echo "FAIL: $*"
    exit 1
}

sed -n '/<!-- usage-example: begin -->/,/<!-- usage-example: end -->/p' "$top/README.md" |
    sed '/^<!--/d; /^```/d' >"$dir/scratch.c"
grep -q 'gcpool_create' "$dir/scratch.c" || fail "no usage example between the markers in README.md"

if [ -n "$GCPOOL_INSTALLED" ]; then
    flags=$(pkg-config --cflags --libs gcpool bdw-gc) || fail "pkg-config --cflags --libs gcpool bdw-gc"
    libdir=$(pkg-config --variable=libdir gcpool)
    where="the installed library ($libdir)"
else
    if [ ! -f "$build/.libs/libgcpool.so" ]; then
        echo "SKIP: $build/.libs/libgcpool.so not built (static-only build)"
        exit 77
    fi
    flags="-I$top/include -L$build/.libs -lgcpool $(pkg-config --cflags --libs bdw-gc)"
    libdir="$build/.libs"
    where="the build tree"
fi

# shellcheck disable=SC2086 # cc and flags are words
$cc -Wall -Wextra -Werror -o "$dir/scratch" "$dir/scratch.c" $flags -Wl,-rpath,"$libdir" \
    >"$dir/out" 2>&1 || fail "the README's example does not compile warning-free ($cc -Wall -Wextra)"
GCPOOL_STATS=json GCPOOL_STATS_FILE="$dir/report.json" "$dir/scratch" >"$dir/out" 2>&1 ||
    fail "the README's example exited with status $?"
gets=$(sed -n 's/.*{"name": "scratch", "gets": \([0-9]*\),.*/\1/p' "$dir/report.json")
[ "$gets" = 100000 ] || fail "the report at exit says $gets gets, not 100000: $(cat "$dir/report.json")"
grep -q '"destroyed": true' "$dir/report.json" || fail "the pool is not marked destroyed"
echo "PASS: the README's example compiles warning-free against $where and reports 100000 gets"
