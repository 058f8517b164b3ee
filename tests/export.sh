#!/usr/bin/env bash
# zquant export, checked by the runtimes' own rules: GGUF files are loaded
# and run by llama.cpp itself (node-llama-cpp's prebuilt CPU build, set up
# by scripts/llama_cpp_setup.sh from the npm registry); compressed-tensors
# folders are decoded by an independent numpy decoder (scripts/ct_decode.py)
# and their config checked against compressed-tensors' rules. Prints
# "ok NAME" / "FAIL NAME" per test and a last line "N passed, N failed".
set -u
BUILD=${ZQ_BUILD:-build}
ZQ="$BUILD/zquant"
CMP="$BUILD/st_compare"
NODE_DIR=${ZQ_NODE_DIR:-build/node}
M=data/models/stories260K
TEXT=data/text/tinystories/valid-excerpt.txt
ENGINE=tests/fixtures/engine
SUITE=export
. tests/suite.sh
# field NAME < JSON: a number or array from one-line JSON
field() { sed -n "s/.*\"$1\":\(\[[^]]*\]\|[-0-9.e+]*\).*/\1/p"; }
# within A B REL: |A - B| <= REL * |B|
within() { awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(d <= r * m) }'; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# --- llama.cpp itself ---------------------------------------------------------------
if scripts/llama_cpp_setup.sh "$NODE_DIR" >"$TMP/out" 2>"$TMP/err"; then ok llama.cpp/setup; else fail llama.cpp/setup "$(tail -c 300 "$TMP/err")"; fi
LLAMA="node $NODE_DIR/check.mjs"

# llama_vs_zquant NAME ZQ GGUF TOKENS CTX: llama.cpp's NLL of the GGUF within
# 0.5% of zquant's weight-only NLL of the .zq, KL below 0.002 nats/token.
# The two differ by what llama.cpp does and zquant's --act none does not:
# it rounds every matmul's input to Q8_0 (32 values to a scale, half a step
# of 1/127 of their largest), an error the size of W8A8's, whose KL the
# README measures at 0.001 on this model: 0.002 is twice it
llama_vs_zquant() {
    local name=$1 zq=$2 gguf=$3 tokens=$4 ctx=$5 klmax=${6:-0.002}
    "$ZQ" eval "$zq" --tokens "$tokens" --ctx "$ctx" --act none --logprobs "$TMP/lp.bin" -f --json >"$TMP/zq.json" 2>"$TMP/err"
    local zn=$(tr -d ' \t\n' <"$TMP/zq.json" | field nll)
    $LLAMA "$gguf" --tokens "$tokens" --ctx "$ctx" --logprobs "$TMP/lp.bin" >"$TMP/ll.json" 2>>"$TMP/err"
    local ln=$(field nll <"$TMP/ll.json") kl=$(field kl <"$TMP/ll.json")
    if [ -n "$zn" ] && [ -n "$ln" ] && within "$ln" "$zn" 0.005 && below "$kl" "$klmax"; then
        ok "$name (nll zquant $zn, llama.cpp $ln, KL $kl)"
    else
        fail "$name" "nll zquant '$zn' llama.cpp '$ln' KL '$kl': $(head -c 300 "$TMP/err")"
    fi
}

"$ZQ" tokenize "$TEXT" --tokenizer "$M/tokenizer.bin" -o "$TMP/ids.bin" 2>"$TMP/err"
head -c 40000 "$TMP/ids.bin" >"$TMP/ids10k.bin" # the first 10,000 tokens

