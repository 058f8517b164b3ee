#!/usr/bin/env bash
# zquant lkd over MPI ranks (a binary built with MPI=1, run by mpirun -n 2
# --oversubscribe): the same bytes as one serial run, a killed rank failing
# the job, a rerun resuming to the same bytes. Skipped (with a line saying
# so) where OpenMPI is not installed. "N passed, N failed" last.
set -u
BUILD=${ZQ_BUILD:-build}
ZQ="$BUILD/zquant"
ZQMPI=${ZQ_MPI_BUILD:-$BUILD/mpi}/zquant
M=data/models/stories260K
SUITE=mpi
. tests/suite.sh

if ! command -v mpirun >/dev/null 2>&1 || [ ! -x "$ZQMPI" ]; then
    echo "skip mpi: no mpirun or no $ZQMPI (scripts/deps.sh installs OpenMPI; make check builds it)"
    finish
    exit
fi
# root in CI containers; two ranks on whatever cores there are
MPIRUN=(mpirun -n 2 --oversubscribe --allow-run-as-root -x LD_PRELOAD -x ZQ_KILL_AFTER -x ASAN_OPTIONS)
export LD_PRELOAD= ZQ_KILL_AFTER=

"$ZQ" lkd $M -o "$TMP/serial.zq" -q -p w4/8a8 --steps 10 --seed 5
"${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/mpi.zq" -q -p w4/8a8 --steps 10 --seed 5 >"$TMP/out" 2>"$TMP/err"
cmp -s "$TMP/serial.zq" "$TMP/mpi.zq" && ok "two-ranks-same-bytes" || fail "two-ranks-same-bytes" "$(tail -c 300 "$TMP/err")"

# rank 0 distils blocks 0-1 (of 5); it is killed once block 1 is recorded
ZQ_KILL_AFTER=/block-1.json:1 LD_PRELOAD="$PWD/$BUILD/fault.so" ASAN_OPTIONS=verify_asan_link_order=0 \
    "${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/killed.zq" -q -p w4/8a8 --steps 10 --seed 5 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -ne 0 ] && [ ! -e "$TMP/killed.zq" ] && [ -e "$TMP/killed.zq.lkd/block-1.json" ] &&
    ok "killed-rank-fails-the-job" || fail "killed-rank-fails-the-job" "exit $rc"
"${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/killed.zq" -q -p w4/8a8 --steps 10 --seed 5 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 0 ] && cmp -s "$TMP/serial.zq" "$TMP/killed.zq" && ok "rerun-resumes-to-same-bytes" ||
    fail "rerun-resumes-to-same-bytes" "exit $rc: $(tail -c 300 "$TMP/err")"

# a rank's error fails the job with that rank's message
"${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/q.zq" -q -p w4/8a8 --steps 10 --input quantized >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "over MPI ranks (data parallel) is not implemented" "$TMP/err" && [ ! -e "$TMP/q.zq" ] &&
    ok "input-quantized-refused" || fail "input-quantized-refused" "exit $rc: $(tail -c 300 "$TMP/err")"

finish
