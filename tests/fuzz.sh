#!/usr/bin/env bash
# Replays every fuzz corpus through its harness, built with clang, ASan and
# UBSan (make check builds them): inputs that once crashed zquant stay
# fixed, and clang keeps building it. "ok NAME" / "FAIL NAME" per harness,
# then "N passed, N failed".
set -u
FUZZ=${ZQ_FUZZ_BUILD:-build/fuzz}
passed=0
failed=0
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1
for corpus in tests/fuzz/corpus/*/; do
    h=$(basename "$corpus")
    out=$("$FUZZ/replay_$h" "$corpus" 2>&1)
    rc=$?
    n=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) inputs$/\1/p' | tail -n 1)
    if [ "$rc" -eq 0 ] && [ "${n:-0}" -gt 0 ]; then
        echo "ok   fuzz/replay-$h ($n inputs)"
        passed=$((passed + 1))
    else
        echo "FAIL fuzz/replay-$h: exit $rc: $(printf '%s' "$out" | grep -m 3 -E 'ERROR|runtime error|SUMMARY')"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