# The bundled model: FP16, and quantized for llama.cpp at w8a16 and w4/8a16.
for preset in f16 w8a16 w4/8a16; do
    n=${preset//\//_}
    opts=(-p "$preset")
    [ "$preset" = f16 ] && opts=(-p w8a16 --exclude '*')
    run "$ZQ" quantize "$M" -o "$TMP/s_$n.zq" "${opts[@]}" --for llama.cpp -q
    run "$ZQ" export "$TMP/s_$n.zq" -o "$TMP/s_$n.gguf" --from "$M" --json
    check "gguf/stories260K-$n/export" '[ "$rc" -eq 0 ] && [ -s "$TMP/s_$n.gguf" ]'
    "$ZQ" dequantize "$TMP/s_$n.zq" -o "$TMP/deq.safetensors" -f
    run "$CMP" "$TMP/deq.safetensors" "$TMP/s_$n.gguf"
    check "gguf/stories260K-$n/read-back-equals-dequantize" '[ "$rc" -eq 0 ]'
    llama_vs_zquant "gguf/stories260K-$n/llama.cpp-logits" "$TMP/s_$n.zq" "$TMP/s_$n.gguf" "$TMP/ids10k.bin" 512
    "$ZQ" generate "$TMP/s_$n.zq" -n 20 --json 2>/dev/null | tr -d ' \t\n' | field ids >"$TMP/zq_gen"
    $LLAMA "$TMP/s_$n.gguf" --generate 20 2>/dev/null | field generated >"$TMP/ll_gen"
    check "gguf/stories260K-$n/greedy-20" '[ -n "$(cat "$TMP/zq_gen")" ] && [ "$(cat "$TMP/zq_gen")" = "$(cat "$TMP/ll_gen")" ]'
done
# quantize / lkd -o OUT.gguf: the .zq beside it, exported for llama.cpp; the
# codes LKD tuned reach llama.cpp unchanged
run "$ZQ" lkd "$M" -o "$TMP/lkd.gguf" -p w4/8a16 --steps 20 -q
check gguf/lkd-chain '[ "$rc" -eq 0 ] && [ -s "$TMP/lkd.gguf" ] && [ -s "$TMP/lkd.gguf.zq" ] && grep -q "\"for\":\"llama.cpp\"" "$TMP/lkd.gguf.zq"'
llama_vs_zquant gguf/lkd-chain/llama.cpp-logits "$TMP/lkd.gguf.zq" "$TMP/lkd.gguf" "$TMP/ids10k.bin" 512
run "$ZQ" quantize "$M" -o "$TMP/lkd.gguf" -q
check refuse/chain-exists '[ "$rc" -eq 8 ] && grep -q "already exists" "$TMP/err"'
run "$ZQ" quantize "$ENGINE/llama" -o "$TMP/notok.gguf" -q
check refuse/chain-no-tokenizer '[ "$rc" -eq 2 ] && grep -q "no tokenizer" "$TMP/err" && [ ! -e "$TMP/notok.gguf.zq" ]'
# zquant reads its GGUF back: eval gives the .zq's weight-only figures exactly
a=$("$ZQ" eval "$TMP/s_w4_8a16.zq" --tokens "$TMP/ids10k.bin" --ctx 512 --act none --dequantize --json | tr -d ' \t\n' | field nll)
b=$("$ZQ" eval "$TMP/s_w4_8a16.gguf" --tokens "$TMP/ids10k.bin" --ctx 512 --json | tr -d ' \t\n' | field nll)
check gguf/eval-reads-gguf '[ -n "$a" ] && [ "$a" = "$b" ]'
run "$ZQ" inspect "$TMP/s_w4_8a16.gguf"
check gguf/inspect '[ "$rc" -eq 0 ] && grep -q "^blk.0.ffn_up.weight *Q4_0 *172x64 " "$TMP/out" && grep -q "architecture llama" "$TMP/out"'
run "$ZQ" inspect "$TMP/s_w4_8a16.gguf" --json
check gguf/inspect-json '[ "$rc" -eq 0 ] && tr -d " \t\n" <"$TMP/out" | grep -q "\"name\":\"blk.0.attn_q.weight\",\"type\":\"Q8_0\",\"shape\":\[64,64\],\"bytes\":4352"'
# llama.cpp's tokenizer, from the GGUF vocabulary, on the whole bundled text
$LLAMA "$TMP/s_f16.gguf" --text "$TEXT" --ids-out "$TMP/ll_ids.bin" >"$TMP/out" 2>"$TMP/err"
check gguf/stories260K/tokenizer-same-ids '[ -s "$TMP/ids.bin" ] && cmp -s "$TMP/ids.bin" "$TMP/ll_ids.bin"'

# tokenizer.json vocabularies: a tiny random llama with each fixture
# tokenizer's vocabulary; llama.cpp must split the fixture text into the ids
# of the independent reference (scripts/gen_tokenizer_fixtures.py)
for tok in bytelevel sentencepiece; do
    /usr/bin/python3 - "$TMP/tiny-$tok" "tests/fixtures/tokenizers/$tok/tokenizer.json" <<'PY'
import json, os, struct, sys
import numpy as np
out, tok = sys.argv[1], json.load(open(sys.argv[2]))
vocab = 1 + max(list(tok["model"]["vocab"].values()) + [t["id"] for t in tok["added_tokens"]])
h, inter = 32, 64
cfg = {"model_type": "llama", "hidden_size": h, "num_attention_heads": 2, "num_key_value_heads": 2,
       "num_hidden_layers": 1, "intermediate_size": inter, "vocab_size": vocab, "max_position_embeddings": 64,
       "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True}
shapes = {"model.embed_tokens.weight": [vocab, h], "model.norm.weight": [h],
          "model.layers.0.input_layernorm.weight": [h], "model.layers.0.post_attention_layernorm.weight": [h],
          "model.layers.0.self_attn.q_proj.weight": [h, h], "model.layers.0.self_attn.k_proj.weight": [h, h],
          "model.layers.0.self_attn.v_proj.weight": [h, h], "model.layers.0.self_attn.o_proj.weight": [h, h],
          "model.layers.0.mlp.gate_proj.weight": [inter, h], "model.layers.0.mlp.up_proj.weight": [inter, h],
          "model.layers.0.mlp.down_proj.weight": [h, inter]}
rng = np.random.default_rng(3)
os.makedirs(out, exist_ok=True)
json.dump(cfg, open(os.path.join(out, "config.json"), "w"))
header, data = {}, b""
for name, shape in shapes.items():
    w = (rng.standard_normal(shape) * 0.1 + (1 if len(shape) == 1 else 0)).astype(np.float16).tobytes()
    header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [len(data), len(data) + len(w)]}
    data += w
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(os.path.join(out, "model.safetensors"), "wb").write(struct.pack("<Q", len(text)) + text + data)
PY
    "$ZQ" quantize "$TMP/tiny-$tok" -o "$TMP/tiny-$tok.zq" -p w8a16 --for llama.cpp -q -f
    run "$ZQ" export "$TMP/tiny-$tok.zq" -o "$TMP/tiny-$tok.gguf" --tokenizer "tests/fixtures/tokenizers/$tok/tokenizer.json" -f
    check "gguf/tokenizer-json-$tok/export" '[ "$rc" -eq 0 ] && ! grep -q "note:" "$TMP/out"'
    $LLAMA "$TMP/tiny-$tok.gguf" --text "tests/fixtures/tokenizers/$tok/input.txt" --ids-out "$TMP/ll_ids.bin" >"$TMP/out" 2>"$TMP/err"
    check "gguf/tokenizer-json-$tok/llama.cpp-ids" 'cmp -s "tests/fixtures/tokenizers/$tok/expected.bin" "$TMP/ll_ids.bin"'
    # and zquant reads the vocabulary back from the GGUF alone
    run "$ZQ" tokenize "tests/fixtures/tokenizers/$tok/input.txt" --tokenizer "$TMP/tiny-$tok.gguf" -o "$TMP/gg_ids.bin" -f
    check "gguf/tokenizer-json-$tok/read-back-ids" '[ "$rc" -eq 0 ] && cmp -s "tests/fixtures/tokenizers/$tok/expected.bin" "$TMP/gg_ids.bin"'
done

# The engine fixtures (tiny random models of each GGUF architecture): GPT-2's
# Conv1D, Qwen2's biases, Llama's grouped-query RoPE rows, GPT-NeoX's fused
# per-head q/k/v rows and partial rotary, every ggml type.
# Their 50-token vocabulary gets a byte-level tokenizer.json of 50 pieces.
{
    printf '{"model":{"type":"BPE","merges":[],"vocab":{'
    for i in $(seq 0 49); do printf '%s"\\u%04x":%d' "$([ "$i" -gt 0 ] && echo ,)" $((i + 33)) "$i"; done
    printf '}},"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},"decoder":{"type":"ByteLevel"},"added_tokens":[]}\n'
} >"$TMP/tok50.json"
for i in $(seq 1 256); do printf "\\x$(printf %02x $(((i * 37 + i / 7) % 50)))\\x00\\x00\\x00"; done >"$TMP/rand.bin"
# Mistral's sliding window (3): llama.cpp's llama attends over the whole
# context, so the two are compared within 3 tokens of context, the export
# says so, and zquant reads the window back from the GGUF.
# Mixtures of experts (Mixtral, Qwen3-MoE): llama.cpp rounds activations to
# Q8_0 before quantized matmuls, which flips the expert choice of tokens
# whose k-th and next experts are near tied (each flip an O(1) change of
# that token's output): their quantized files get a KL bound of 0.005
# (measured: mixtral 5e-4 to 1.5e-3, qwen3_moe 7e-5 to 2.3e-4); at F16 the
# routing agrees and the bound is the others' (measured 4e-6, 5e-7).
# phi3_longrope: a pretraining length of 8, so llama.cpp (its context of
# 16 longer than that) and zquant (windows of 16) both run the long factors
for model in gpt2 qwen2 qwen3 llama llama3 gpt_neox mistral gemma2 gemma3_text phi3 phi3_longrope mixtral qwen3_moe; do
    ctx=16
    [ "$model" = mistral ] && ctx=3
    for spec in "f16|-p w8a16 --exclude *" "q8_0|-p w8a16" "q4_0|-p w4a16" "q4_1|-p w4a16 --asym" "mixed|-p w4/8a16"; do
        name=${spec%%|*}
        read -r -a opts <<<"${spec#*|}"
        set -f
        run "$ZQ" quantize "$ENGINE/$model" -o "$TMP/$model.zq" "${opts[@]}" --for llama.cpp -f -q
        set +f
        # named apart from the architecture: llama.cpp fails to load the
        # 50-piece vocabulary of a file whose general.name is "phi3.zq"
        # ("_Map_base::at"), and loads the same file named otherwise
        run "$ZQ" export "$TMP/$model.zq" -o "$TMP/$model.gguf" --tokenizer "$TMP/tok50.json" --name fixture -f -q
        if [ "$rc" -ne 0 ]; then fail "gguf/$model-$name/export" "$(head -c 300 "$TMP/err")"; continue; fi
        "$ZQ" dequantize "$TMP/$model.zq" -o "$TMP/deq.safetensors" -f
        run "$CMP" "$TMP/deq.safetensors" "$TMP/$model.gguf"
        check "gguf/$model-$name/read-back-equals-dequantize" '[ "$rc" -eq 0 ]'
        klmax=0.002
        case $model in mixtral | qwen3_moe) [ "$name" != f16 ] && klmax=0.005 ;; esac
        llama_vs_zquant "gguf/$model-$name/llama.cpp-logits" "$TMP/$model.zq" "$TMP/$model.gguf" "$TMP/rand.bin" $ctx $klmax
        # and zquant runs the GGUF as the model it came from
        a=$("$ZQ" eval "$TMP/$model.zq" --tokens "$TMP/rand.bin" --ctx 16 --act none --dequantize --json | tr -d ' \t\n' | field nll)
        b=$("$ZQ" eval "$TMP/$model.gguf" --tokens "$TMP/rand.bin" --ctx 16 --act none --json | tr -d ' \t\n' | field nll)
        check "gguf/$model-$name/eval-reads-it-back" '[ -n "$a" ] && [ "$a" = "$b" ]'
    done
