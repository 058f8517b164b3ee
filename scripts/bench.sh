#!/bin/sh
# make bench: every benchmark, each measured against its reference in the
# same run on this machine.
set -eu
ZQ=${1:-build/zquant}
here=$(dirname "$0")
ZQ_DEPS_EXTRA="python3-numpy python3-torch python3-h5py" "$here/deps.sh"
echo "== quantize"
/usr/bin/python3 "$here/bench_quantize.py" "$ZQ" "${ZQ_BENCH_RUNS:-5}"
echo "== eval"
/usr/bin/python3 "$here/bench_eval.py" "$ZQ" "$(nproc)"
echo "== lkd"
/usr/bin/python3 "$here/bench_lkd.py" "$ZQ" "$(nproc)" 3
echo "== a mixture of experts' block distilled and GPTQ'd, peak RSS against dense blocks"
/usr/bin/python3 "$here/bench_moe_memory.py" "$ZQ" build/bench/moe-memory 3 16
echo "== lkd's defaults against their goals (KL and time, the bundled model)"
/usr/bin/python3 "$here/lkd_defaults.py" "$ZQ" build/lkd-defaults 3
echo "== a 4-layer slice of Llama-2-7B width, every command (scripts/run_7b.py; the whole 7B: --layers 32)"
/usr/bin/python3 "$here/run_7b.py" "$ZQ" build/bench/7b-slice --layers 4 --gptq-samples 2
echo "== export"
/usr/bin/python3 "$here/bench_export.py" "$ZQ" "${ZQ_BENCH_RUNS:-5}"
echo "== gptq"
"$(dirname "$ZQ")/bench_gptq"
echo "== the integer backend: one Linear, then whole models against the FP path and llama.cpp"
"$(dirname "$ZQ")/bench_int8"
/usr/bin/python3 "$here/bench_backend.py" "$ZQ" "$(nproc)"
