#!/usr/bin/env bash
# What a new user meets first: the plan before a long run, refusals before
# any work (conflicting options, rules that name no tensor, outputs that
# are not what the command writes), one exit code for an existing output,
# and long work visible in a pipeline. Prints "ok NAME" / "FAIL NAME" and a
# last line "N passed, N failed".
set -u
BUILD=${ZQ_BUILD:-build}
ZQ="$BUILD/zquant"
SUITE=frontdoor
. tests/suite.sh
M=data/models/stories260K
TEXT=data/text/tinystories/valid-excerpt.txt

# --- the plan ---------------------------------------------------------------------
run "$ZQ" quantize "$M" --dry-run -p w4/8a8 --group-size 32 --json
check plan/dry-run-json '[ "$rc" -eq 0 ] && [ "$(json_get "$TMP/out" "[(t[\"dtype\"], t[\"group\"]) for t in d[\"tensors\"] if t[\"name\"] == \"model.layers.0.mlp.up_proj.weight\"]")" = "[('"'"'int4'"'"', '"'"'g32'"'"')]" ]'
planned=$(json_get "$TMP/out" 'd["tensor_bytes"]')
"$ZQ" quantize "$M" -o "$TMP/p.zq" -p w4/8a8 --group-size 32 -q
stored=$("$ZQ" inspect "$TMP/p.zq" --json | json_get /dev/stdin 'sum(t["bytes"] for t in d["tensors"])')
check plan/bytes-are-what-quantize-stores '[ -n "$planned" ] && [ "$planned" = "$stored" ]'
run "$ZQ" quantize "$M" --dry-run -o "$TMP/never.zq"
check plan/dry-run-writes-nothing '[ "$rc" -eq 0 ] && grep -q "nothing is written" "$TMP/out" && [ ! -e "$TMP/never.zq" ]'
run "$ZQ" inspect "$M"
check plan/inspect-model-dir '[ "$rc" -eq 0 ] && grep -q "^model.layers.0.self_attn.q_proj.weight *64x64 *F16 *int8 " "$TMP/out" &&
    grep -q "^47 tensors, 35 quantized" "$TMP/out"'
run "$ZQ" inspect "$M/model.safetensors" --json
check plan/inspect-safetensors-file '[ "$rc" -eq 0 ] && [ "$(json_get "$TMP/out" "d[\"quantized\"]")" = 35 ]'

# --- said before the work ------------------------------------------------------------
run "$ZQ" quantize "$M" -o "$TMP/x.zq" --rule 'lm_head.weight=int8:row'
check before/rule-matching-nothing '[ "$rc" -eq 2 ] && grep -q "rule .lm_head.weight=int8:row. matches no tensor" "$TMP/err" && [ ! -e "$TMP/x.zq" ]'
run "$ZQ" quantize "$M" -o "$TMP/x.zq" --exclude '*.mlp.gate.weight'
check before/exclude-matching-nothing '[ "$rc" -eq 2 ] && grep -q "exclude .\*.mlp.gate.weight. matches no tensor" "$TMP/err"'
run "$ZQ" quantize "$M" -o "$TMP/x.zq" --rule 'lm_head.weight=int8:row' --allow-unmatched -q
check before/allow-unmatched '[ "$rc" -eq 0 ] && [ -s "$TMP/x.zq" ]'
rm -f "$TMP/x.zq"
run "$ZQ" lkd "$M" -o "$TMP/x.zq" --include 'nothing.*' --steps 1
check before/lkd-rule-matching-nothing '[ "$rc" -eq 2 ] && grep -q "matches no tensor" "$TMP/err" && [ ! -e "$TMP/x.zq" ] && [ ! -e "$TMP/x.zq.lkd" ]'
run "$ZQ" quantize "$M" -o "$TMP/x.gguf" --for vllm
check before/gguf-for-vllm '[ "$rc" -eq 2 ] && grep -q "asks for that runtime" "$TMP/err" && ! ls "$TMP"/x.gguf* >/dev/null 2>&1'
run "$ZQ" quantize "$M" -o "$TMP/x.safetensors"
check before/safetensors-output '[ "$rc" -eq 2 ] && grep -q "writes a .zq file" "$TMP/err" && [ ! -e "$TMP/x.safetensors" ]'
run "$ZQ" quantize "$M" -o "$TMP/c.zq" --compress 3 -q
check before/compress-takes-its-level '[ "$rc" -eq 0 ] && "$ZQ" inspect "$TMP/c.zq" --json >/dev/null && grep -q zstd <(head -c 20000 "$TMP/c.zq")'
run "$ZQ" quantize "$TMP/p.zq" -o "$TMP/x.zq"
check before/quantize-a-zq '[ "$rc" -eq 2 ] && grep -q "already quantized" "$TMP/err"'
mkdir -p "$TMP/pickle" && cp "$M/config.json" "$TMP/pickle/" && : >"$TMP/pickle/pytorch_model.bin"
run "$ZQ" quantize "$TMP/pickle" -o "$TMP/x.zq"
check before/pickle-says-convert '[ "$rc" -eq 3 ] && grep -q "convert them to safetensors" "$TMP/err"'