done
run "$ZQ" export "$TMP/mistral.zq" -o "$TMP/mistral.gguf" --tokenizer "$TMP/tok50.json" -f
check gguf/mistral/window-note 'grep -q "note: .*sliding window of 3: run it with a context of at most 3" "$TMP/out"'
a=$("$ZQ" eval "$TMP/mistral.zq" --tokens "$TMP/rand.bin" --ctx 16 --act none --dequantize --json | tr -d ' \t\n' | field nll)
b=$("$ZQ" eval "$TMP/mistral.gguf" --tokens "$TMP/rand.bin" --ctx 16 --act none --json | tr -d ' \t\n' | field nll)
check gguf/mistral/window-read-back '[ -n "$a" ] && [ "$a" = "$b" ]'
# Qwen2's rule (a window from layer max_window_layers on) comes back as the
# same layers: block 0 full, block 1 over 3 positions
mkdir -p "$TMP/qwsw" && cp "$ENGINE/qwen2/model.safetensors" "$TMP/qwsw/"
sed 's/^{/{"use_sliding_window": true, "sliding_window": 3, "max_window_layers": 1,/' "$ENGINE/qwen2/config.json" >"$TMP/qwsw/config.json"
"$ZQ" quantize "$TMP/qwsw" -o "$TMP/qwsw.zq" -p w8a16 --for llama.cpp -f -q
"$ZQ" export "$TMP/qwsw.zq" -o "$TMP/qwsw.gguf" --tokenizer "$TMP/tok50.json" -f -q
a=$("$ZQ" eval "$TMP/qwsw.zq" --tokens "$TMP/rand.bin" --ctx 16 --act none --dequantize --json | tr -d ' \t\n' | field nll)
b=$("$ZQ" eval "$TMP/qwsw.gguf" --tokens "$TMP/rand.bin" --ctx 16 --act none --json | tr -d ' \t\n' | field nll)
c=$("$ZQ" eval "$ENGINE/qwen2" --tokens "$TMP/rand.bin" --ctx 16 --act none --json | tr -d ' \t\n' | field nll)
check gguf/qwen2-window-layers/read-back '[ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != "$c" ]'
# What llama.cpp's gemma2 cannot run is refused before any work: its query
# scale comes from the layer count, its caps are always on
for bad in 's/"query_pre_attn_scalar": 16/"query_pre_attn_scalar": 12/|query_pre_attn_scalar 12' \
           's/"final_logit_softcapping": 1.5/"final_logit_softcapping": null/|does not cap its logits'; do
    mkdir -p "$TMP/g2bad" && cp "$ENGINE/gemma2/model.safetensors" "$TMP/g2bad/"
    sed "${bad%%|*}" "$ENGINE/gemma2/config.json" >"$TMP/g2bad/config.json"
    "$ZQ" quantize "$TMP/g2bad" -o "$TMP/g2bad.zq" -p w8a16 --for llama.cpp -f -q
    rm -f "$TMP/g2bad.gguf"
    run "$ZQ" export "$TMP/g2bad.zq" -o "$TMP/g2bad.gguf" --tokenizer "$TMP/tok50.json"
    check "gguf/gemma2-refuses/${bad#*|}" '[ "$rc" -eq 3 ] && grep -q "${bad#*|}" "$TMP/err" && [ ! -e "$TMP/g2bad.gguf" ]'
