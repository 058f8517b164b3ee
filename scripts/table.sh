#!/bin/sh
# The paper's comparison for one model, as a Markdown table: FP16, W8A8 with
# static per-tensor PTQ (the baseline ZeroQuant beats), W8A8 ZeroQuant
# (group-wise weights, token-wise dynamic activations), W4/8-A16 and
# W4/8-A8 without LKD; perplexity, KL(P_fp || P_quant) and top-1 agreement
# against the FP model.
#
# usage: scripts/table.sh MODEL (--text FILE | --tokens FILE) [eval options...]
#   e.g. scripts/table.sh data/models/stories260K --text data/text/tinystories/valid-excerpt.txt
# ZQ (default build/zquant) and ZQ_QUANT_OPTS (extra quantize options, e.g.
# "--group-size 64") steer it.
set -eu
ZQ=${ZQ:-build/zquant}
[ $# -ge 3 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
model=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

row() { # label, .zq or "", quantize options...
    label=$1 file=$2
    shift 2
    if [ -n "$file" ]; then
        # shellcheck disable=SC2086
        "$ZQ" quantize "$model" -o "$file" -q "$@" ${ZQ_QUANT_OPTS:-}
        target=$file
    else
        target=$model
    fi
    "$ZQ" eval "$target" --reference "$model" --json $eval_args >"$tmp/r.json"
    awk -v label="$label" '
        /"ppl":/ { gsub(/[,\t ]/, ""); split($0, a, ":"); ppl = a[2] }
        /"kl":/ { gsub(/[,\t ]/, ""); split($0, a, ":"); kl = a[2] }
        /"top1":/ { gsub(/[,\t ]/, ""); split($0, a, ":"); top1 = a[2] }
        END { printf "| %s | %.4f | %.5f | %.2f%% |\n", label, ppl, kl, 100 * top1 }' "$tmp/r.json"
}

eval_args="$*"
echo "| scheme | ppl | KL vs FP16 | top-1 agreement |"
echo "|---|---|---|---|"
row "FP16" ""
row "W8A8 static per-tensor PTQ" "$tmp/static.zq" -p w8a8 --per-tensor --act int8-tensor
row "W8A8 ZeroQuant (group-wise, token-wise)" "$tmp/w8a8.zq" -p w8a8
row "W4/8-A16 ZeroQuant, no LKD" "$tmp/w48a16.zq" -p w4/8a16
row "W4/8-A8 ZeroQuant, no LKD" "$tmp/w48a8.zq" -p w4/8a8
