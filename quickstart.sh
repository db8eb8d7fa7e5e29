#!/usr/bin/env bash
# gcpool's two commands (README, Quick start):
#   ./quickstart.sh         installs what is missing, builds, runs the demo
#   ./quickstart.sh test    builds with warnings as errors and runs the whole test
#                           suite: make check, then again under ThreadSanitizer and
#                           under AddressSanitizer+UBSan (the simulated source),
#                           then make distcheck
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD
jobs=$(nproc 2>/dev/null || echo 2)

packages=(build-essential autoconf automake libtool pkg-config libgc-dev libhwloc-dev check hwloc)

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