done
run "$ZQ" export "$TMP/phi3_longrope.zq" -o "$TMP/phi3_longrope.gguf" --tokenizer "$TMP/tok50.json" -f
check gguf/phi3-longrope/context-note 'grep -q "note: .*longrope: llama.cpp takes the long factors when the context it runs with exceeds 8 positions" "$TMP/out"'
# llama.cpp's qwen3moe has experts in every block and renormalizes their
# weights: a dense block, or norm_topk_prob false, is refused before any work
mkdir -p "$TMP/q3bad" && cp "$ENGINE/qwen3_moe/model.safetensors" "$TMP/q3bad/"
sed 's/"norm_topk_prob": true/"norm_topk_prob": false/' "$ENGINE/qwen3_moe/config.json" >"$TMP/q3bad/config.json"
for bad in "$TMP/q3bad|norm_topk_prob is false" "$ENGINE/qwen3_moe_dense|block 1 is dense (by mlp_only_layers)"; do
    "$ZQ" quantize "${bad%%|*}" -o "$TMP/q3bad.zq" -p w8a16 --for llama.cpp -f -q
    rm -f "$TMP/q3bad.gguf"
    run "$ZQ" export "$TMP/q3bad.zq" -o "$TMP/q3bad.gguf" --tokenizer "$TMP/tok50.json"
    check "gguf/qwen3moe-refuses/${bad#*|}" '[ "$rc" -eq 3 ] && grep -qF "${bad#*|}" "$TMP/err" && [ ! -e "$TMP/q3bad.gguf" ]'
