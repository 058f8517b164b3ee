#!/usr/bin/env bash
# What a probe of the newer surfaces found (issue 16, part 2), each case as
# a user would meet it: export folders that lost data or were left behind,
# readers that accepted files contradicting themselves (or crashed on
# them), LKD work directories reused with another model, MPI ranks started
# with other options, the tokenizer's silent ends, NaN weights that ran,
# and small option holes. Prints "N passed, N failed" last.
set -u
BUILD=${ZQ_BUILD:-build}
ZQ="$PWD/$BUILD/zquant"
ZQMPI=${ZQ_MPI_BUILD:-$BUILD/mpi}/zquant
FAULT="$PWD/$BUILD/fault.so"
M=data/models/stories260K
E=tests/fixtures/engine/llama
SUITE=probe
. tests/suite.sh
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 # the fault shim preloads before ASan

one_line() { [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q "^zquant: " "$TMP/err"; }
leftovers() { find "$1" -name '.*.zq-*' -o -name '.*.tmp-*' 2>/dev/null | head -3; }
# poke FILE TENSOR BYTES: BYTES (printf escapes) over the first value of
# TENSOR in a safetensors FILE, as damage from outside would
poke() {
    local n off
    n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    off=$(dd if="$1" bs=1 skip=8 count="$n" 2>/dev/null | grep -o "\"$2\":{[^}]*}" | sed 's/.*data_offsets":\[\([0-9]*\),.*/\1/')
    printf "$3" | dd of="$1" bs=1 seek=$((8 + n + off)) conv=notrunc 2>/dev/null
}

"$ZQ" quantize $M -o "$TMP/v.zq" -q --for vllm

# --- 1, 10: compressed-tensors export folders -----------------------------------------
CT=(export "$TMP/v.zq" --format compressed-tensors --from $M -q)
mkdir "$TMP/real" && echo keep >"$TMP/beside.txt" && ln -s real "$TMP/link"
run "$ZQ" "${CT[@]}" -o "$TMP/link" -f
check ct-out/force-follows-symlink '[ "$rc" -eq 0 ] && [ -L "$TMP/link" ] && [ -s "$TMP/real/model.safetensors" ] &&
    [ "$(cat "$TMP/beside.txt")" = keep ]'
mkdir -p "$TMP/sub/inner" && touch "$TMP/sub/inner/x"
run "$ZQ" "${CT[@]}" -o "$TMP/sub" -f
check ct-out/force-over-subfolders-leaves-nothing '[ "$rc" -eq 0 ] && [ ! -e "$TMP/sub/inner" ] && [ -z "$(leftovers "$TMP")" ]'
# a folder that appears at the target while the export runs is not replaced
ZQ_MKDIR_AFTER=/config.json:1 ZQ_MKDIR_PATH="$TMP/late" LD_PRELOAD="$FAULT" run "$ZQ" "${CT[@]}" -o "$TMP/late"
check ct-out/appeared-meanwhile-kept '[ "$rc" -eq 8 ] && grep -q "appeared while writing" "$TMP/err" && [ -d "$TMP/late" ] &&
    [ -z "$(ls -A "$TMP/late")" ] && [ -z "$(leftovers "$TMP")" ]'
ZQ_INT_AFTER=/config.json:1 LD_PRELOAD="$FAULT" run "$ZQ" "${CT[@]}" -o "$TMP/int"
check ct-out/sigint-leaves-nothing '[ "$rc" -eq 130 ] && [ ! -e "$TMP/int" ] && [ -z "$(leftovers "$TMP")" ]'
wins=0
for i in 1 2 3 4 5 6; do
    rm -rf "$TMP/race"
    "$ZQ" "${CT[@]}" -o "$TMP/race" 2>/dev/null &
    "$ZQ" "${CT[@]}" -o "$TMP/race" 2>/dev/null
    a=$?
    wait $!
    b=$?
    [ $((a == 0)) -ne $((b == 0)) ] && wins=$((wins + 1))
done
check ct-out/concurrent-exports-exactly-one-wins '[ "$wins" -eq 6 ] && [ -z "$(leftovers "$TMP")" ]'
# a full disk (a file size limit here) is reported against the output, not the temp folder
(trap '' XFSZ; ulimit -f 64; exec "$ZQ" "${CT[@]}" -o "$TMP/full") >"$TMP/out" 2>"$TMP/err"
rc=$?
check ct-out/full-disk-names-the-output '[ "$rc" -eq 4 ] && one_line && grep -q "/full/model.safetensors" "$TMP/err" &&
    ! grep -q "\.full\.zq-" "$TMP/err" && [ ! -e "$TMP/full" ] && [ -z "$(leftovers "$TMP")" ]'

# --- 11: one rule for every writer ------------------------------------------------------
"$ZQ" quantize $M -o "$TMP/x.gguf" -q -p w4/8a16
run "$ZQ" quantize $M -o "$TMP/x.gguf" -q -p w4/8a16
check out/existing-gguf-exit-8 '[ "$rc" -eq 8 ] && one_line'
mkfifo "$TMP/f.gguf"
(timeout 20 cat "$TMP/f.gguf" >"$TMP/from-fifo.gguf" &)
run "$ZQ" quantize $M -o "$TMP/f.gguf" -q -p w4/8a16
sleep 0.3
a=$("$ZQ" eval "$TMP/from-fifo.gguf" --tokens tests/fixtures/real/tokens.bin --json 2>/dev/null | grep '"nll"')
b=$("$ZQ" eval "$TMP/x.gguf" --tokens tests/fixtures/real/tokens.bin --json 2>/dev/null | grep '"nll"')
check out/fifo-gguf-written-into '[ "$rc" -eq 0 ] && [ -p "$TMP/f.gguf" ] && [ -n "$a" ] && [ "$a" = "$b" ]'

# --- 2, 6: readers that must refuse what contradicts itself -------------------------------
while IFS='|' read -r file code fragment; do
    case "$file" in "#"* | "") continue ;; esac
    for cmd in eval generate; do
        if [ $cmd = eval ]; then run "$ZQ" eval "tests/fixtures/probe/$file" --tokens $E/tokens.bin
        else run "$ZQ" generate "tests/fixtures/probe/$file" -n 2; fi
        check "reader/$cmd-$file" '[ "$rc" -eq "$code" ] && one_line && grep -qF "$fragment" "$TMP/err"'
    done
