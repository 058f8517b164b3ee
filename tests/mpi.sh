#!/usr/bin/env bash
# zquant lkd over MPI ranks (a binary built with MPI=1, run by mpirun -n 2
# --oversubscribe): blocks over ranks give the same bytes as one serial run,
# a killed rank fails the job, a rerun resumes to the same bytes; data
# parallel --input quantized gives the serial run's losses, bytes and KL
# (also with --init gptq --learn-clip): every sum over the batch is one
# tree whose subtrees the ranks hold (zquant/sum.h). Skipped (with a line saying
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
# SANITIZE=1: OpenMPI's own allocations outlive MPI_Finalize; zquant's leaks
# are what the other suites check
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
# root in CI containers; two ranks on whatever cores there are
MPIRUN=(mpirun -n 2 --oversubscribe --allow-run-as-root -x LD_PRELOAD -x ZQ_KILL_AFTER -x ASAN_OPTIONS)
export LD_PRELOAD= ZQ_KILL_AFTER=

"$ZQ" lkd $M -o "$TMP/serial.zq" -q -p w4/8a8 --steps 10 --seed 5
"${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/mpi.zq" -q -p w4/8a8 --steps 10 --seed 5 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 0 ] && cmp -s "$TMP/serial.zq" "$TMP/mpi.zq" && ok "two-ranks-same-bytes" ||
    fail "two-ranks-same-bytes" "exit $rc: $(tail -c 300 "$TMP/err")"

# rank 0 distils blocks 0-1 (of 5); it is killed once block 1 is recorded
ZQ_KILL_AFTER=/block-1.json:1 LD_PRELOAD="$PWD/$BUILD/fault.so" ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0 \
    "${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/killed.zq" -q -p w4/8a8 --steps 10 --seed 5 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -ne 0 ] && [ ! -e "$TMP/killed.zq" ] && [ -e "$TMP/killed.zq.lkd/block-1.json" ] &&
    ok "killed-rank-fails-the-job" || fail "killed-rank-fails-the-job" "exit $rc"
"${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/killed.zq" -q -p w4/8a8 --steps 10 --seed 5 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 0 ] && cmp -s "$TMP/serial.zq" "$TMP/killed.zq" && ok "rerun-resumes-to-same-bytes" ||
    fail "rerun-resumes-to-same-bytes" "exit $rc: $(tail -c 300 "$TMP/err")"

# --input quantized: data parallel, each rank half of every batch: every
# step's loss, the output and its KL on the bundled text are the serial
# run's, exactly
"$ZQ" lkd $M -o "$TMP/q1.zq" -p w4/8a8 --steps 10 --input quantized --json >"$TMP/q1.json"
"${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/q2.zq" -p w4/8a8 --steps 10 --input quantized --json >"$TMP/q2.json" 2>"$TMP/err"
# every step's loss of every block (the curves), then each block's start and end
losses() { tr -d ' \t\n' <"$1" | grep -o '"curve":\[[^]]*\]\|"loss_[a-z]*":[-0-9.e+]*' | sed 's/.*[:[]//; s/]//' | tr ',' '\n'; }
if paste <(losses "$TMP/q1.json") <(losses "$TMP/q2.json") | awk 'NF != 2 || $1 != $2 { bad = 1 } END { exit bad || NR != 60 }'
then ok "data-parallel/loss-curves-match"
else fail "data-parallel/loss-curves-match" "$(paste <(losses "$TMP/q1.json") <(losses "$TMP/q2.json") | awk '$1 != $2' | head -3 | tr '\n' ' ')"; fi
cmp -s "$TMP/q1.zq" "$TMP/q2.zq" && ok "data-parallel/same-bytes" ||
    fail "data-parallel/same-bytes" "$("$BUILD/zq_cmp" "$TMP/q1.zq" "$TMP/q2.zq" 2>&1 | head -c 300)"
