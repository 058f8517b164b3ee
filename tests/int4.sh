#!/usr/bin/env bash
# INT4 past round to nearest, on the bundled stories260K: quantize --method
# gptq and lkd's variants (--init gptq, --learn-clip, --generated) each
# lower KL against FP16 on held-out text (the first 40 stories, the tokens
# of tests/fixtures/real) below round to nearest's, with calibration text
# from the other stories of the bundled excerpt; the results do not depend
# on --threads; GPTQ's .zq is an ordinary one (verify, export to GGUF);
# bad options and inputs are refused. Prints "N passed, N failed" last.
set -u
BUILD=${ZQ_BUILD:-build}
ZQ="$BUILD/zquant"
SUITE=int4
. tests/suite.sh
M=data/models/stories260K
HELD=tests/fixtures/real/tokens.bin
RECIPE=(-p w4/8a8 --group-size 32)
kl() { "$ZQ" eval "$1" --tokens "$HELD" --reference $M --json | sed -n 's/.*"kl":[[:space:]]*\([0-9.e-]*\).*/\1/p'; }
# below NAME KL BOUND: ok when KL < BOUND
below() { awk -v k="$2" -v b="$3" 'BEGIN { exit !(k != "" && k < b) }' && ok "$1" || fail "$1" "kl $2, bound $3"; }

# calibration: every story after the first 40 (the held-out ones)
awk 'd >= 40 { print } /<\|endoftext\|>/ { d++ }' data/text/tinystories/valid-excerpt.txt >"$TMP/calib.txt"
"$ZQ" tokenize "$TMP/calib.txt" --tokenizer $M/tokenizer.bin -o "$TMP/calib.bin"

"$ZQ" quantize $M -o "$TMP/rtn.zq" -q "${RECIPE[@]}"
rtn=$(kl "$TMP/rtn.zq")
GPTQ=(--method gptq --calib-text "$TMP/calib.txt" --calib-samples 32 --seq-len 256)

# --- GPTQ -------------------------------------------------------------------------------
run "$ZQ" quantize $M -o "$TMP/gptq.zq" -q "${RECIPE[@]}" "${GPTQ[@]}" -t 1
check gptq/runs '[ "$rc" -eq 0 ]'
# GPTQ's codes go straight into the output: no work directory, no patch
# files (a file where the work directory would be is no obstacle, and stays)
echo mine >"$TMP/direct.zq.lkd"
run "$ZQ" quantize $M -o "$TMP/direct.zq" -q "${RECIPE[@]}" --method gptq --calib "$TMP/calib.bin" --calib-samples 4 --seq-len 64
check gptq/writes-no-work-files '[ "$rc" -eq 0 ] && [ "$(cat "$TMP/direct.zq.lkd")" = mine ] && [ -s "$TMP/direct.zq" ]'
below gptq/lowers-kl-below-rtn "$(kl "$TMP/gptq.zq")" "$(awk -v r="$rtn" 'BEGIN { print 0.85 * r }')"
"$ZQ" quantize $M -o "$TMP/gptq2.zq" -q "${RECIPE[@]}" "${GPTQ[@]}" -t 2
cmp -s "$TMP/gptq.zq" "$TMP/gptq2.zq" && ok gptq/same-bytes-any-threads || fail gptq/same-bytes-any-threads
"$ZQ" quantize $M -o "$TMP/gptq-tok.zq" -q "${RECIPE[@]}" --method gptq --calib "$TMP/calib.bin" --calib-samples 32 --seq-len 256
# the same codes and scales (the recipes differ: one names a token file, the other text's ids)
"$ZQ" dequantize "$TMP/gptq.zq" -o "$TMP/same-a.safetensors" && "$ZQ" dequantize "$TMP/gptq-tok.zq" -o "$TMP/same-b.safetensors"
cmp -s "$TMP/same-a.safetensors" "$TMP/same-b.safetensors" && ok gptq/calib-tokens-equal-calib-text || fail gptq/calib-tokens-equal-calib-text
"$ZQ" quantize $M -o "$TMP/gptq-ao.zq" -q "${RECIPE[@]}" "${GPTQ[@]}" --act-order
below gptq/act-order-lowers-kl-below-rtn "$(kl "$TMP/gptq-ao.zq")" "$(awk -v r="$rtn" 'BEGIN { print 0.85 * r }')"
run "$ZQ" verify "$TMP/gptq.zq"
check gptq/verify '[ "$rc" -eq 0 ]'
# GPTQ chose the scales: they are not round to nearest's
"$ZQ" dequantize "$TMP/rtn.zq" -o "$TMP/rtn.safetensors"
"$ZQ" dequantize "$TMP/gptq.zq" -o "$TMP/gptq.safetensors"
cmp -s "$TMP/rtn.safetensors" "$TMP/gptq.safetensors" && fail gptq/not-round-to-nearest || ok gptq/not-round-to-nearest
run "$ZQ" quantize $M -o "$TMP/gptq.gguf" -q "${RECIPE[@]}" "${GPTQ[@]}" --act none
check gptq/exports-to-gguf '[ "$rc" -eq 0 ] && [ -s "$TMP/gptq.gguf" ]'
a=$("$ZQ" eval "$TMP/gptq.gguf" --tokens "$HELD" --json | sed -n 's/.*"nll":[[:space:]]*\([0-9.e-]*\).*/\1/p')
b=$("$ZQ" eval "$TMP/gptq.gguf.zq" --tokens "$HELD" --dequantize --json | sed -n 's/.*"nll":[[:space:]]*\([0-9.e-]*\).*/\1/p')
[ -n "$a" ] && [ "$a" = "$b" ] && ok gptq/gguf-reads-back-same || fail gptq/gguf-reads-back-same "$a vs $b"

