#!/bin/sh
# The main job on the bundled real model: quantize stories260K at the
# paper's W8A8 and W4/8-A8 schemes, check the files, show what they hold.
set -eu
ZQ=${1:-build/zquant}
MODEL=${ZQ_DEMO_MODEL:-data/models/stories260K}
OUT=${ZQ_DEMO_OUT:-build/demo}
mkdir -p "$OUT"
for preset in w8a8 w4/8a8; do
    out="$OUT/stories260K-$(echo "$preset" | tr -d /).zq"
    echo "== zquant quantize $MODEL -o $out -p $preset"
    "$ZQ" quantize "$MODEL" -o "$out" -p "$preset" --force
    "$ZQ" verify "$out"
done
echo "== zquant inspect $OUT/stories260K-w48a8.zq"
"$ZQ" inspect "$OUT/stories260K-w48a8.zq"