# --- one exit code for an existing output --------------------------------------------
: >"$TMP/e.zq"; : >"$TMP/e.gguf"; mkdir -p "$TMP/e.ct"
"$ZQ" quantize "$M" -o "$TMP/g.zq" -p w4/8a16 --for llama.cpp -q
"$ZQ" quantize "$M" -o "$TMP/v.zq" --for vllm -q
codes=""
for cmd in "quantize $M -o $TMP/e.zq" "quantize $M -o $TMP/e.gguf" "lkd $M -o $TMP/e.zq --steps 1" \
    "export $TMP/g.zq -o $TMP/e.gguf" "export $TMP/v.zq -o $TMP/e.ct --format ct" "dequantize $TMP/g.zq -o $TMP/e.zq" \
    "tokenize $TEXT --tokenizer $M/tokenizer.bin -o $TMP/e.zq"; do
    # shellcheck disable=SC2086
    "$ZQ" $cmd >/dev/null 2>&1
    codes="$codes $?"
done
check exists/exit-8-everywhere '[ "$codes" = " 8 8 8 8 8 8 8" ]'

# --- small things said right -----------------------------------------------------------
run "$ZQ" quantize "$M" -o "$TMP/big.zq" --group-size 1 --asym
check ratio/larger-says-larger '[ "$rc" -eq 0 ] && grep -q "x larger than FP16" "$TMP/out"'
"$ZQ" tokenize "$TEXT" --tokenizer "$M/tokenizer.bin" -o "$TMP/ids.bin"
"$ZQ" tokenize "$TEXT" --tokenizer "$M/tokenizer.bin" -o - >"$TMP/piped.bin"
check tokenize/stdout 'cmp -s "$TMP/ids.bin" "$TMP/piped.bin" && [ ! -e ./- ]'

# --- long work in a pipeline ---------------------------------------------------------------
"$ZQ" lkd "$M" -o "$TMP/l.zq" --steps 3 | cat >"$TMP/out"
check pipeline/a-line-per-block '[ "$(grep -c "^layer [0-4]: 3 steps" "$TMP/out")" = 5 ] && tail -n 2 "$TMP/out" | grep -q "^worst relative RMSE"'
( "$ZQ" lkd "$M" -o "$TMP/int.zq" --steps 100000 --layers 0 >"$TMP/out" 2>"$TMP/err" & echo $! >"$TMP/pid"; wait ) &
sleep 3
kill -INT "$(cat "$TMP/pid")" 2>/dev/null
wait
check pipeline/interrupt-says-resume 'grep -q "kept in .*int.zq.lkd/: run the same command with --resume" "$TMP/err" && [ ! -e "$TMP/int.zq" ]'

finish