done <tests/fixtures/probe/EXPECTED
run "$ZQ" quantize tests/fixtures/probe/weight-shape-huge -o "$TMP/q.zq" -q
check reader/quantize-weight-shape-huge '[ "$rc" -eq 3 ] && one_line && [ ! -e "$TMP/q.zq" ]'

# --- 7: config and tensors against each other ----------------------------------------------
cp -r $M "$TMP/h16"
sed -i 's/"num_attention_heads": 8/"num_attention_heads": 16/' "$TMP/h16/config.json"
run "$ZQ" quantize "$TMP/h16" -o "$TMP/h16.gguf" -q -p w8a16
check config/heads-that-the-weights-do-not-hold '[ "$rc" -eq 3 ] && one_line && grep -q "the config implies" "$TMP/err" &&
    [ ! -e "$TMP/h16.gguf" ] && [ ! -e "$TMP/h16.gguf.zq" ]'

# --- 9: NaN weights ------------------------------------------------------------------------
cp -r $E "$TMP/nan"
poke "$TMP/nan/model.safetensors" model.layers.1.mlp.up_proj.weight '\x00\x00\xc0\x7f'
run "$ZQ" eval "$TMP/nan" --tokens $E/tokens.bin
check nan/eval-refuses '[ "$rc" -eq 7 ] && one_line && grep -q "up_proj.weight.*NaN or Inf" "$TMP/err"'
run "$ZQ" generate "$TMP/nan" -n 4
check nan/generate-refuses '[ "$rc" -eq 7 ] && one_line'

# --- 3, 4: LKD work directories belong to the checkpoint and data that made them ------------
cp -r $M "$TMP/lm"
L=(-p w4/8a8 --steps 3 --seq-len 8 -q -t 1)
ZQ_KILL_AFTER=/block-1.json:1 LD_PRELOAD="$FAULT" sh -c '"$0" lkd "$1" -o "$2" -p w4/8a8 --steps 3 --seq-len 8 -q -t 1; true' \
    "$ZQ" "$TMP/lm" "$TMP/lm.zq" 2>/dev/null
rm -rf "$TMP/lm" && cp -r $E "$TMP/lm" # another model, other shapes, at the same path
run "$ZQ" lkd "$TMP/lm" -o "$TMP/lm.zq" "${L[@]}" --resume
check lkd-work/resume-with-other-shapes-refused '[ "$rc" -eq 2 ] && one_line && grep -q "another checkpoint" "$TMP/err"'
cp -r $M "$TMP/wm"
"$ZQ" lkd "$TMP/wm" --work "$TMP/w" "${L[@]}"
poke "$TMP/wm/model.safetensors" model.layers.2.mlp.up_proj.weight '\x00\x3c' # same shapes, another weight (F16 1.0)
run "$ZQ" lkd "$TMP/wm" --work "$TMP/w" -o "$TMP/wm.zq" "${L[@]}"
check lkd-work/assemble-with-other-weights-refused '[ "$rc" -eq 2 ] && one_line && grep -q "another checkpoint" "$TMP/err" &&
    [ ! -e "$TMP/wm.zq" ]'