head -c 40000 data/text/tinystories/valid-excerpt.txt >"$TMP/text.txt"
kl() { "$ZQ" eval "$1" --text "$TMP/text.txt" --tokenizer $M/tokenizer.bin --reference $M --json | tr -d ' \t\n' |
    sed -n 's/.*"kl":\([-0-9.e+]*\).*/\1/p'; }
k1=$(kl "$TMP/q1.zq") k2=$(kl "$TMP/q2.zq")
[ -n "$k1" ] && [ "$k1" = "$k2" ] && ok "data-parallel/kl-matches ($k1)" || fail "data-parallel/kl-matches" "serial '$k1' mpi '$k2'"
# with GPTQ as the start and learned clipping: the ranks' Hessians and the
# multipliers' gradients are combined too; the serial run's bytes
G=(-p w4/8a8 --group-size 32 --steps 10 --input quantized --init gptq --learn-clip)
"$ZQ" lkd $M -o "$TMP/g1.zq" -q "${G[@]}"
"${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/g2.zq" -q "${G[@]}" >"$TMP/out" 2>"$TMP/err"
k1=$(kl "$TMP/g1.zq") k2=$(kl "$TMP/g2.zq")
cmp -s "$TMP/g1.zq" "$TMP/g2.zq" && ok "data-parallel/gptq-clip-same-bytes ($k1)" ||
    fail "data-parallel/gptq-clip-same-bytes" "serial KL '$k1' mpi '$k2': $("$BUILD/zq_cmp" "$TMP/g1.zq" "$TMP/g2.zq" 2>&1 | head -c 200)"
ZQ_KILL_AFTER=/block-1.json:1 LD_PRELOAD="$PWD/$BUILD/fault.so" ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0 \
    "${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/qk.zq" -q -p w4/8a8 --steps 10 --input quantized >"$TMP/out" 2>"$TMP/err"
rc=$?
"${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/qk.zq" -q -p w4/8a8 --steps 10 --input quantized --resume >"$TMP/out" 2>"$TMP/err"
rc2=$?
[ "$rc" -ne 0 ] && [ "$rc2" -eq 0 ] && cmp -s "$TMP/q2.zq" "$TMP/qk.zq" && ok "data-parallel/killed-then-resumed-same-bytes" ||
    fail "data-parallel/killed-then-resumed-same-bytes" "exits $rc, $rc2: $(tail -c 300 "$TMP/err")"
"${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/q3.zq" -q -p w4/8a8 --steps 10 --input quantized --batch 3 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "does not split over 2 processes" "$TMP/err" && [ ! -e "$TMP/q3.zq" ] &&
    ok "data-parallel/uneven-batch-refused" || fail "data-parallel/uneven-batch-refused" "exit $rc: $(tail -c 300 "$TMP/err")"
# 3 sequences a process: not a subtree of the batch's sums
"${MPIRUN[@]}" "$ZQMPI" lkd $M -o "$TMP/q6.zq" -q -p w4/8a8 --steps 10 --input quantized --batch 6 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "a power of two of sequences per process" "$TMP/err" && [ ! -e "$TMP/q6.zq" ] &&
    ok "data-parallel/share-not-power-of-two-refused" ||
    fail "data-parallel/share-not-power-of-two-refused" "exit $rc: $(tail -c 300 "$TMP/err")"
# a mixture's experts see other tokens on each rank: no common tree, refused
E=tests/fixtures/engine/mixtral
"${MPIRUN[@]}" "$ZQMPI" lkd $E -o "$TMP/moe.zq" -q -p w4/8a8 --steps 2 --seq-len 8 --input quantized >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "data-parallel lkd and gptq of a mixture of experts" "$TMP/err" && [ ! -e "$TMP/moe.zq" ] &&
    ok "data-parallel/moe-refused" || fail "data-parallel/moe-refused" "exit $rc: $(tail -c 300 "$TMP/err")"

finish
