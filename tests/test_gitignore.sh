#!/bin/sh
# Every program the build makes in the source tree (an in-tree ./configure &&
# make) is ignored by git, so that `git status` stays clean: the programs come
# from the Makefile (TEST_PROGRAMS).  Skipped where the source tree is not
# the top of a git checkout (a release tarball, make distcheck's copy) or git
# is missing.
top=$(cd "${TEST_SRCDIR:-.}" && pwd -P)
if ! command -v git >/dev/null 2>&1 ||
    [ "$(git -C "$top" rev-parse --show-toplevel 2>/dev/null)" != "$top" ]; then
    echo "SKIP: $top is not the top of a git checkout"
    exit 77
fi
[ -n "$TEST_PROGRAMS" ] || { echo "FAIL: TEST_PROGRAMS is not set (run from make check)"; exit 1; }
missing=""
for program in $TEST_PROGRAMS; do
    git -C "$top" check-ignore -q --no-index "$program" || missing="$missing $program"
done
if [ -n "$missing" ]; then
    echo "FAIL: built programs git does not ignore (add them to .gitignore):$missing"
    exit 1
fi
echo "PASS: git ignores all $(echo $TEST_PROGRAMS | wc -w) programs the build makes"