"$ZQ" tokenize tests/fixtures/tokenizers/bytelevel/input.txt --tokenizer $M/tokenizer.bin -o "$TMP/d.bin" >/dev/null
"$ZQ" lkd $M --work "$TMP/wd" --data "$TMP/d.bin" --layers 0 "${L[@]}"
head -c 4000 "$TMP/d.bin" >"$TMP/d2.bin" && mv "$TMP/d2.bin" "$TMP/d.bin" # other tokens, same path
run "$ZQ" lkd $M --work "$TMP/wd" --data "$TMP/d.bin" --layers 0 -o "$TMP/wd.zq" "${L[@]}"
check lkd-work/other-data-refused '[ "$rc" -eq 2 ] && one_line && grep -q "made from other data" "$TMP/err"'
# results do not depend on the thread count, so neither does a work directory
"$ZQ" lkd $M -o "$TMP/t1.zq" "${L[@]}" --layers 0-1
"$ZQ" lkd $M --work "$TMP/wt" "${L[@]}" --layers 0-1
run "$ZQ" lkd $M --work "$TMP/wt" -o "$TMP/t2.zq" -p w4/8a8 --steps 3 --seq-len 8 -q -t 2 --layers 0-1
check lkd-work/threads-do-not-matter '[ "$rc" -eq 0 ] && cmp -s "$TMP/t1.zq" "$TMP/t2.zq"'
run "$ZQ" lkd $M --work "$TMP/same.zq" -o "$TMP/same.zq" "${L[@]}"
check lkd-work/work-dir-as-output-refused '[ "$rc" -eq 2 ] && one_line && [ ! -e "$TMP/same.zq" ]'
run "$ZQ" lkd $M --work "$TMP/none" -o "$TMP/none.zq" "${L[@]}"
check lkd-work/assemble-from-nothing-creates-nothing '[ "$rc" -eq 2 ] && one_line && [ ! -e "$TMP/none" ]'

