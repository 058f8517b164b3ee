#!/usr/bin/env bash
# A .zq stands alone: it carries its model folder's tokenizer and
# generation files and a recipe saying how it was made, so generate, eval
# --text and export need nothing beside it. Old files (none carried) still
# work with --tokenizer / --from. Prints "ok NAME" / "FAIL NAME" and a last
# line "N passed, N failed".
set -u
BUILD=${ZQ_BUILD:-build}
ZQ="$BUILD/zquant"
SUITE=standalone
. tests/suite.sh
M=data/models/stories260K
TEXT=data/text/tinystories/valid-excerpt.txt
head -c 20000 "$TEXT" >"$TMP/t.txt"

# the file alone, away from its model folder
mkdir -p "$TMP/away"
"$ZQ" quantize "$M" -o "$TMP/away/m.zq" -p w4/8a8 --for llama.cpp -q
run "$ZQ" inspect "$TMP/away/m.zq" --json
check carries/tokenizer '[ "$rc" -eq 0 ] && [ "$(json_get "$TMP/out" "[f[\"name\"] for f in d[\"files\"]]")" = "['"'"'tokenizer.bin'"'"']" ]'
size=$(stat -c %s "$M/model.safetensors")
check recipe/rtn-and-source '[ "$(json_get "$TMP/out" "d[\"recipe\"][\"method\"][\"name\"]")" = rtn ] &&
    [ "$(json_get "$TMP/out" "[(f[\"name\"], f[\"bytes\"]) for f in d[\"recipe\"][\"source\"]][1]")" = "('"'"'model.safetensors'"'"', $size)" ]'
run "$ZQ" inspect "$TMP/away/m.zq"
check inspect/says-what-it-carries '[ "$rc" -eq 0 ] && grep -q "^recipe: w4/8a8, method rtn" "$TMP/out" && grep -q "^carries: tokenizer.bin (" "$TMP/out"'
run "$ZQ" verify "$TMP/away/m.zq"
check verify/counts-files '[ "$rc" -eq 0 ] && grep -q ", 1 files)" "$TMP/out"'

cd "$TMP/away" || exit 1
run "$OLDPWD/$ZQ" generate m.zq --prompt "Once upon a time" -n 24
cd "$OLDPWD" || exit 1
cp "$TMP/out" "$TMP/gen_alone"
run "$ZQ" generate "$TMP/away/m.zq" --prompt "Once upon a time" -n 24 --tokenizer "$M/tokenizer.bin"
check generate/text-from-the-file-alone '[ "$rc" -eq 0 ] && head -c 16 "$TMP/gen_alone" | grep -q "^Once upon a time" &&
    [ "$(wc -c <"$TMP/gen_alone")" -gt 40 ] && cmp -s "$TMP/gen_alone" "$TMP/out"'
run "$ZQ" eval "$TMP/away/m.zq" --text "$TMP/t.txt" --json
a=$(tr -d ' \t\n' <"$TMP/out")
run "$ZQ" eval "$TMP/away/m.zq" --text "$TMP/t.txt" --tokenizer "$M/tokenizer.bin" --json
check eval/text-from-the-file-alone '[ "$rc" -eq 0 ] && [ -n "$a" ] && [ "$a" = "$(tr -d " \t\n" <"$TMP/out")" ]'
run "$ZQ" export "$TMP/away/m.zq" -o "$TMP/away/m.gguf"
cp "$TMP/err" "$TMP/err_alone"
run "$ZQ" export "$TMP/away/m.zq" -o "$TMP/from.gguf" --from "$M"
check export/gguf-needs-no-from '[ "$rc" -eq 0 ] && [ -s "$TMP/away/m.gguf" ] && cmp -s "$TMP/away/m.gguf" "$TMP/from.gguf"'
"$ZQ" tokenize "$TMP/t.txt" --tokenizer "$M/tokenizer.bin" -o "$TMP/ref_ids.bin"
"$ZQ" tokenize "$TMP/t.txt" --tokenizer "$TMP/away/m.gguf" -o "$TMP/gguf_ids.bin"
"$ZQ" tokenize "$TMP/t.txt" --tokenizer "$TMP/away/m.zq" -o "$TMP/zq_ids.bin"
check tokenizer/from-the-gguf-and-the-zq 'cmp -s "$TMP/ref_ids.bin" "$TMP/gguf_ids.bin" && cmp -s "$TMP/ref_ids.bin" "$TMP/zq_ids.bin"'
mkdir -p "$TMP/gonly" && cp "$TMP/away/m.gguf" "$TMP/gonly/"
run "$ZQ" generate "$TMP/gonly/m.gguf" --prompt "Once upon a time" -n 8
check generate/text-from-a-gguf-alone '[ "$rc" -eq 0 ] && grep -q "^Once upon a time" "$TMP/out"'
"$ZQ" quantize "$M" -o "$TMP/away/v.zq" --for vllm -q
run "$ZQ" export "$TMP/away/v.zq" -o "$TMP/away/ct" --format compressed-tensors
check export/ct-gets-the-tokenizer '[ "$rc" -eq 0 ] && cmp -s "$TMP/away/ct/tokenizer.bin" "$M/tokenizer.bin"'
run "$ZQ" generate "$TMP/away/ct" --prompt "Once upon a time" -n 8
check generate/text-from-a-ct-folder '[ "$rc" -eq 0 ] && grep -q "^Once upon a time" "$TMP/out" && [ "$(wc -c <"$TMP/out")" -gt 20 ]'

# generation_config.json rides along and its eos_token_id stops generation
cp -r "$M" "$TMP/gm"
first=$("$ZQ" generate "$TMP/gm" --prompt "Once upon a time" -n 1 --json | json_get /dev/stdin 'd["ids"][0]')
printf '{"bos_token_id": 1, "eos_token_id": [%s]}\n' "$first" >"$TMP/gm/generation_config.json"
"$ZQ" quantize "$TMP/gm" -o "$TMP/away/g.zq" --for vllm -q
rm -rf "$TMP/gm"
run "$ZQ" generate "$TMP/away/g.zq" --prompt "Once upon a time" -n 8 --json
check generation-config/eos-stops '[ "$rc" -eq 0 ] && [ "$(json_get "$TMP/out" "d[\"ids\"]")" = "[$first]" ]'
run "$ZQ" generate "$TMP/away/g.zq" --prompt "Once upon a time" -n 8 --json --ignore-eos
check generation-config/ignore-eos '[ "$rc" -eq 0 ] && [ "$(json_get "$TMP/out" "len(d[\"ids\"])")" = 8 ]'
run "$ZQ" export "$TMP/away/g.zq" -o "$TMP/gct" --format ct
check generation-config/ct-gets-it '[ "$rc" -eq 0 ] && grep -q "\"eos_token_id\": \[$first\]" "$TMP/gct/generation_config.json"'

# how it was made: LKD and GPTQ say so, with their data
"$ZQ" tokenize "$TMP/t.txt" --tokenizer "$M/tokenizer.bin" -o "$TMP/ids.bin"
"$ZQ" lkd "$M" -o "$TMP/l.zq" -p w4/8a8 --steps 2 --data "$TMP/ids.bin" -q
run "$ZQ" inspect "$TMP/l.zq" --json
check recipe/lkd '[ "$rc" -eq 0 ] && [ "$(json_get "$TMP/out" "(d[\"recipe\"][\"method\"][\"name\"], d[\"recipe\"][\"method\"][\"steps\"], d[\"recipe\"][\"method\"][\"data_file\"], d[\"recipe\"][\"method\"][\"data_file_bytes\"])")" = "('"'"'lkd'"'"', 2, '"'"'ids.bin'"'"', $(stat -c %s "$TMP/ids.bin"))" ]'
"$ZQ" quantize "$M" -o "$TMP/q.zq" -p w4/8a8 --method gptq --calib "$TMP/ids.bin" --calib-samples 2 --seq-len 64 -q
run "$ZQ" inspect "$TMP/q.zq" --json
check recipe/gptq '[ "$rc" -eq 0 ] && [ "$(json_get "$TMP/out" "(d[\"recipe\"][\"method\"][\"name\"], d[\"recipe\"][\"method\"][\"data_batches\"], d[\"recipe\"][\"method\"][\"damp\"] > 0)")" = "('"'"'gptq'"'"', 2, True)" ]'

# a damaged carried file is found, by verify and by its readers
cp "$TMP/away/m.zq" "$TMP/bad.zq"
off=$(/usr/bin/python3 -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[16:24])[0]
print(json.loads(b[32:32 + n])["files"][0]["offset"])' "$TMP/bad.zq")
printf 'X' | dd of="$TMP/bad.zq" bs=1 seek=$((off + 100)) conv=notrunc status=none
run "$ZQ" verify "$TMP/bad.zq"
check damaged/verify '[ "$rc" -eq 6 ] && grep -q "attached file .tokenizer.bin. checksum mismatch" "$TMP/err"'
run "$ZQ" generate "$TMP/bad.zq" --prompt "Once" -n 2
check damaged/generate '[ "$rc" -eq 6 ] && grep -q "checksum mismatch" "$TMP/err"'

# a file that carries nothing (as every file before this format had): the
# user names the tokenizer and the folder, as before
mkdir -p "$TMP/bare"
cp "$M/config.json" "$M/model.safetensors" "$TMP/bare/"
"$ZQ" quantize "$TMP/bare" -o "$TMP/away/old.zq" -p w4/8a16 --for llama.cpp -q
run "$ZQ" inspect "$TMP/away/old.zq" --json
check old/carries-nothing '[ "$rc" -eq 0 ] && [ "$(json_get "$TMP/out" "d[\"files\"]")" = "[]" ]'
run "$ZQ" generate "$TMP/away/old.zq" --prompt "Once" -n 2
check old/generate-asks-for-tokenizer '[ "$rc" -eq 2 ] && grep -q "give --tokenizer" "$TMP/err"'
run "$ZQ" generate "$TMP/away/old.zq" --prompt "Once" -n 2 --tokenizer "$M/tokenizer.bin"
check old/generate-with-tokenizer '[ "$rc" -eq 0 ] && grep -q "^Once" "$TMP/out"'
run "$ZQ" export "$TMP/away/old.zq" -o "$TMP/old.gguf"
check old/export-asks-for-from '[ "$rc" -eq 2 ] && grep -q "give --tokenizer or --from" "$TMP/err" && [ ! -e "$TMP/old.gguf" ]'
run "$ZQ" export "$TMP/away/old.zq" -o "$TMP/old.gguf" --from "$M"
check old/export-with-from '[ "$rc" -eq 0 ] && [ -s "$TMP/old.gguf" ]'

# one name per concept: the data options read the same in quantize and lkd
"$ZQ" lkd "$M" -o "$TMP/lt.zq" -p w4/8a8 --steps 2 --text "$TMP/t.txt" -q
run "$ZQ" inspect "$TMP/lt.zq" --json
check names/lkd-takes-text '[ "$rc" -eq 0 ] && [ "$(json_get "$TMP/out" "(d[\"recipe\"][\"method\"][\"data\"], d[\"recipe\"][\"method\"][\"data_tokens\"] > 1000)")" = "('"'"''"'"', True)" ]'
"$ZQ" lkd "$M" -o "$TMP/l1.zq" -p w4/8a8 --steps 2 --tokens "$TMP/ids.bin" --samples 8 -q
"$ZQ" lkd "$M" -o "$TMP/l2.zq" -p w4/8a8 --steps 2 --calib "$TMP/ids.bin" --data-batches 2 -q
check names/old-spellings-are-synonyms 'cmp -s "$TMP/l1.zq" "$TMP/l2.zq"'
run "$ZQ" lkd "$M" -o "$TMP/x.zq" --steps 2 --tokens "$TMP/t.txt"
check names/text-where-ids-expected '[ "$rc" -eq 7 ] && grep -q "looks like text, not token ids: give it with --text" "$TMP/err" && [ ! -e "$TMP/x.zq" ]'
run "$ZQ" lkd "$M" -o "$TMP/x.zq" --steps 2 --tokens "$TMP/ids.bin" --generated
check names/one-data-source '[ "$rc" -eq 2 ] && grep -q "give one of --tokens, --text, --generated and --random-tokens" "$TMP/err" && [ ! -e "$TMP/x.zq" ]'
run "$ZQ" lkd "$M" -o "$TMP/x.zq" --samples 8 --data-batches 2
check names/samples-or-batches '[ "$rc" -eq 2 ] && grep -q "give --samples or --data-batches" "$TMP/err"'
run "$ZQ" quantize "$M" -o "$TMP/gen.zq" -p w4/8a8 --method gptq --generated --samples 2 --seq-len 32
check names/gptq-on-generated-data '[ "$rc" -eq 0 ] && "$ZQ" inspect "$TMP/gen.zq" --json >"$TMP/j" && [ "$(json_get "$TMP/j" "d[\"recipe\"][\"method\"][\"data\"]")" = generated ]'
run "$ZQ" quantize "$M" -o "$TMP/x.zq" --method gptq --random-tokens
check names/gptq-not-on-random-ids '[ "$rc" -eq 2 ] && [ ! -e "$TMP/x.zq" ]'
run "$ZQ" quantize "$M" -o "$TMP/x.zq" --samples 8
check names/data-without-gptq '[ "$rc" -eq 2 ] && grep -q "are for --method gptq" "$TMP/err"'
run "$ZQ" eval "$M" --tokens "$TMP/ids.bin" --seq-len 64 --json
a=$(tr -d ' \t\n' <"$TMP/out")
run "$ZQ" eval "$M" --tokens "$TMP/ids.bin" --ctx 64 --json
check names/eval-seq-len-is-ctx '[ "$rc" -eq 0 ] && [ "$a" = "$(tr -d " \t\n" <"$TMP/out")" ] && grep -q "\"ctx\":[[:space:]]*64" "$TMP/out"'

finish
