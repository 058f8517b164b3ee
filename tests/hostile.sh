#!/usr/bin/env bash
# zquant under hostile use: outputs that are inputs, devices, FIFOs and
# symlinks, inputs that shrink or are not files, memory limits, malformed
# configs, tokenizers and token files, corrupted LKD work files. Prints
# "ok NAME" / "FAIL NAME" per test and a last line "N passed, N failed".
set -u
BUILD=${ZQ_BUILD:-build}
ZQ="$PWD/$BUILD/zquant"
FAULT="$PWD/$BUILD/fault.so"
M=data/models/stories260K
SUITE=hostile
. tests/suite.sh
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 # the fault shim preloads before ASan

one_line() { [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q "^zquant: " "$TMP/err"; }
no_temp_files() { [ -z "$(find "$1" -name '.*.tmp-*' 2>/dev/null)" ]; }

cp -r $M "$TMP/model"
"$ZQ" quantize $M -o "$TMP/ref.zq" -q

# --- 1. devices, FIFOs and symlinks as outputs --------------------------------------
# A device node of our own where we may make one (as root: a regression
# that replaced the device must not take the machine's /dev/null with it);
# /dev/null otherwise, which a user cannot replace anyway.
NULLDEV=/dev/null
[ "$(id -u)" -eq 0 ] && mknod "$TMP/null" c 1 3 2>/dev/null && NULLDEV="$TMP/null"
run "$ZQ" quantize $M -o "$NULLDEV" -f
check output/device-written-into '[ "$rc" -eq 0 ] && [ -c "$NULLDEV" ]'
mkfifo "$TMP/out.fifo"
(timeout 20 cat "$TMP/out.fifo" >"$TMP/from-fifo.zq" &)
run "$ZQ" quantize $M -o "$TMP/out.fifo" -q
sleep 0.2
check output/fifo-gets-the-file '[ "$rc" -eq 0 ] && [ -p "$TMP/out.fifo" ] && cmp -s "$TMP/from-fifo.zq" "$TMP/ref.zq"'
"$ZQ" quantize $M -o /dev/stdout -q | cmp -s - "$TMP/ref.zq"
piped="${PIPESTATUS[0]}${PIPESTATUS[1]}"
check output/pipe-gets-the-file '[ "$piped" = 00 ]'
ln -s real.zq "$TMP/link.zq"
run "$ZQ" quantize $M -o "$TMP/link.zq" -q
check output/dangling-symlink-followed '[ "$rc" -eq 0 ] && [ -L "$TMP/link.zq" ] && cmp -s "$TMP/real.zq" "$TMP/ref.zq"'
run "$ZQ" quantize $M -o "$TMP/link.zq" -q -p w4/8a8
check output/symlink-target-kept-without-force '[ "$rc" -eq 8 ] && cmp -s "$TMP/real.zq" "$TMP/ref.zq"'
run "$ZQ" quantize $M -o "$TMP/link.zq" -q -p w4/8a8 -f
check output/symlink-target-replaced-link-kept '[ "$rc" -eq 0 ] && [ -L "$TMP/link.zq" ] && ! cmp -s "$TMP/real.zq" "$TMP/ref.zq"'
mkdir "$TMP/adir"
run "$ZQ" quantize $M -o "$TMP/adir" -f -q
check output/directory-refused '[ "$rc" -eq 4 ] && one_line && grep -q "is a directory" "$TMP/err"'
run "$ZQ" lkd $M -o "$NULLDEV" -p w4/8a8 --steps 1 -q
check output/lkd-to-device '[ "$rc" -eq 0 ] && [ ! -e "$NULLDEV.lkd" ] && [ -c "$NULLDEV" ]'

# --- 2. an output that is an input, whatever its spelling ----------------------------
before=$(cat "$TMP"/model/* | sha256sum)
ln "$TMP/model/model.safetensors" "$TMP/hardlink.safetensors"
ln "$TMP/model/model.safetensors" "$TMP/hardlink.zq" # a name quantize writes, the input's inode
ln -s model/config.json "$TMP/config-alias.json"
# a checkpoint's own name is refused as a name quantize does not write; the
# others because they are the input
for out in "$TMP/model/model.safetensors" "$TMP/model/./model.safetensors" "$TMP/hardlink.safetensors" \
    "$TMP/hardlink.zq" "$TMP/model/config.json" "$TMP/config-alias.json"; do
    run "$ZQ" quantize "$TMP/model" -o "$out" -f -q
    check "output-is-input/quantize-$(basename "$out")" '[ "$rc" -eq 2 ] && one_line && grep -q "is the input\|writes a .zq file" "$TMP/err"'
done
run "$ZQ" lkd "$TMP/model" -o "$TMP/hardlink.zq" -f --steps 1 -q
check output-is-input/lkd '[ "$rc" -eq 2 ] && grep -q "is the input" "$TMP/err"'
cp "$TMP/ref.zq" "$TMP/in.zq"
run "$ZQ" dequantize "$TMP/in.zq" -o "$TMP/in.zq" -f
check output-is-input/dequantize '[ "$rc" -eq 2 ] && cmp -s "$TMP/in.zq" "$TMP/ref.zq"'
printf 'Once upon a time\n' >"$TMP/story.txt"
run "$ZQ" tokenize "$TMP/story.txt" --tokenizer "$TMP/model/tokenizer.bin" -o "$TMP/story.txt" -f
check output-is-input/tokenize-text '[ "$rc" -eq 2 ] && grep -q "Once upon" "$TMP/story.txt"'
run "$ZQ" tokenize "$TMP/story.txt" --tokenizer "$TMP/model/tokenizer.bin" -o "$TMP/model/tokenizer.bin" -f
check output-is-input/tokenize-tokenizer '[ "$rc" -eq 2 ]'
check output-is-input/inputs-unchanged '[ "$(cat "$TMP"/model/* | sha256sum)" = "$before" ] && no_temp_files "$TMP"'

# --- 3. an input that shrinks while it is read -----------------------------------------
cp -r $M "$TMP/shrink"
ZQ_TRUNCATE="$TMP/shrink/model.safetensors:9000" LD_PRELOAD="$FAULT" run "$ZQ" quantize "$TMP/shrink" -o "$TMP/shrink.zq"
check truncated-input/clean-error '[ "$rc" -eq 4 ] && one_line && grep -q "shrank" "$TMP/err"'
check truncated-input/nothing-left '[ ! -e "$TMP/shrink.zq" ] && no_temp_files "$TMP"'

# --- 3b. a file system that takes O_DIRECT but refuses the writes: the same bytes, buffered ---
ZQ_REFUSE_DIRECT=1 LD_PRELOAD="$FAULT" "$ZQ" quantize $M -o "$TMP/refused.zq" -q
check output/direct-writes-refused-same-bytes 'cmp -s "$TMP/refused.zq" "$TMP/ref.zq"'
# refused mid-file, after whole 4 MiB stages went direct
ZQ_REFUSE_DIRECT=3 LD_PRELOAD="$FAULT" "$PWD/$BUILD/unit_tests" atomic_output_has_every_byte_written_direct_or_not \
    >"$TMP/err" 2>&1
check output/direct-writes-refused-mid-file '[ "$(tail -1 "$TMP/err")" = "1 passed, 0 failed" ]'

# --- 3c. GPTQ's and LKD's activations past --data-memory, on a disk that fills up ---------------
# a clean error naming them, no output, nothing left beside it (the spill file has no name)
GQ=(-q -p w4/8a8 --method gptq --tokens tests/fixtures/real/tokens.bin --samples 8 --seq-len 64 --data-memory 0)
mkdir "$TMP/full"
ZQ_FULL_UNNAMED=3 LD_PRELOAD="$FAULT" run "$ZQ" quantize $M -o "$TMP/full/g.zq" "${GQ[@]}"
check data-memory/gptq-disk-full-clean-error \
    '[ "$rc" -eq 4 ] && one_line && grep -q "activations" "$TMP/err" && grep -q "No space" "$TMP/err"'
check data-memory/gptq-disk-full-nothing-left '[ -z "$(ls -A "$TMP/full")" ]'
ZQ_FULL_UNNAMED=20 LD_PRELOAD="$FAULT" run "$ZQ" lkd $M -o "$TMP/full/l.zq" -q -p w4/8a8 --steps 3 --data-memory 0
check data-memory/lkd-disk-full-clean-error \
    '[ "$rc" -eq 4 ] && one_line && grep -q "activations" "$TMP/err" && [ ! -e "$TMP/full/l.zq" ]'
# the blocks done before the disk filled are kept: resumed, in memory, the run's bytes are a whole run's
"$ZQ" lkd $M -o "$TMP/full/whole.zq" -q -p w4/8a8 --steps 3
run "$ZQ" lkd $M -o "$TMP/full/l.zq" -q -p w4/8a8 --steps 3 --resume
check data-memory/lkd-resumed-after-disk-full-same-bytes '[ "$rc" -eq 0 ] && cmp -s "$TMP/full/l.zq" "$TMP/full/whole.zq"'

# --- 4. checkpoints with no tensors, or only empty ones --------------------------------------
python3_free_st() { # NAME JSON: a safetensors file with that header and no data
    local h=$2 n=${#2}
    printf "$(printf '\\x%02x' $((n & 255)) $(((n >> 8) & 255)) 0 0 0 0 0 0)" >"$TMP/$1"
    printf '%s' "$h" >>"$TMP/$1"
}
python3_free_st empty.safetensors '{}'
python3_free_st zero.safetensors '{"a":{"dtype":"F16","shape":[0,4],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[3,0],"data_offsets":[0,0]}}'
for f in empty zero; do
    run "$ZQ" quantize "$TMP/$f.safetensors" -o "$TMP/$f.zq" -q
    r1=$rc
    run "$ZQ" verify "$TMP/$f.zq"
    r2=$rc
    run "$ZQ" dequantize "$TMP/$f.zq" -o "$TMP/$f-back.safetensors"
    check "no-tensors/$f-written-and-read-back" '[ "$r1$r2$rc" = 000 ]'
done
"$ZQ" inspect --json "$TMP/zero.zq" | grep -q '"shape":[[:space:]]*\[0, 4\]' && ok no-tensors/zero-size-shape-kept ||
    fail no-tensors/zero-size-shape-kept

# --- 5. libhdf5 crashing on a file: a clean error, zquant itself unharmed --------------------------------
# (handle_segv=0: under ASan too, the injected crash kills the helper, as it would)
for fn in H5Ovisit2 H5Dread; do
    ZQ_CRASH_IN=$fn LD_PRELOAD="$FAULT" ASAN_OPTIONS="$ASAN_OPTIONS:handle_segv=0" run "$ZQ" quantize tests/fixtures/models/llama.h5 -o "$TMP/h5.zq"
    check "hdf5-isolated/crash-in-$fn" '[ "$rc" -eq 3 ] && one_line && grep -q "libhdf5 crashed" "$TMP/err" && [ ! -e "$TMP/h5.zq" ]'
done
ZQ_CRASH_IN=H5Dread LD_PRELOAD="$FAULT" ASAN_OPTIONS="$ASAN_OPTIONS:handle_segv=0" run "$ZQ" eval tests/fixtures/engine/llama.h5 --tokens tests/fixtures/engine/llama/tokens.bin
check hdf5-isolated/crash-while-evaluating '[ "$rc" -eq 3 ] && one_line && grep -q "libhdf5 crashed" "$TMP/err"'

# --- 7. config numbers out of range: one line naming the key, never a crash --------------------
while IFS='|' read -r arch key value; do
    rm -rf "$TMP/cfg" && cp -r tests/fixtures/engine/$arch "$TMP/cfg"
    sed -i "s|^{|{\"$key\": $value,|" "$TMP/cfg/config.json" # the first of a duplicate key is what cJSON reads
    run "$ZQ" eval "$TMP/cfg" --tokens "$TMP/cfg/tokens.bin"
    check "config/$arch-$key=$value" '[ "$rc" -eq 3 ] && one_line && grep -q "$key" "$TMP/err"'
done <<'CASES'
gpt2|n_embd|2000000000
gpt2|n_embd|-64
gpt2|n_head|0
gpt2|n_layer|1e9
gpt2|n_positions|"long"
gpt2|layer_norm_epsilon|-1e-5
gpt_neox|rotary_pct|1e300
gpt_neox|rotary_pct|-0.5
gpt_neox|rotary_emb_base|0
gptj|rotary_dim|-2
llama|num_key_value_heads|-2
llama|head_dim|3000000000
llama|vocab_size|1e12
llama|rms_norm_eps|"1e-6"
opt|do_layer_norm_before|"yes"
opt|word_embed_proj_dim|0
CASES

# --- 8. tokenizer.json pre-tokenizers zquant cannot apply as Hugging Face does: refused -------------
TK=tests/fixtures/tokenizers/splits/tokenizer.json
for case in 'after-bytelevel|{"type":"Sequence","pretokenizers":[{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},{"type":"Split","pattern":{"Regex":"x"},"behavior":"Isolated","invert":false}]}' \
    'with-metaspace|{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"x"},"behavior":"Isolated","invert":false},{"type":"Metaspace","replacement":"\u2581"}]}' \
    'removed-behavior|{"type":"Split","pattern":{"Regex":"x"},"behavior":"Removed","invert":false}' \
    'bad-regex|{"type":"Split","pattern":{"Regex":"(x"},"behavior":"Isolated","invert":false}'; do
    # the case's pre_tokenizer in front; the fixture's own stays as an unused key
    sed "s|\"pre_tokenizer\": {|\"pre_tokenizer\": ${case#*|}, \"unused_pre\": {|" "$TK" >"$TMP/tok-${case%%|*}.json"
    run "$ZQ" tokenize "$TMP/story.txt" --tokenizer "$TMP/tok-${case%%|*}.json" -o "$TMP/t.bin"
    check "tokenizer/refused-${case%%|*}" '[ "$rc" -eq 3 ] && one_line'
done

# --- 9. names that are not UTF-8 never reach .zq metadata or --json output ----------------------------
python3_free_st bad-name.safetensors $'{"bad\xffname":{"dtype":"F16","shape":[0],"data_offsets":[0,0]}}'
python3_free_st surrogate.safetensors '{"bad\ud800name":{"dtype":"F16","shape":[0],"data_offsets":[0,0]}}'
mkdir "$TMP/badcfg" && cp "$TMP/zero.safetensors" "$TMP/badcfg/model.safetensors"
printf '{"model_type": "llama", "note": "caf\xe9"}' >"$TMP/badcfg/config.json"
for f in bad-name.safetensors surrogate.safetensors badcfg; do
    run "$ZQ" quantize "$TMP/$f" -o "$TMP/utf8.zq" -f -q
    check "utf8/refused-$f" '[ "$rc" -eq 3 ] && one_line && [ ! -e "$TMP/utf8.zq" ]'
done

# --- 11. LKD work files that do not check out are distilled again, never trusted -----------------------
LKD=(-p w4/8a8 --steps 4 --seq-len 16 --seed 3)
"$ZQ" lkd $M -o "$TMP/lkd-full.zq" "${LKD[@]}" -q
flip() { # FILE OFFSET-FROM-END: one byte changed
    local size
    size=$(stat -c %s "$1")
    printf '\x5a' | dd of="$1" bs=1 seek=$((size - $2)) conv=notrunc status=none
}
for damage in patch-data sidecar patch-truncated sidecar-missing; do
    out="$TMP/lkd-$damage.zq"
    ZQ_KILL_AFTER=/block-2.json:1 LD_PRELOAD="$FAULT" sh -c '"$0" lkd "$@" 2>/dev/null; true' "$ZQ" $M -o "$out" "${LKD[@]}" -q
    case $damage in
    patch-data) flip "$out.lkd/block-1.safetensors" 100 ;;
    sidecar) flip "$out.lkd/block-1.json" 5 ;;
    patch-truncated) truncate -s 1000 "$out.lkd/block-1.safetensors" ;;
    sidecar-missing) rm "$out.lkd/block-1.json" ;;
    esac
    "$ZQ" lkd $M -o "$out" "${LKD[@]}" --json --resume >"$TMP/lkd.json" 2>"$TMP/err"
    rc=$?
    check "lkd-resume/$damage-redone" '[ "$rc" -eq 0 ] && tr -d " \n\t" <"$TMP/lkd.json" | grep -q "\"discarded\":\[1\]"'
    check "lkd-resume/$damage-same-bytes" 'cmp -s "$out" "$TMP/lkd-full.zq" && [ ! -e "$out.lkd" ]'
done

# --- 12. .npy token files: the header's shape and the data must agree --------------------------------
NPY=tests/fixtures/real/tokens-int64.npy # shape (1024,), int64
head -c $(($(stat -c %s $NPY) - 8)) $NPY >"$TMP/short.npy"
cp $NPY "$TMP/long.npy" && printf '\0\0\0\0\0\0\0\0' >>"$TMP/long.npy"
sed 's/(1024,)/(1025,)/' $NPY >"$TMP/shape.npy"
sed 's/(1024,)/(32,32)/' $NPY >"$TMP/2d.npy" # the same length: the header keeps its size
for f in short long shape; do
    run "$ZQ" eval $M --tokens "$TMP/$f.npy"
    check "npy/refused-$f" '[ "$rc" -eq 3 ] && one_line && grep -q "shape" "$TMP/err"'
done
run "$ZQ" eval $M --tokens "$TMP/2d.npy" --ctx 32
check npy/two-dimensions-read '[ "$rc" -eq 0 ] && grep -q "992 tokens" "$TMP/out"'

# --- 14. messages that say what is wrong ---------------------------------------------------------------
run "$ZQ" lkd $M -o "$TMP/x.zq" --batch 100000
check messages/lkd-batch-upper-bound '[ "$rc" -eq 2 ] && grep -q "from 1 to 65536" "$TMP/err"'
run "$ZQ" lkd $M -o "$TMP/x.zq" --seq-len 99999999
check messages/lkd-seq-len-upper-bound '[ "$rc" -eq 2 ] && grep -q "from 2 to 1048576" "$TMP/err"'
cp -r tests/fixtures/models/llama-sharded "$TMP/twice"
sed -i 's|^\(  "model.norm.weight": \)"\(.*\)",$|&\n\1"model-00002-of-00002.safetensors",|' "$TMP/twice/model.safetensors.index.json"
run "$ZQ" quantize "$TMP/twice" -o "$TMP/x.zq"
check messages/index-lists-a-tensor-twice '[ "$rc" -eq 3 ] && one_line && grep -q "listed twice" "$TMP/err"'

# --- 10. inputs that are not regular files ------------------------------------------------------
mkfifo "$TMP/in.fifo"
run "$ZQ" quantize "$TMP/in.fifo" -o "$TMP/x.zq"
check not-regular/quantize-fifo '[ "$rc" -eq 3 ] && grep -q "not a regular file" "$TMP/err"'
run "$ZQ" verify "$TMP/in.fifo"
check not-regular/verify-fifo '[ "$rc" -eq 3 ]'
run "$ZQ" eval $M --tokens "$TMP/in.fifo"
check not-regular/eval-tokens-fifo '[ "$rc" -eq 3 ]'
run "$ZQ" tokenize "$TMP/in.fifo" --tokenizer $M/tokenizer.bin -o "$TMP/t.bin"
check not-regular/tokenize-text-fifo '[ "$rc" -eq 3 ]'
run "$ZQ" tokenize "$TMP/story.txt" --tokenizer "$TMP/in.fifo" -o "$TMP/t.bin"
check not-regular/tokenizer-fifo '[ "$rc" -eq 3 ]'
run "$ZQ" quantize /dev/zero -o "$TMP/x.zq"
check not-regular/quantize-device '[ "$rc" -eq 3 ]'

# --- 6b. a BF16 checkpoint streams as an FP16 one does: the 64 MB bound -------------------------
# embedding and head of 524288 x 64 BF16 (67 MB each) are copied as FP16:
# were their mapped pages kept, peak RSS would be near 100 MB (it was: 98)
mkdir "$TMP/bf16"
/usr/bin/python3 - "$TMP/bf16" <<'PY'
import json, sys
import numpy as np
sys.path.insert(0, "scripts")
import stio
h, ffn, vocab = 64, 128, 524288
rng = np.random.default_rng(3)
def bf16(*shape):
    x = (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)).view(np.uint32) >> 16
    return ("BF16", list(shape), x.astype("<u2").tobytes())
t = {"model.embed_tokens.weight": bf16(vocab, h), "lm_head.weight": bf16(vocab, h), "model.norm.weight": bf16(h),
     "model.layers.0.input_layernorm.weight": bf16(h), "model.layers.0.post_attention_layernorm.weight": bf16(h)}
for p in "qkvo":
    t[f"model.layers.0.self_attn.{p}_proj.weight"] = bf16(h, h)
t["model.layers.0.mlp.gate_proj.weight"] = bf16(ffn, h)
t["model.layers.0.mlp.up_proj.weight"] = bf16(ffn, h)
t["model.layers.0.mlp.down_proj.weight"] = bf16(h, ffn)
stio.save(sys.argv[1] + "/model.safetensors", t)
json.dump({"model_type": "llama", "hidden_size": h, "intermediate_size": ffn, "num_attention_heads": 1,
           "num_hidden_layers": 1, "vocab_size": vocab, "torch_dtype": "bfloat16"}, open(sys.argv[1] + "/config.json", "w"))
PY
rss=$(/usr/bin/python3 -c 'import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, st, u = os.wait4(p.pid, 0)
print(u.ru_maxrss // 1024 if os.waitstatus_to_exitcode(st) == 0 else 99999)' "$ZQ" quantize "$TMP/bf16" -o "$TMP/bf16.zq" -q)
check memory/bf16-checkpoint-under-64MB '[ "$rss" -lt 64 ]'

# --- 6. memory limits: the out-of-memory code within seconds, never a hang --------------------
# (a sanitizer build reserves terabytes of shadow memory and cannot run
# under any address-space limit: these tests are for the real binary)
if (ulimit -v $((4096 * 1024)) && "$ZQ" --version >/dev/null 2>&1); then
    # a 400 MB checkpoint (sparse: no disk used), larger than most limits below
    mkdir "$TMP/big"
    python3_free_st big/model.safetensors '{"w":{"dtype":"F16","shape":[2000,100000],"data_offsets":[0,400000000]}}'
    truncate -s $(($(stat -c %s "$TMP/big/model.safetensors") + 400000000)) "$TMP/big/model.safetensors"
    for limit in 60 100 150 200 300; do
        for cmd in "quantize $M -o $TMP/lim.zq -f -q" "eval $M --tokens tests/fixtures/real/tokens.bin --max-tokens 600" \
            "generate $M -n 4" "lkd $M -o $TMP/lim-lkd.zq -f -q --steps 1 --seq-len 16" "quantize $TMP/big -o $TMP/big.zq -f -q"; do
            (ulimit -v $((limit * 1024)) && timeout 20 $ZQ $cmd >"$TMP/out" 2>"$TMP/err")
            rc=$?
            name="memory-limit/${limit}MB-${cmd%% *}"
            [ "${cmd#*big}" != "$cmd" ] && name="$name-big"
            check "$name" '[ "$rc" -eq 0 ] || { [ "$rc" -eq 5 ] && one_line; }'
        done
    done
    (ulimit -v $((100 * 1024)) && timeout 20 $ZQ eval $M --tokens tests/fixtures/real/tokens.bin >"$TMP/out" 2>"$TMP/err")
    rc=$?
    check memory-limit/too-small-for-blas-says-so '[ "$rc" -eq 5 ] && grep -q "ulimit -v" "$TMP/err"'
else
    echo "skip hostile/memory-limit: this build cannot run under an address-space limit (sanitizers)"
fi

finish