# --- 5: MPI ranks of one job take one set of options ----------------------------------------
if command -v mpirun >/dev/null 2>&1 && [ -x "$ZQMPI" ]; then
    MPI=(mpirun --oversubscribe --allow-run-as-root -x ASAN_OPTIONS)
    export ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0
    for opts in "--input fp:--input quantized" "--lr 1e-4:--lr 2e-4" "-p w4/8a8:-p w8a8"; do
        a=${opts%%:*} b=${opts#*:}
        # shellcheck disable=SC2086
        timeout 60 "${MPI[@]}" -n 1 "$ZQMPI" lkd $M -o "$TMP/m.zq" --steps 2 -q $a : -n 1 "$ZQMPI" lkd $M -o "$TMP/m.zq" \
            --steps 2 -q $b >"$TMP/out" 2>"$TMP/err"
        rc=$?
        check "mpi/other-options-refused ($b)" '[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "rank 1 was started with other options" "$TMP/err" &&
            [ ! -e "$TMP/m.zq" ]'
    done
    timeout 60 "${MPI[@]}" -n 1 "$ZQMPI" lkd $M -o "$TMP/m.zq" --steps 2 -q -t 1 : -n 1 "$ZQMPI" lkd $M -o "$TMP/m.zq" \
        --steps 2 -q -t 2 >"$TMP/out" 2>"$TMP/err"
    rc=$?
    check mpi/other-threads-taken '[ "$rc" -eq 0 ] && [ -s "$TMP/m.zq" ]'
else
    echo "skip probe/mpi: no mpirun or no $ZQMPI"
fi

# --- 8: the tokenizer ---------------------------------------------------------------------
TK=tests/fixtures/tokenizers/bytelevel
sed 's/"normalizer": null/"normalizer": {"type": "NFC"}/' $TK/tokenizer.json >"$TMP/nfc.json"
sed 's/"normalizer": null/"normalizer": {"type": "NFKC"}/' $TK/tokenizer.json >"$TMP/nfkc.json"
printf 'Caf\xc3\xa9 na\xc3\xafve\n' >"$TMP/composed.txt"          # é, ï precomposed
printf 'Cafe\xcc\x81 nai\xcc\x88ve\n' >"$TMP/decomposed.txt"      # e + U+0301, i + U+0308
printf '\xef\xac\x81ne \xe2\x91\xa0\n' >"$TMP/compat.txt"         # U+FB01 "fi" ligature, U+2460 circled 1
printf 'fine 1\n' >"$TMP/plain.txt"
for f in composed decomposed compat plain; do
    "$ZQ" tokenize "$TMP/$f.txt" --tokenizer "$TMP/nfc.json" -o "$TMP/$f.nfc" -f 2>/dev/null
    "$ZQ" tokenize "$TMP/$f.txt" --tokenizer "$TMP/nfkc.json" -o "$TMP/$f.nfkc" -f 2>/dev/null
    "$ZQ" tokenize "$TMP/$f.txt" --tokenizer $TK/tokenizer.json -o "$TMP/$f.none" -f 2>/dev/null
done
check tokenizer/nfc-composes '[ -s "$TMP/composed.nfc" ] && cmp -s "$TMP/composed.nfc" "$TMP/decomposed.nfc" &&
    ! cmp -s "$TMP/composed.none" "$TMP/decomposed.none"'
check tokenizer/nfkc-maps-compatibility-characters '[ -s "$TMP/compat.nfkc" ] && cmp -s "$TMP/compat.nfkc" "$TMP/plain.nfkc" &&
    ! cmp -s "$TMP/compat.nfc" "$TMP/plain.nfc"'
# a pre-tokenizer regex that backtracks past PCRE2's match limit is an error, not the end of the splitting
sed 's/\\\\p{N}{1,3}/(a+)+$/' tests/fixtures/tokenizers/splits/tokenizer.json >"$TMP/slow.json"
printf 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\n' >"$TMP/slow.txt"
run "$ZQ" tokenize "$TMP/slow.txt" --tokenizer "$TMP/slow.json" -o "$TMP/slow.bin"
check tokenizer/match-limit-is-an-error '[ "$rc" -ne 0 ] && one_line && grep -q "pre-tokenizer regex 1" "$TMP/err" && [ ! -e "$TMP/slow.bin" ]'
printf 'Caf\xc3\xa9 \xff\xfe\n' >"$TMP/bad-utf8.txt"
run "$ZQ" tokenize "$TMP/bad-utf8.txt" --tokenizer tests/fixtures/tokenizers/splits/tokenizer.json -o "$TMP/bad.bin"
check tokenizer/invalid-utf8-handled '[ "$rc" -eq 0 ] || { [ "$rc" -eq 7 ] && one_line; }'
# twice the bundled excerpt as one document (1.6 MB): linear time, 0.3 s;
# quadratic in its length it took 59 s for half of it, and 60 s is the limit
grep -v '<|endoftext|>' data/text/tinystories/valid-excerpt.txt >"$TMP/half.txt"
cat "$TMP/half.txt" "$TMP/half.txt" >"$TMP/one-document.txt"
run "$ZQ" tokenize "$TMP/one-document.txt" --tokenizer $TK/tokenizer.json -o "$TMP/one.bin"
check tokenizer/one-long-document-in-linear-time '[ "$rc" -eq 0 ] && [ -s "$TMP/one.bin" ]'

# --- 13: smaller holes --------------------------------------------------------------------
run "$ZQ" lkd $M -o "$TMP/e.zq" --layers '' -q
check small/empty-layer-list-refused '[ "$rc" -eq 2 ] && one_line && [ ! -e "$TMP/e.zq" ]'
for bad in '1,' ',1' '1,,2' ' 1' '+1' '0-'; do
    run "$ZQ" lkd $M -o "$TMP/e.zq" --layers "$bad" -q
    check "small/layer-list-'$bad'-refused" '[ "$rc" -eq 2 ] && one_line'
done
for bad in ' -1' '18446744073709551616' '-5MB' ''; do
    run "$ZQ" "${CT[@]}" -o "$TMP/shard" --max-shard-size "$bad"
    check "small/max-shard-size-'$bad'-refused" '[ "$rc" -eq 2 ] && [ ! -e "$TMP/shard" ]'
done
for bad in '1,,2' '1,' ',1' ' 1'; do
    run "$ZQ" generate $M --prompt-ids "$bad" -n 2
    check "small/prompt-ids-'$bad'-refused" '[ "$rc" -eq 2 ]'
done
# a Hessian of Inf (a weight large enough to overflow the block's activations) names the tensor
cp -r $E "$TMP/huge"
poke "$TMP/huge/model.safetensors" model.layers.0.input_layernorm.weight '\xff\xff\x7f\x7f'
run "$ZQ" quantize "$TMP/huge" -o "$TMP/huge.zq" -q -p w4/8a8 --group-size 16 --method gptq --calib $E/tokens.bin \
    --calib-samples 2 --seq-len 8
check small/gptq-not-positive-definite-names-the-tensor '[ "$rc" -ne 0 ] && one_line &&
    grep -q "tensor .model.layers.0.self_attn.q_proj.weight" "$TMP/err" && [ ! -e "$TMP/huge.zq" ]'
finish
