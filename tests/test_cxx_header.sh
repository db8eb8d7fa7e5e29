#!/bin/sh
# The public headers are clean C++ too: a C++ program including all three
# compiles without a warning under g++'s -Wall -Wextra -Wzero-as-null-pointer-
# constant (which flagged fastpath.h's 0 for NULL), and, where the shared
# library is built, links and gets back what it put.
top="${TEST_SRCDIR:-.}"
build="${GCPOOL_BUILDDIR:-.}"
cxx="${CXX:-g++}"
if ! command -v "$cxx" >/dev/null 2>&1; then
    echo "SKIP: no C++ compiler ($cxx)"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/headers.cc" <<'CXX'
#include <sched.h>

#include <gcpool.h>
#include <gcpool/buf.h>
#include <gcpool/sync.h>

int main()
{
    /* On one CPU: a private slot is not stolen from another CPU's local. */
    cpu_set_t cpus;
    if (sched_getaffinity(0, sizeof cpus, &cpus) != 0)
        return 2;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &cpus)) {
            CPU_ZERO(&cpus);
            CPU_SET(cpu, &cpus);
            sched_setaffinity(0, sizeof cpus, &cpus);
            break;
        }
    }
    gcpool_t *pool = gcpool_create(nullptr);
    static int obj;
    gcpool_put(pool, &obj);
    void *back = gcpool_get(pool);
    gcpool_destroy(pool);
    return back == &obj ? 0 : 1;
}
CXX
flags="-std=c++11 -Wall -Wextra -Wzero-as-null-pointer-constant -Werror -I$top/include"
if ! "$cxx" $flags -c -o "$dir/headers.o" "$dir/headers.cc" 2>"$dir/cxx.out"; then
    cat "$dir/cxx.out"
    echo "FAIL: <gcpool.h> and its companions do not compile cleanly as C++ ($cxx $flags)"
    exit 1
fi
lib="$build/.libs/libgcpool.so"
if [ ! -f "$lib" ]; then
    echo "PASS: the headers compile cleanly as C++ (not run: $lib not built)"
    exit 0
fi
if ! "$cxx" -o "$dir/headers" "$dir/headers.o" -L"$build/.libs" -lgcpool -Wl,-rpath,"$build/.libs" \
    2>"$dir/ld.out"; then
    cat "$dir/ld.out"
    echo "FAIL: a C++ program does not link against $lib"
    exit 1
fi
if ! GCPOOL_GC=sim "$dir/headers"; then
    echo "FAIL: the C++ program did not get back what it put"
    exit 1
fi
echo "PASS: the headers compile cleanly as C++, and a C++ program gets and puts"
