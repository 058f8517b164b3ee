#!/bin/sh
# The main job on the bundled real model: quantize stories260K at the
# paper's W8A8 and W4/8-A8 schemes (the latter also with LKD), check the
# files, and show what each costs against the FP16 model on real text.
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
for f in w8a8 w48a8 w48a8-lkd; do
    echo "== zquant eval $OUT/stories260K-$f.zq --text $TEXT --max-tokens 50000 --reference $MODEL"
    "$ZQ" eval "$OUT/stories260K-$f.zq" --text "$TEXT" --max-tokens 50000 --reference "$MODEL"
done
