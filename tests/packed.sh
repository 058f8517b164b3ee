#!/usr/bin/env bash
# The integer backend against the reference path: `zquant eval X.zq` (the
# packed weights, integer products where the scheme quantizes inputs)
# against `eval X.zq --dequantize` (FP32 weights, activation quantization
# emulated), every scheme on every architecture's fixture and on the
# bundled model; the same bytes for any --threads. Prints "N passed, N
# failed" last.
#
# The bounds. Weight-only schemes compute the same products in another
# order (a tile of decoded weights per sgemm): NLL within 1e-4 relative,
# KL between the two below 1e-5 nats/token. Schemes that quantize inputs
# cannot be held that close by any implementation: a Linear's output in
# either path is within (groups + 3) 2^-24 of exact (tests/unit's bound),
# but the next Linear's token codes round that output, and an input one
# ulp from a rounding boundary moves a whole step (1/255 of the token's
# range), an error of the quantization's own size. The emulated path
# differs from itself that way across OpenBLAS kernels (on the bundled
# model, 10,000 tokens: KL 4.5e-4 between two kernels, against 2.3e-4
# between packed and emulated and 8.4e-4 between FP and W8A8). So for
# them: KL(packed || emulated) at most half of KL(FP || emulated), the
# quantization's own, and NLL within 1%.
set -u
BUILD=${ZQ_BUILD:-build}
ZQ="$BUILD/zquant"
LP="$BUILD/lp_compare"
BC="$BUILD/block_compare"
ENGINE=tests/fixtures/engine
M=data/models/stories260K
SUITE=packed
. tests/suite.sh
field() { sed -n "s/.*\"$1\":[[:space:]]*\([-0-9.e+]*\).*/\1/p" | head -n 1; }
# within A B REL: |A - B| <= REL * |B|
within() { awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(a != "" && d <= r * m) }'; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 <= b + 0) }'; }

# 64 token ids of the fixtures' vocabulary of 50, raw uint32
ids="$TMP/ids.bin"
: >"$ids"
for k in $(seq 0 63); do printf "\\x$(printf %02x $(((k * 37 + 11) % 50)))\\x00\\x00\\x00" >>"$ids"; done

# compare NAME MODEL.zq FP TOKENS CTX VOCAB WEIGHT_ONLY
compare() {
    local name=$1 zq=$2 fp=$3 tokens=$4 ctx=$5 vocab=$6 wonly=$7
    local a b q kl
    a=$("$ZQ" eval "$zq" --tokens "$tokens" --ctx "$ctx" --logprobs "$TMP/a.bin" -f --json 2>"$TMP/err" | tr -d ' \n' | field nll)
    b=$("$ZQ" eval "$zq" --tokens "$tokens" --ctx "$ctx" --logprobs "$TMP/b.bin" -f --json --dequantize 2>>"$TMP/err" |
        tr -d ' \n' | field nll)
    kl=$("$LP" "$TMP/a.bin" "$TMP/b.bin" "$vocab" 2>>"$TMP/err" | field kl)
    if [ "$wonly" = 1 ]; then
        if within "$a" "$b" 1e-4 && below "$kl" 1e-5; then ok "$name (nll $a / $b, KL $kl)"
        else fail "$name" "nll packed '$a' dequantized '$b', KL '$kl': $(head -c 300 "$TMP/err")"; fi
        return
    fi
    q=$("$ZQ" eval "$zq" --tokens "$tokens" --ctx "$ctx" --reference "$fp" --dequantize --json 2>>"$TMP/err" |
        tr -d ' \n' | field kl)
    if within "$a" "$b" 0.01 && below "$kl" "$(awk -v q="$q" 'BEGIN { print q / 2 }')"; then
        ok "$name (nll $a / $b, KL $kl, quantization's KL $q)"
    else
        fail "$name" "nll packed '$a' dequantized '$b', KL '$kl', quantization's '$q': $(head -c 300 "$TMP/err")"
    fi
}

# blocks NAME MODEL.zq TOKENS CTX: every block on the backend against the
# same block dequantized, both fed the same input: relative output error
# at most 1e-5 (float rounding; ~1e-7 measured), or, where an input one
# ulp from a rounding boundary moved a token code one step, at most a
# quarter of the activation quantization's own error in that block
# (block_compare's max_ratio, its comment says why; on qwen3 w4a8-g20 one
# code of token 9 flips: 1.4e-3 against the quantization's 7.5e-3)
blocks() {
    local out e r
    out=$("$BC" "$2" "$3" "$4" 2>"$TMP/err")
    e=$(field max_rel_err <<<"$out")
    r=$(field max_ratio <<<"$out")
    if below "$r" 1; then ok "$1 (max $e)"; else fail "$1" "max relative error '$e', $r of the allowance: $(head -c 300 "$TMP/err")"; fi
}

