#!/bin/sh
# The main job on the bundled real model: quantize stories260K at the
# paper's W8A8 and W4/8-A8 schemes (the latter also with LKD), check the
# files, and show what each costs against the FP16 model on real text; then
# export for llama.cpp (GGUF) and vLLM (compressed-tensors).
set -eu
ZQ=${1:-build/zquant}
MODEL=${ZQ_DEMO_MODEL:-data/models/stories260K}
TEXT=${ZQ_DEMO_TEXT:-data/text/tinystories/valid-excerpt.txt}
OUT=${ZQ_DEMO_OUT:-build/demo}
mkdir -p "$OUT"
for preset in w8a8 w4/8a8; do
    out="$OUT/stories260K-$(echo "$preset" | tr -d /).zq"
    echo "== zquant quantize $MODEL -o $out -p $preset"
    "$ZQ" quantize "$MODEL" -o "$out" -p "$preset" --force
    "$ZQ" verify "$out"
done
echo "== zquant lkd $MODEL -o $OUT/stories260K-w48a8-lkd.zq -p w4/8a8"
"$ZQ" lkd "$MODEL" -o "$OUT/stories260K-w48a8-lkd.zq" -p w4/8a8 --force
echo "== zquant inspect $OUT/stories260K-w48a8.zq"
"$ZQ" inspect "$OUT/stories260K-w48a8.zq"
# the file alone carries its tokenizer: text in, text out
echo "== zquant generate $OUT/stories260K-w48a8-lkd.zq --prompt \"Once upon a time\" -n 48"
"$ZQ" generate "$OUT/stories260K-w48a8-lkd.zq" --prompt "Once upon a time" -n 48
for f in w8a8 w48a8 w48a8-lkd; do
    echo "== zquant eval $OUT/stories260K-$f.zq --text $TEXT --max-tokens 50000 --reference $MODEL"
    "$ZQ" eval "$OUT/stories260K-$f.zq" --text "$TEXT" --max-tokens 50000 --reference "$MODEL"
done
# for the deployed runtimes: llama.cpp's GGUF and vLLM's compressed-tensors
echo "== zquant lkd $MODEL -o $OUT/stories260K-w48a16.gguf -p w4/8a16   (--for llama.cpp, then export)"
"$ZQ" lkd "$MODEL" -o "$OUT/stories260K-w48a16.gguf" -p w4/8a16 --force
echo "== zquant quantize $MODEL -o $OUT/stories260K-w8a8-vllm.zq -p w8a8 --for vllm; zquant export ... --format compressed-tensors"
"$ZQ" quantize "$MODEL" -o "$OUT/stories260K-w8a8-vllm.zq" -p w8a8 --for vllm --force -q
"$ZQ" export "$OUT/stories260K-w8a8-vllm.zq" -o "$OUT/stories260K-w8a8-vllm" --format compressed-tensors --force
echo "== zquant eval $OUT/stories260K-w48a16.gguf --text $TEXT --max-tokens 50000 --reference $MODEL   (the GGUF, read back)"
"$ZQ" eval "$OUT/stories260K-w48a16.gguf" --text "$TEXT" --tokenizer "$MODEL/tokenizer.bin" --max-tokens 50000 --reference "$MODEL"
