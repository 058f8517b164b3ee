#!/bin/sh
# Makes the fuzz harnesses' seed corpora (tests/fuzz/corpus/HARNESS/) from
# the test fixtures, in each harness's input format. Inputs that fuzzing
# finds worth keeping are added beside these. usage: fuzz_corpus.sh ZQUANT
set -eu
ZQ=${1:-build/zquant}
F=tests/fixtures
C=tests/fuzz/corpus
rm -rf "$C"
mkdir -p "$C/fuzz_safetensors" "$C/fuzz_folder" "$C/fuzz_hdf5" "$C/fuzz_zq" "$C/fuzz_zq_sealed" "$C/fuzz_config" \
    "$C/fuzz_tokenizer" "$C/fuzz_tokens"
for m in gpt2 opt gpt_neox gptj llama bert; do
    cp "$F/models/$m/model.safetensors" "$C/fuzz_safetensors/$m.safetensors"
    cp "$F/models/$m.h5" "$C/fuzz_hdf5/$m.h5"
    cp "$F/models/$m/config.json" "$C/fuzz_config/$m.json"
    # a folder: config, no index, the one file
    { cat "$F/models/$m/config.json"; printf '\n#--#\n\n#--#\n'; cat "$F/models/$m/model.safetensors"; } \
        >"$C/fuzz_folder/$m"
done
for f in "$F"/bad/*.safetensors; do cp "$f" "$C/fuzz_safetensors/bad-$(basename "$f")"; done
for f in "$F"/bad/*.h5; do cp "$f" "$C/fuzz_hdf5/bad-$(basename "$f")"; done
cp "$F/models/llama-bf16.safetensors" "$C/fuzz_safetensors/llama-bf16.safetensors"
S=$F/models/llama-sharded
{ cat "$S/config.json"; printf '\n#--#\n'; cat "$S/model.safetensors.index.json"; printf '\n#--#\n'
  cat "$S/model-00001-of-00002.safetensors"; printf '\n#--#\n'; cat "$S/model-00002-of-00002.safetensors"; } \
    >"$C/fuzz_folder/llama-sharded"
for a in qwen2; do cp "$F/engine/$a/config.json" "$C/fuzz_config/$a.json"; done
cp data/models/stories260K/config.json "$C/fuzz_config/stories260K.json"
n=0
for args in "llama -p w4/8a8 --group-size 12" "gpt2 -p w8a8 --groups 3" "opt -p w4a16 --per-tensor --asym" \
    "gptj -p w8a16 --group-size 7 --asym --compress=3" "bert --rule *=fp16"; do
    set -- $args
    m=$1
    shift
    n=$((n + 1))
    "$ZQ" quantize "$F/models/$m" -o "$C/fuzz_zq/$n-$m.zq" -q -f "$@"
    cp "$C/fuzz_zq/$n-$m.zq" "$C/fuzz_zq_sealed/"
done
{ printf '\000'; cat data/models/stories260K/tokenizer.bin; } >"$C/fuzz_tokenizer/llama2c"
for k in bytelevel sentencepiece splits; do
    { printf '\001'; cat "$F/tokenizers/$k/tokenizer.json"; } >"$C/fuzz_tokenizer/$k"
done
{ printf '\001'; head -c 1024 "$F/real/tokens.bin"; } >"$C/fuzz_tokens/raw"
{ printf '\000'; cat "$F/real/tokens-int64.npy"; } >"$C/fuzz_tokens/npy-int64"
du -sh "$C"
