#!/usr/bin/env bash
# The whole suite: unit tests, then end-to-end CLI tests. The last line is
# "N passed, N failed" over both.
set -u
cd "$(dirname "$0")/.."
BUILD=${ZQ_BUILD:-build}
export ZQ_BUILD=$BUILD
# SANITIZE=1 builds: a failed allocation returns NULL, as in a normal build
# (the tests of huge inputs check zquant's answer to that, not ASan's abort)
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1
total_pass=0
total_fail=0
for suite in "$BUILD/unit_tests" "tests/cli.sh" "tests/hostile.sh" "tests/probe.sh" "tests/export.sh" "tests/standalone.sh" "tests/frontdoor.sh" "tests/int4.sh" "tests/packed.sh" "tests/mpi.sh" "tests/determinism.sh" "tests/fuzz.sh"; do
    out=$("$suite" 2>&1)
    rc=$?
    printf '%s\n' "$out" | sed '$d'
    last=$(printf '%s\n' "$out" | tail -n 1)
    p=$(printf '%s' "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    f=$(printf '%s' "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$p" ]; then
        echo "FAIL $suite: did not finish (exit $rc): $last"
        p=0
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
