#!/bin/sh
# make fuzz: runs each libFuzzer harness for FUZZ_SECONDS (default 60) from
# its committed corpus (tests/fuzz/corpus/HARNESS), keeping what it finds in
# BUILD/corpus/HARNESS and crashes in BUILD/crashes/HARNESS. Exits 1 if
# anything crashed. A long campaign: FUZZ_SECONDS=3600 make fuzz, or one
# harness for as long as you like with more workers:
#   build/fuzz/fuzz_zq_sealed -jobs=8 -workers=8 build/fuzz/corpus/fuzz_zq_sealed tests/fuzz/corpus/fuzz_zq_sealed
# then keep the smallest set that covers as much (-merge=1 into a fresh
# directory) and commit it to tests/fuzz/corpus/HARNESS.
set -u
BUILD=${1:-build/fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
crashed=""
for h in $(ls tests/fuzz/corpus); do
    mkdir -p "$BUILD/corpus/$h" "$BUILD/crashes/$h"
    echo "== $h, ${SECONDS_EACH}s"
    # the HDF5 helper process bounds libhdf5's allocations itself (3 GB past
    # its start); libFuzzer's own limit must not fire first
    # and a failed allocation in that helper is libhdf5's to handle (it gets
    # NULL, as in a normal build), not an ASan abort
    extra=""
    asan="${ASAN_OPTIONS:-}"
    [ "$h" = fuzz_hdf5 ] && extra="-malloc_limit_mb=8192" && asan="allocator_may_return_null=1${asan:+:$asan}"
    ASAN_OPTIONS="$asan" "$BUILD/$h" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 $extra \
        -artifact_prefix="$BUILD/crashes/$h/" "$BUILD/corpus/$h" "tests/fuzz/corpus/$h" >"$BUILD/$h.log" 2>&1
    grep -E "stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb" "$BUILD/$h.log" | tr '\n' ' '
    echo
    if [ -n "$(ls -A "$BUILD/crashes/$h")" ]; then
        crashed="$crashed $h"
        grep -m 5 -E "ERROR|runtime error|SUMMARY" "$BUILD/$h.log"
    fi
done
if [ -n "$crashed" ]; then
    echo "crashes in:$crashed (inputs in $BUILD/crashes/; each goes to tests/fixtures/bad with a regression test)"
    exit 1
fi
echo "no crashes"