done
# Gemma 3's multimodal layout: the language model alone goes to GGUF (the
# vision tower is llama.cpp's mmproj file's), runs as llama.cpp's gemma3 and
# reads back as the model it came from
/usr/bin/python3 scripts/make_multimodal_gemma3.py "$ENGINE/gemma3_text" "$TMP/mm" hub
"$ZQ" quantize "$TMP/mm" -o "$TMP/mm.zq" -p w8a16 --for llama.cpp -f -q
run "$ZQ" export "$TMP/mm.zq" -o "$TMP/mm.gguf" --tokenizer "$TMP/tok50.json" --name fixture -f
check gguf/gemma3-multimodal/language-model-alone \
    '[ "$rc" -eq 0 ] && grep -q "7 tensors of the vision tower and projector are left out" "$TMP/out"'
llama_vs_zquant "gguf/gemma3-multimodal/llama.cpp-logits" "$TMP/mm.zq" "$TMP/mm.gguf" "$TMP/rand.bin" 16
a=$("$ZQ" eval "$TMP/mm.zq" --tokens "$TMP/rand.bin" --ctx 16 --act none --dequantize --json | tr -d ' \t\n' | field nll)
b=$("$ZQ" eval "$TMP/mm.gguf" --tokens "$TMP/rand.bin" --ctx 16 --act none --json | tr -d ' \t\n' | field nll)
check gguf/gemma3-multimodal/eval-reads-it-back '[ -n "$a" ] && [ "$a" = "$b" ]'