# scheme name, quantize options, whether it is weight-only (layer0-fp16:
# a block's Linears kept FP16, run as stored, a Conv1D one as FP32)
schemes=("w8a8|-p w8a8|0" "w4_8a8|-p w4/8a8|0" "w8a16|-p w8a16|1" "w4_8a16|-p w4/8a16|1" "w4a16|-p w4a16|1"
         "int8-tensor|-p w8a8 --act int8-tensor|0" "int8-token-sym|-p w8a8 --act int8-token-sym|0"
         "asym|-p w8a8 --asym|0" "w4a8-g20|-p w4/8a8 --group-size 20|0" "w8a8-g8|-p w8a8 --group-size 8|0"
         "layer0-fp16|-p w8a8 --exclude *.0.*|0")
for arch in gpt2 opt gpt_neox gptj llama qwen2 llama3 qwen3 mistral gemma2 gemma3_text phi3 phi3_longrope mixtral qwen3_moe_dense bert; do
    for s in "${schemes[@]}"; do
        IFS='|' read -r name opts wonly <<<"$s"
        set -f # the options' globs are zquant's
        # shellcheck disable=SC2086
        run "$ZQ" quantize "$ENGINE/$arch" -o "$TMP/$arch.zq" -f -q $opts
        set +f
        if [ "$rc" -ne 0 ]; then fail "$arch/$name/quantize" "$(head -c 300 "$TMP/err")"; continue; fi
        compare "$arch/$name" "$TMP/$arch.zq" "$ENGINE/$arch" "$ids" 16 50 "$wonly"
        blocks "$arch/$name/blocks" "$TMP/$arch.zq" "$ids" 16
    done
    # the same bytes for any --threads: logits, and generated ids
    "$ZQ" quantize "$ENGINE/$arch" -o "$TMP/$arch.zq" -f -q -p w4/8a8 --group-size 20
    "$ZQ" eval "$TMP/$arch.zq" --tokens "$ids" --ctx 16 --logprobs "$TMP/t1.bin" -f -t 1 >/dev/null 2>&1
    "$ZQ" eval "$TMP/$arch.zq" --tokens "$ids" --ctx 16 --logprobs "$TMP/t2.bin" -f -t 2 >/dev/null 2>&1
    check "$arch/threads-same-bytes" '[ -s "$TMP/t1.bin" ] && cmp -s "$TMP/t1.bin" "$TMP/t2.bin"'
done

# the bundled model, 10,000 tokens of real text
"$ZQ" tokenize data/text/tinystories/valid-excerpt.txt --tokenizer $M/tokenizer.bin -o "$TMP/all.bin" 2>/dev/null
head -c 40000 "$TMP/all.bin" >"$TMP/real.bin"
for s in "w8a8|-p w8a8|0" "w4_8a8|-p w4/8a8|0" "w4_8a16|-p w4/8a16|1"; do
    IFS='|' read -r name opts wonly <<<"$s"
    # shellcheck disable=SC2086
    "$ZQ" quantize $M -o "$TMP/s.zq" -f -q $opts
    compare "stories260K/$name" "$TMP/s.zq" $M "$TMP/real.bin" 512 512 "$wonly"
    [ "$wonly" = 1 ] && blocks "stories260K/$name/blocks" "$TMP/s.zq" "$TMP/real.bin" 256
done
run "$ZQ" generate "$TMP/s.zq" -n 24 -t 1 --json
one=$(cat "$TMP/out")
run "$ZQ" generate "$TMP/s.zq" -n 24 -t 2 --json
check stories260K/generate-threads-same-ids '[ -n "$one" ] && [ "$one" = "$(cat "$TMP/out")" ]'

# what runs is said: the kernels for a .zq, fp32 for the reference path and an FP model
kern=$("$ZQ" --version | sed -n 's/^integer kernels: //p')
be() { "$ZQ" eval "$@" --tokens "$TMP/real.bin" --max-tokens 600 --json 2>/dev/null | tr -d ' \t\n' | sed -n 's/.*"backend":"\([^"]*\)".*/\1/p'; }
check eval/says-its-backend '[ -n "$kern" ] && [ "$(be "$TMP/s.zq")" = "$kern" ] && [ "$(be "$TMP/s.zq" --dequantize)" = fp32 ] && [ "$(be $M)" = fp32 ]'

# zquant bench: the figures a machine reads
run "$ZQ" bench "$TMP/s.zq" --prefill 32 --decode 8 --reps 2 --json
check bench/json '[ "$rc" -eq 0 ] && for k in prefill_tps decode_tps load_s weight_bytes; do grep -q "\"$k\":[[:space:]]*[0-9]" "$TMP/out" || exit 1; done'
run "$ZQ" bench "$TMP/s.zq" --prefill 0 --decode 0
check bench/nothing-to-measure '[ "$rc" -eq 2 ] && grep -q "nothing to measure" "$TMP/err"'
run "$ZQ" bench "$ENGINE/bert" --prefill 8 --decode 0
check bench/refuses-an-encoder '[ "$rc" -eq 2 ] && grep -q "encoder" "$TMP/err"'
finish
