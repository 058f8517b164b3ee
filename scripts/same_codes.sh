#!/bin/bash
# Whether two zquant builds store the same codes and scales: every
# architecture of tests/fixtures/engine x every preset x round to nearest,
# GPTQ and LKD (plus the --for layouts), each quantized by both builds. A
# case is the same when the two .zq files are the same bytes, or, where the
# metadata is meant to differ, when `zquant inspect --json` describes the
# same tensors and `zquant dequantize` writes back the same weights.
# A refactoring that must not change results runs this before it lands.
#
# usage: scripts/same_codes.sh OLD_ZQUANT NEW_ZQUANT
# prints one line per differing case, then "N same, N differ"; exit 1 when
# any differ.
set -u
OLD=$1 NEW=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
same=0 differ=0 bytes=0

# inspect's "recipe" and "made_by" name the build and the paths; the
# tensors are what must agree
tensors_of() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps(d["tensors"], sort_keys=True))' "$1"; }

run_case() { # name, then the quantize/lkd command line after the model
    local name=$1 cmd=$2 model=$3
    shift 3
    local ok=1
    for side in old new; do
        local zq=$OLD
        [ $side = new ] && zq=$NEW
        rm -f "$TMP/$side.zq" "$TMP/$side.st"
        if ! "$zq" $cmd "$model" -o "$TMP/$side.zq" -q -t 2 "$@" 2>"$TMP/$side.err"; then
            echo "fails: $(head -c 300 "$TMP/$side.err")" >"$TMP/$side.out"
            continue
        fi
        { tensors_of <("$zq" inspect "$TMP/$side.zq" --json); } >"$TMP/$side.out" 2>&1
        "$zq" dequantize "$TMP/$side.zq" -o "$TMP/$side.st" 2>>"$TMP/$side.out"
    done
    cmp -s "$TMP/old.out" "$TMP/new.out" || ok=0
    if [ -f "$TMP/old.st" ] || [ -f "$TMP/new.st" ]; then cmp -s "$TMP/old.st" "$TMP/new.st" || ok=0; fi
    if [ -f "$TMP/old.zq" ] && cmp -s "$TMP/old.zq" "$TMP/new.zq"; then
        bytes=$((bytes + 1))
        ok=1
    fi
    if [ $ok = 1 ]; then
        same=$((same + 1))
    else
        differ=$((differ + 1))
        echo "differ: $name: $(diff <(head -c 2000 "$TMP/old.out") <(head -c 2000 "$TMP/new.out") | head -4)"
    fi
}

for E in tests/fixtures/engine/*/; do
    arch=$(basename "$E")
    for p in w8a8 w8a16 w4/8a16 w4/8a8 w4a16; do
        run_case "$arch $p rtn" quantize "$E" -p "$p" --group-size 16
        run_case "$arch $p rtn asym" quantize "$E" -p "$p" --group-size 16 --asym
        run_case "$arch $p gptq" quantize "$E" -p "$p" --group-size 16 --method gptq --calib "$E/tokens.bin" \
            --calib-samples 8 --seq-len 8
        run_case "$arch $p lkd" lkd "$E" -p "$p" --group-size 16 --steps 4 --data "$E/tokens.bin" --seq-len 8 \
            --batch 1 --data-batches 1
        for rt in llama.cpp vllm; do
            run_case "$arch $p rtn --for $rt" quantize "$E" -p "$p" --group-size 32 --for "$rt"
        done
    done
done
echo "$same same ($bytes of them the same bytes), $differ differ"
[ $differ = 0 ]
