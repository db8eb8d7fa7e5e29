#!/usr/bin/env bash
# gcpool's two commands (README, Quick start):
#   ./quickstart.sh         installs what is missing, builds, runs the demo
#   ./quickstart.sh test    builds with warnings as errors and runs the whole test
#                           suite: make check, then again under ThreadSanitizer and
#                           under AddressSanitizer+UBSan (the simulated source),
#                           the simulated-source suites under valgrind's memcheck,
#                           then make distcheck
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD
jobs=$(nproc 2>/dev/null || echo 2)

packages=(build-essential autoconf automake libtool pkg-config libgc-dev libhwloc-dev check hwloc
    valgrind groff-base systemtap-sdt-dev)

install_missing() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    if [ "$(id -u)" -ne 0 ]; then
        echo "quickstart: missing packages: ${missing[*]} (run as root, or apt-get install them)" >&2
        exit 1
    fi
    echo "quickstart: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
}

# build DIR [configure args...]: configures once into DIR, then makes.
build() {
    local dir=$1
    shift
    [ -x "$top/configure" ] || (cd "$top" && autoreconf -fi >/dev/null)
    mkdir -p "$dir"
    if [ ! -f "$dir/Makefile" ]; then
        (cd "$dir" && "$top/configure" -q "$@")
    fi
    make -C "$dir" -j"$jobs" >/dev/null
}

passed=0
failed=0
# check NAME DIR: runs make check in DIR and keeps the score.
check() {
    local name=$1 dir=$2
    echo "== $name"
    if make -C "$dir" -j"$jobs" check >"$dir/check.out" 2>&1; then
        passed=$((passed + 1))
        grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' "$dir/check.out" | sed 's/^/   /'
    else
        failed=$((failed + 1))
        cat "$dir/check.out"
        for log in "$dir"/tests/*.log; do
            grep -q -E '^(FAIL|ERROR)' "${log%.log}.trs" 2>/dev/null && { echo "--- $log"; cat "$log"; }
        done
    fi
}

# Suites memcheck runs, from the normal build, fed calm memory pressure as
# make check feeds it (Makefile.am).  Boehm cases skip under valgrind
# (GCPOOL_TEST_NO_BOEHM=1: slow, and its conservative scan reads uninitialised
# stack by design); rseq is absent there, so the lock pin is what runs.  Most
# run in one process (CK_FORK=no, so leaks are checked once, at the end); those
# marked fork: need a fresh process per test (the source, the topology and the
# at-exit report are chosen once per process).  Left out: test_pool (its Boehm
# binding cases call GC_INIT themselves) and test_buf (leaks in its own oversize
# tests; hangs under CK_FORK=no).  Not helgrind nor drd: they know pthread
# locks but neither C11 atomics nor our futex locks, so they flag every
# lock-free ring and pin (ThreadSanitizer, above, understands both).
valgrind_suites=(test_conservation test_sync test_debug test_threads test_fork test_ring test_reentry test_signals
    test_badinput test_env fork:test_topology fork:test_stats fork:test_sim fork:test_cycles
    fork:test_pace)

# What memcheck must not count: hwloc's own overlapping memcpy when it builds a
# synthetic topology; and, in test_fork's children, the allocations the parent's
# busy_* threads had in flight when fork left those threads behind.
valgrind_suppressions() {
    cat <<'SUPP'
{
   hwloc-synthetic-memcpy-overlap
   Memcheck:Overlap
   fun:__memcpy_chk
   obj:*/libhwloc.so*
}
{
   test_fork-child-vanished-threads
   Memcheck:Leak
   match-leak-kinds: definite,possible
   ...
   fun:busy_*
}
SUPP
}

# memcheck_one DIR SUITE: runs one suite under memcheck; its exit status in
# DIR/valgrind/NAME.rc, its output in DIR/valgrind/NAME.log.
memcheck_one() {
    local dir=$1 suite=$2 fork=no rc=0
    [ "${suite#fork:}" != "$suite" ] && fork=yes
    suite=${suite#fork:}
    CK_FORK=$fork CK_TIMEOUT_MULTIPLIER=10 GCPOOL_TEST_N=20 GCPOOL_TEST_NO_BOEHM=1 \
        GCPOOL_BUILDDIR="$dir" TEST_SRCDIR="$top" \
        GCPOOL_PRESSURE_FILE="$top/tests/pressure/calm" GCPOOL_PRESSURE_CGROUP="$top/tests/pressure/no-cgroup" \
        valgrind -q --error-exitcode=1 --leak-check=full --suppressions="$dir/valgrind/supp" \
        "$dir/tests/$suite" >"$dir/valgrind/$suite.log" 2>&1 || rc=$?
    echo "$rc" >"$dir/valgrind/$suite.rc"
}

# memcheck DIR: the suites above, $jobs at a time (valgrind runs a process's
# threads one at a time); counts as one suite.
memcheck() {
    local dir=$1 start=$SECONDS bad=()
    echo "== valgrind memcheck (simulated source, lock pin)"
    local programs=("${valgrind_suites[@]#fork:}")
    if ! make -C "$dir" -j"$jobs" "${programs[@]/#/tests/}" >/dev/null; then
        failed=$((failed + 1))
        return
    fi
    rm -rf "$dir/valgrind"
    mkdir -p "$dir/valgrind"
    valgrind_suppressions >"$dir/valgrind/supp"
    for suite in "${valgrind_suites[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
        memcheck_one "$dir" "$suite" &
    done
    wait
    for suite in "${valgrind_suites[@]}"; do
        suite=${suite#fork:}
        [ "$(cat "$dir/valgrind/$suite.rc" 2>/dev/null)" = 0 ] || bad+=("$suite")
    done
    if [ ${#bad[@]} -eq 0 ]; then
        passed=$((passed + 1))
        echo "   ${#valgrind_suites[@]} suites clean in $((SECONDS - start)) s"
    else
        failed=$((failed + 1))
        for suite in "${bad[@]}"; do
            echo "--- $suite (valgrind)"
            cat "$dir/valgrind/$suite.log"
        done
    fi
}

install_missing
case "${1:-demo}" in
demo)
    build build
    make -C build demo
    ;;
test)
    build build --enable-werror
    check "make check" build
    build build-tsan --enable-werror --enable-sanitizers=thread --disable-shared
    check "make check under ThreadSanitizer" build-tsan
    build build-asan --enable-werror --enable-sanitizers=address,undefined --disable-shared
    check "make check under AddressSanitizer and UBSan" build-asan
    memcheck "$top/build"
    echo "== make distcheck"
    if make -C build distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror >build/distcheck.out 2>&1; then
        passed=$((passed + 1))
        grep -E 'archives ready|distcheck' build/distcheck.out | tail -1 | sed 's/^/   /'
    else
        failed=$((failed + 1))
        tail -50 build/distcheck.out
    fi
    echo "test-suites: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    ;;
*)
    echo "usage: $0 [demo|test]" >&2
    exit 2
    ;;
esac