# --- compressed-tensors, decoded by scripts/ct_decode.py ------------------------------
CT=scripts/ct_decode.py # numpy, /usr/bin/python3
run $CT golden
check ct/packing-golden '[ "$rc" -eq 0 ]'
# ct_case NAME ZQ: export, config rules, every tensor equal to zquant dequantize
ct_case() {
    local name=$1 zq=$2
    shift 2
    run "$ZQ" export "$zq" -o "$TMP/ct" --format compressed-tensors -f -q "$@"
    check "ct/$name/export" '[ "$rc" -eq 0 ] && [ -s "$TMP/ct/config.json" ]'
    run $CT check "$TMP/ct"
    check "ct/$name/config-rules" '[ "$rc" -eq 0 ]'
    "$ZQ" dequantize "$zq" -o "$TMP/deq.safetensors" -f
    run $CT compare "$TMP/ct" "$TMP/deq.safetensors"
    check "ct/$name/decoded-equals-dequantize" '[ "$rc" -eq 0 ]'
    run "$CMP" "$TMP/deq.safetensors" "$TMP/ct"
    check "ct/$name/read-back-equals-dequantize" '[ "$rc" -eq 0 ]'
}
for preset in w8a8 w8a16 w4/8a16 w4a16 w4/8a8; do
    n=${preset//\//_}
    "$ZQ" quantize "$M" -o "$TMP/v_$n.zq" -p "$preset" --for vllm -f -q
    ct_case "stories260K-$n" "$TMP/v_$n.zq" --from "$M"
done
run "$ZQ" export "$TMP/v_w4_8a8.zq" -o "$TMP/ct" --format compressed-tensors -f --from "$M"
check ct/w4_8a8-says-int4-runs-a16 'grep -q "note: INT4 layers are written as W4A16" "$TMP/out" && grep -q "\"format\":[[:space:]]*\"mixed-precision\"" "$TMP/ct/config.json"'
check ct/tokenizer-copied 'cmp -s "$M/tokenizer.bin" "$TMP/ct/tokenizer.bin"'
a=$("$ZQ" eval "$TMP/v_w4_8a8.zq" --tokens "$TMP/ids10k.bin" --ctx 512 --act none --dequantize --json | tr -d ' \t\n' | field nll)
b=$("$ZQ" eval "$TMP/ct" --tokens "$TMP/ids10k.bin" --ctx 512 --act none --json | tr -d ' \t\n' | field nll)
check ct/eval-reads-ct '[ -n "$a" ] && [ "$a" = "$b" ]'
# what the folder says of inputs is what eval runs: W8A8's token-wise INT8,
# as the .zq records it; the mixed folder's W8A8 attention alone
c=$("$ZQ" eval "$TMP/ct" --tokens "$TMP/ids10k.bin" --ctx 512 --json | tr -d ' \t\n' | field nll)
check ct/eval-quantizes-activations-the-config-names '[ -n "$c" ] && [ "$c" != "$b" ]'
run "$ZQ" export "$TMP/v_w8a8.zq" -o "$TMP/ct8" --format compressed-tensors -f --from "$M"
a=$("$ZQ" eval "$TMP/v_w8a8.zq" --tokens "$TMP/ids10k.bin" --ctx 512 --dequantize --json | tr -d ' \t\n' | field nll)
b=$("$ZQ" eval "$TMP/ct8" --tokens "$TMP/ids10k.bin" --ctx 512 --json | tr -d ' \t\n' | field nll)
check ct/w8a8-eval-runs-int8-activations '[ -n "$a" ] && [ "$a" = "$b" ]'
run "$ZQ" inspect "$TMP/ct"
check ct/inspect '[ "$rc" -eq 0 ] && grep -q "^model.layers.0.mlp.up_proj.weight_packed *I32 *172x8 " "$TMP/out" && grep -q "^model.layers.0.self_attn.q_proj.weight *I8 *64x64 " "$TMP/out"'
# the multimodal layout keeps its vision tower, FP16, beside the language model
"$ZQ" quantize "$TMP/mm" -o "$TMP/mmv.zq" -p w8a8 --for vllm -f -q
ct_case gemma3-multimodal-w8a8 "$TMP/mmv.zq"
for model in gpt2 qwen2 qwen3 llama llama3 gpt_neox mistral gemma2 gemma3_text phi3 phi3_longrope mixtral qwen3_moe \
    qwen3_moe_dense; do
    "$ZQ" quantize "$ENGINE/$model" -o "$TMP/e8.zq" -p w8a8 --for vllm -f -q
    ct_case "$model-w8a8" "$TMP/e8.zq"
    "$ZQ" quantize "$ENGINE/$model" -o "$TMP/e4.zq" -p w4a16 --group-size 32 --for vllm -f -q
    ct_case "$model-w4a16-g32" "$TMP/e4.zq"
done
# sharded as Hugging Face shards: an index, every tensor once
"$ZQ" quantize "$M" -o "$TMP/sh.zq" -p w4a16 --for vllm -q
ct_case stories260K-sharded "$TMP/sh.zq" --max-shard-size 100KB
check ct/sharded/index '[ -s "$TMP/ct/model.safetensors.index.json" ] && [ -s "$TMP/ct/model-00002-of-00002.safetensors" ] && [ ! -e "$TMP/ct/model.safetensors" ]'
# scale and minimum: exact as an integer zero point when every minimum is a
# whole number of scales (zquant's asymmetric scale is range / 2^bits: weights
# on a grid of 1/8 spanning 16 steps per row give scales of 1/8 and minimums
# of -k/8)
/usr/bin/python3 - "$ENGINE/llama" "$TMP/grid" <<'PY'
import json, os, shutil, struct, sys
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
shutil.copy(os.path.join(src, "config.json"), dst)
with open(os.path.join(src, "model.safetensors"), "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
rng = np.random.default_rng(7)
out, data, at = {}, b"", 0
for name, info in sorted(header.items()):
    shape = info["shape"]
    if len(shape) == 2 and "proj" in name:
        q = rng.integers(0, 17, size=shape)
        q[:, 0], q[:, 1] = 0, 16  # each row spans 16 steps
        w = ((q - rng.integers(0, 16, size=(shape[0], 1))) * 0.125).astype(np.float16)
    else:
        w = (rng.standard_normal(shape) * 0.1 + (1 if len(shape) == 1 else 0)).astype(np.float16)
    b = w.tobytes()
    out[name] = {"dtype": "F16", "shape": shape, "data_offsets": [at, at + len(b)]}
    data += b
    at += len(b)
h = json.dumps(out).encode()
h += b" " * (-len(h) % 8)
open(os.path.join(dst, "model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + data)
PY
"$ZQ" quantize "$TMP/grid" -o "$TMP/grid.zq" -p w4a16 --per-row --asym -q
ct_case asym-zero-point "$TMP/grid.zq"
check ct/asym-zero-point/written '[ -n "$(grep -l weight_zero_point "$TMP/ct/model.safetensors")" ]'

# --- refusals: nothing is written ----------------------------------------------------
"$ZQ" quantize "$M" -o "$TMP/default.zq" -q
run "$ZQ" export "$TMP/default.zq" -o "$TMP/no.gguf" --from "$M"
check refuse/gguf-width-not-32 '[ "$rc" -eq 3 ] && grep -q "down_proj.*not a multiple of 32.*--for llama.cpp" "$TMP/err" && [ ! -e "$TMP/no.gguf" ]'
"$ZQ" quantize "$ENGINE/llama" -o "$TMP/g16.zq" -q --group-size 16 --exclude '*down_proj*'
run "$ZQ" export "$TMP/g16.zq" -o "$TMP/no.gguf" --no-vocab
check refuse/gguf-groups-not-32 '[ "$rc" -eq 3 ] && grep -q "groups of 16" "$TMP/err" && [ ! -e "$TMP/no.gguf" ]'
"$ZQ" quantize "$ENGINE/llama" -o "$TMP/a8.zq" -q --asym --group-size 32
run "$ZQ" export "$TMP/a8.zq" -o "$TMP/no.gguf" --no-vocab
check refuse/gguf-asym-int8 '[ "$rc" -eq 3 ] && grep -q "asymmetric INT8" "$TMP/err" && [ ! -e "$TMP/no.gguf" ]'
"$ZQ" quantize "$ENGINE/opt" -o "$TMP/opt.zq" -q --group-size 32
run "$ZQ" export "$TMP/opt.zq" -o "$TMP/no.gguf" --no-vocab
check refuse/gguf-no-llama.cpp-arch '[ "$rc" -eq 3 ] && grep -q "no architecture for opt" "$TMP/err" && [ ! -e "$TMP/no.gguf" ]'
"$ZQ" quantize "$ENGINE/bert" -o "$TMP/bert.zq" -q --group-size 32
run "$ZQ" export "$TMP/bert.zq" -o "$TMP/no.gguf" --no-vocab
check refuse/gguf-bert-not-yet '[ "$rc" -eq 3 ] && grep -q "bert models is not supported yet" "$TMP/err" && [ ! -e "$TMP/no.gguf" ]'
mkdir -p "$TMP/bare"
cp "$M/config.json" "$M/model.safetensors" "$TMP/bare/"
"$ZQ" quantize "$TMP/bare" -o "$TMP/bare.zq" -p w8a16 --for llama.cpp -q
run "$ZQ" export "$TMP/bare.zq" -o "$TMP/no.gguf"
check refuse/gguf-no-tokenizer '[ "$rc" -eq 2 ] && grep -q "no tokenizer" "$TMP/err" && [ ! -e "$TMP/no.gguf" ]'
cp "$TMP/s_f16.gguf" "$TMP/keep.gguf"
run "$ZQ" export "$TMP/s_w8a16.zq" -o "$TMP/keep.gguf" --from "$M"
check refuse/exists '[ "$rc" -eq 8 ] && cmp -s "$TMP/keep.gguf" "$TMP/s_f16.gguf"'
run "$ZQ" export "$TMP/s_w8a16.zq" -o "$TMP/s_w8a16.zq" -f --format gguf --from "$M"
check refuse/output-is-input '[ "$rc" -eq 2 ]'
run "$ZQ" export "$TMP/s_w8a16.zq" -o "$TMP/x.gguf" --format safetensors
check refuse/unknown-format '[ "$rc" -eq 2 ] && [ ! -e "$TMP/x.gguf" ]'
run "$ZQ" quantize "$M" -o "$TMP/x.zq" --for llama.cpp --asym -q
check refuse/quantize-for-llama.cpp-asym-int8 '[ "$rc" -eq 2 ] && grep -q "asymmetric INT8" "$TMP/err" && [ ! -e "$TMP/x.zq" ]'
run "$ZQ" export "$TMP/default.zq" -o "$TMP/noct" --format compressed-tensors
check refuse/ct-w8a8-groups '[ "$rc" -eq 3 ] && grep -q "one scale per output row.*--for vllm" "$TMP/err" && [ ! -e "$TMP/noct" ]'
"$ZQ" quantize "$M" -o "$TMP/asym.zq" -p w4a16 --asym -q
run "$ZQ" export "$TMP/asym.zq" -o "$TMP/noct" --format compressed-tensors
check refuse/ct-asym-minimums '[ "$rc" -eq 3 ] && grep -q "not whole numbers of scales" "$TMP/err" && [ ! -e "$TMP/noct" ]'
"$ZQ" quantize "$ENGINE/llama" -o "$TMP/g16w4.zq" -p w4a16 --group-size 16 -q
run "$ZQ" export "$TMP/g16w4.zq" -o "$TMP/noct" --format compressed-tensors
check refuse/ct-marlin-groups '[ "$rc" -eq 3 ] && grep -q "groups of 16" "$TMP/err" && [ ! -e "$TMP/noct" ]'
"$ZQ" quantize "$M" -o "$TMP/fused.zq" -p w8a16 --for vllm --rule '*.q_proj.weight=int4' -q
run "$ZQ" export "$TMP/fused.zq" -o "$TMP/noct" --format compressed-tensors
check refuse/ct-fused-differ '[ "$rc" -eq 3 ] && grep -q "fused into one layer" "$TMP/err" && [ ! -e "$TMP/noct" ]'
mkdir -p "$TMP/keepdir" && echo keep >"$TMP/keepdir/x"
run "$ZQ" export "$TMP/v_w8a8.zq" -o "$TMP/keepdir" --format compressed-tensors
check refuse/ct-exists '[ "$rc" -eq 8 ] && [ "$(cat "$TMP/keepdir/x")" = keep ]'
run "$ZQ" export "$TMP/v_w8a8.zq" -o "$TMP/keepdir" --format compressed-tensors -f --from "$M"
check ct/force-replaces '[ "$rc" -eq 0 ] && [ ! -e "$TMP/keepdir/x" ] && [ -s "$TMP/keepdir/model.safetensors" ]'
cp -r "$M" "$TMP/model"
run "$ZQ" export "$TMP/v_w8a8.zq" -o "$TMP/model" --format compressed-tensors -f --from "$TMP/model"
check refuse/ct-output-holds-input '[ "$rc" -eq 2 ] && grep -q "holds the input" "$TMP/err" && cmp -s "$M/model.safetensors" "$TMP/model/model.safetensors"'
run "$ZQ" quantize "$M" -o "$TMP/x.zq" -p w4a16 --for vllm --group-size 48 -q
check refuse/quantize-for-vllm-groups '[ "$rc" -eq 2 ] && grep -q "groups of 32, 64 or 128" "$TMP/err" && [ ! -e "$TMP/x.zq" ]'
check refuse/no-temp-files '[ -z "$(find "$TMP" -name "*.tmp*" -o -name ".*zq-*")" ]'

finish