# the Hessian path against numpy (scripts/gptq_pipeline_reference.py): block
# 0's q/k/v from their real input, RMS-normed embeddings quantized per token
"$ZQ" quantize $M -o "$TMP/pipe.zq" -q -p w4a16 --act int8-token --group-size 32 --method gptq \
    --calib tests/fixtures/gptq/calib16.bin --calib-samples 16 --seq-len 128 &&
    "$ZQ" dequantize "$TMP/pipe.zq" -o "$TMP/pipe.safetensors"
differ=$(/usr/bin/python3 - "$TMP/pipe.safetensors" tests/fixtures/gptq/pipeline.safetensors <<'PY'
import sys
sys.path.insert(0, "scripts")
import numpy as np
import stio
got, want = stio.load(sys.argv[1]), stio.load(sys.argv[2])
print(sum(int((got[k].astype(np.float32) != want[k].astype(np.float32)).sum()) for k in want))
PY
)
# float32 against float64 may flip a rounding tie, and what follows it in its row
[ -n "$differ" ] && [ "$differ" -le 81 ] && ok "gptq/block0-qkv-equal-numpy ($differ of 8192 differ)" ||
    fail gptq/block0-qkv-equal-numpy "'$differ' of 8192 weights differ"

# every architecture's layout (Conv1D, fused and per-head q/k/v, GQA,
# post-LN, experts with a Hessian each): GPTQ on the fixture's own tokens lowers its KL
for arch in gpt2 opt gpt_neox gptj llama qwen2 llama3 qwen3 mistral gemma2 gemma3_text phi3 phi3_longrope mixtral \
    qwen3_moe qwen3_moe_dense bert; do
    E=tests/fixtures/engine/$arch
    "$ZQ" quantize $E -o "$TMP/r-$arch.zq" -q -p w4/8a8 --group-size 16 2>"$TMP/err" &&
        "$ZQ" quantize $E -o "$TMP/g-$arch.zq" -q -p w4/8a8 --group-size 16 --method gptq --calib $E/tokens.bin \
            --calib-samples 8 --seq-len 8 2>>"$TMP/err" &&
        "$ZQ" verify "$TMP/g-$arch.zq" >/dev/null 2>>"$TMP/err"
    a=$("$ZQ" eval "$TMP/g-$arch.zq" --tokens $E/tokens.bin --reference $E --json 2>>"$TMP/err" | sed -n 's/.*"kl":[[:space:]]*\([0-9.e-]*\).*/\1/p')
    b=$("$ZQ" eval "$TMP/r-$arch.zq" --tokens $E/tokens.bin --reference $E --json 2>>"$TMP/err" | sed -n 's/.*"kl":[[:space:]]*\([0-9.e-]*\).*/\1/p')
    awk -v g="$a" -v r="$b" 'BEGIN { exit !(g != "" && g < r) }' && ok "gptq/arch-$arch" ||
        fail "gptq/arch-$arch" "kl gptq '$a' rtn '$b': $(head -c 200 "$TMP/err")"
done

# --- LKD variants ---------------------------------------------------------------------------
LKD=(--steps 40 --input quantized)
"$ZQ" lkd $M -o "$TMP/lkd-gptq.zq" -q "${RECIPE[@]}" "${LKD[@]}" --init gptq --data "$TMP/calib.bin" -t 1
below lkd/init-gptq-lowers-kl-below-rtn "$(kl "$TMP/lkd-gptq.zq")" "$(awk -v r="$rtn" 'BEGIN { print 0.8 * r }')"
"$ZQ" lkd $M -o "$TMP/lkd-clip.zq" -q "${RECIPE[@]}" "${LKD[@]}" --learn-clip -t 1
below lkd/learn-clip-lowers-kl-below-rtn "$(kl "$TMP/lkd-clip.zq")" "$(awk -v r="$rtn" 'BEGIN { print 0.9 * r }')"
"$ZQ" lkd $M -o "$TMP/lkd-gen.zq" -q "${RECIPE[@]}" "${LKD[@]}" --generated --data-batches 8
below lkd/generated-lowers-kl-below-rtn "$(kl "$TMP/lkd-gen.zq")" "$(awk -v r="$rtn" 'BEGIN { print 0.7 * r }')"
"$ZQ" lkd $M -o "$TMP/lkd-all.zq" -q "${RECIPE[@]}" "${LKD[@]}" --init gptq --learn-clip --data "$TMP/calib.bin" -t 1
"$ZQ" lkd $M -o "$TMP/lkd-all2.zq" -q "${RECIPE[@]}" "${LKD[@]}" --init gptq --learn-clip --data "$TMP/calib.bin" -t 2
below lkd/gptq-clip-lowers-kl-below-rtn "$(kl "$TMP/lkd-all.zq")" "$(awk -v r="$rtn" 'BEGIN { print 0.8 * r }')"
cmp -s "$TMP/lkd-all.zq" "$TMP/lkd-all2.zq" && ok lkd/same-bytes-any-threads || fail lkd/same-bytes-any-threads
"$ZQ" lkd $M -o "$TMP/lkd-clip2.zq" -q "${RECIPE[@]}" "${LKD[@]}" --learn-clip -t 2
cmp -s "$TMP/lkd-clip.zq" "$TMP/lkd-clip2.zq" && ok lkd/learn-clip-same-bytes-any-threads || fail lkd/learn-clip-same-bytes-any-threads

