#!/usr/bin/env bash
# One answer on every machine: every command whose result is stored bits
# (GPTQ, each LKD mode, data-parallel and block-parallel MPI runs) and
# eval's figures give the same bytes for -t 1 and -t 2 and for 1, 2 and 4
# processes, under each of OpenBLAS's kernels that Debian's library picks
# between at run time (OPENBLAS_CORETYPE), on the bundled model. A kernel
# the CPU cannot run is skipped with a line saying so. Prints
# "N passed, N failed" last.
set -u
BUILD=${ZQ_BUILD:-build}
ZQ="$BUILD/zquant"
ZQMPI=${ZQ_MPI_BUILD:-$BUILD/mpi}/zquant
SUITE=determinism
. tests/suite.sh
M=data/models/stories260K
CAL=tests/fixtures/gptq/calib16.bin
HELD=tests/fixtures/real/tokens.bin
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
MPIRUN=(mpirun --oversubscribe --allow-run-as-root -x OPENBLAS_CORETYPE -x ASAN_OPTIONS)
have_mpi=0
command -v mpirun >/dev/null 2>&1 && [ -x "$ZQMPI" ] && have_mpi=1
[ "$have_mpi" = 1 ] || echo "skip determinism/mpi: no mpirun or no $ZQMPI (scripts/deps.sh installs OpenMPI)"

# the instructions each kernel needs, as /proc/cpuinfo names them
needs() {
    case $1 in
    SkylakeX) echo "avx512f avx512bw avx512dq avx512vl" ;;
    Haswell | Zen) echo "avx2 fma" ;;
    Sandybridge) echo "avx" ;;
    Prescott) echo "pni" ;;
    esac
}
runs_here() {
    local flag
    for flag in $(needs "$1"); do grep -qw "$flag" /proc/cpuinfo || return 1; done
}

# a pair of outputs (and its name): the same bytes, else the first
# differing tensor (zq_cmp) or byte
pair() {
    local name=$1 a=$2 b=$3
    if [ -s "$a" ] && cmp -s "$a" "$b"; then ok "$K/$name"; return; fi
    case $a in
    *.zq) fail "$K/$name" "$("$BUILD/zq_cmp" "$a" "$b" 2>&1 | head -c 300)" ;;
    *) fail "$K/$name" "$(cmp "$a" "$b" 2>&1 | head -c 300)" ;;
    esac
}

for K in Haswell SkylakeX Zen Sandybridge Prescott; do
    if ! runs_here "$K"; then
        echo "skip determinism/$K: this CPU lacks $(needs "$K")"
        continue
    fi
    export OPENBLAS_CORETYPE=$K
    D="$TMP/$K"
    mkdir -p "$D"
    # the kernel asked for is the one OpenBLAS runs (else this proves nothing)
    OPENBLAS_VERBOSE=2 "$ZQ" eval $M --tokens "$HELD" --json >"$D/eval1.json" 2>"$D/verbose"
    grep -q "Core: $K" "$D/verbose" && ok "$K/kernel-in-use" || fail "$K/kernel-in-use" "$(head -c 200 "$D/verbose")"

    "$BUILD/unit_tests" cholesky_inverse_blocked_and_thread_independent >"$D/unit" 2>&1 &&
        ok "$K/cholesky-same-bits-any-threads" || fail "$K/cholesky-same-bits-any-threads" "$(tail -c 300 "$D/unit")"

    "$ZQ" eval $M --tokens "$HELD" --json -t 1 >"$D/eval1.json" 2>/dev/null
    "$ZQ" eval $M --tokens "$HELD" --json -t 2 >"$D/eval2.json" 2>/dev/null
    pair eval-same-figures-any-threads "$D/eval1.json" "$D/eval2.json"

    G=(-q -p w4/8a8 --group-size 32 --method gptq --calib $CAL --calib-samples 16 --seq-len 128)
    for t in 1 2; do
        "$ZQ" quantize $M -o "$D/gptq-t$t.zq" "${G[@]}" -t $t
        "$ZQ" quantize $M -o "$D/gptq-ao-t$t.zq" "${G[@]}" --act-order -t $t
    done
    pair gptq-same-bytes-any-threads "$D/gptq-t1.zq" "$D/gptq-t2.zq"
    pair gptq-act-order-same-bytes-any-threads "$D/gptq-ao-t1.zq" "$D/gptq-ao-t2.zq"

    L=(-q -p w4/8a8 --group-size 32 --steps 4 --data-batches 4)
    for t in 1 2; do
        "$ZQ" lkd $M -o "$D/lkd-t$t.zq" "${L[@]}" -t $t
        "$ZQ" lkd $M -o "$D/lkdq-t$t.zq" "${L[@]}" --input quantized --init gptq --learn-clip --train-norms --data $CAL -t $t
    done
    pair lkd-same-bytes-any-threads "$D/lkd-t1.zq" "$D/lkd-t2.zq"
    pair lkd-gptq-clip-norms-same-bytes-any-threads "$D/lkdq-t1.zq" "$D/lkdq-t2.zq"

    [ "$have_mpi" = 1 ] || continue
    # blocks over ranks (FP inputs), and the data over ranks (quantized inputs)
    "${MPIRUN[@]}" -n 2 "$ZQMPI" lkd $M -o "$D/lkd-n2.zq" "${L[@]}" -t 1 >"$D/mpi.out" 2>&1
    pair lkd-blocks-over-2-ranks-same-bytes "$D/lkd-t1.zq" "$D/lkd-n2.zq"
    for n in 2 4; do
        "${MPIRUN[@]}" -n $n "$ZQMPI" lkd $M -o "$D/lkdq-n$n.zq" "${L[@]}" --input quantized --init gptq --learn-clip \
            --train-norms --data $CAL -t 1 >"$D/mpi.out" 2>&1
        pair "lkd-data-over-$n-ranks-same-bytes" "$D/lkdq-t1.zq" "$D/lkdq-n$n.zq"
    done
done
finish