"$ZQ" lkd $M -o "$TMP/lkd-cos.zq" -q "${RECIPE[@]}" "${LKD[@]}" --learn-clip --lr-schedule cosine --lr 2e-4 -t 1
below lkd/cosine-schedule-lowers-kl-below-rtn "$(kl "$TMP/lkd-cos.zq")" "$(awk -v r="$rtn" 'BEGIN { print 0.9 * r }')"
cmp -s "$TMP/lkd-clip.zq" "$TMP/lkd-cos.zq" && fail lkd/cosine-schedule-differs || ok lkd/cosine-schedule-differs

# a run killed (SIGKILL) as its second block is recorded done resumes to the
# same bytes: the patches carry the chosen scales
ZQ_KILL_AFTER=/block-1.json:1 LD_PRELOAD="$PWD/$BUILD/fault.so" ASAN_OPTIONS=verify_asan_link_order=0 \
    sh -c '"$0" lkd "$1" -o "$2" -q -p w4/8a8 --group-size 32 --steps 40 --input quantized --init gptq --learn-clip --data "$3" -t 1; true' \
    "$ZQ" $M "$TMP/killed.zq" "$TMP/calib.bin" 2>/dev/null
[ ! -e "$TMP/killed.zq" ] && [ -e "$TMP/killed.zq.lkd/block-1.safetensors" ] && ok lkd/killed || fail lkd/killed
run "$ZQ" lkd $M -o "$TMP/killed.zq" -q "${RECIPE[@]}" "${LKD[@]}" --init gptq --learn-clip --data "$TMP/calib.bin" -t 1 --resume
check lkd/resume-runs '[ "$rc" -eq 0 ]'
cmp -s "$TMP/lkd-all.zq" "$TMP/killed.zq" && ok lkd/resumed-same-bytes || fail lkd/resumed-same-bytes

# --- refusals -------------------------------------------------------------------------------
run "$ZQ" quantize $M -o "$TMP/x.zq" --method gptq
check refuse/gptq-without-calibration '[ "$rc" -eq 2 ] && grep -q "needs calibration data" "$TMP/err"'
run "$ZQ" quantize $M -o "$TMP/x.zq" --calib "$TMP/calib.bin"
check refuse/calib-without-gptq '[ "$rc" -eq 2 ]'
run "$ZQ" quantize $M -o "$TMP/x.zq" -p w4/8a8 --per-tensor "${GPTQ[@]}"
check refuse/gptq-per-tensor '[ "$rc" -eq 2 ] && grep -q "GPTQ needs groups" "$TMP/err"'
run "$ZQ" quantize $M -o "$TMP/x.zq" --method sideways
check refuse/unknown-method '[ "$rc" -eq 2 ]'
run "$ZQ" quantize $M -o "$TMP/x.zq" "${GPTQ[@]}" --damp 0
check refuse/bad-damp '[ "$rc" -eq 2 ]'
printf '\x01\x00\x00\x00\xff\xff\x00\x00' >"$TMP/oov.bin"
run "$ZQ" quantize $M -o "$TMP/x.zq" --method gptq --calib "$TMP/oov.bin" --calib-samples 1 --seq-len 2
check refuse/calib-outside-vocabulary '[ "$rc" -eq 7 ] && grep -q "outside the vocabulary" "$TMP/err"'
run "$ZQ" quantize $M -o "$TMP/x.zq" --method gptq --calib-text "$TMP/calib.txt" --tokenizer "$TMP/nope.bin"
check refuse/missing-tokenizer '[ "$rc" -ne 0 ]'
[ ! -e "$TMP/x.zq" ] && [ ! -e "$TMP/x.zq.lkd" ] && ok refuse/nothing-left-behind || fail refuse/nothing-left-behind
run "$ZQ" lkd $M -o "$TMP/x.zq" --init fancy
check refuse/unknown-init '[ "$rc" -eq 2 ]'
run "$ZQ" lkd $M -o "$TMP/x.zq" --lr-schedule sawtooth
check refuse/unknown-lr-schedule '[ "$rc" -eq 2 ]'
finish
