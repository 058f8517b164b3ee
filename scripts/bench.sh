#!/bin/sh
# make bench: every benchmark, each measured against its reference in the
# same run on this machine.
set -eu
ZQ=${1:-build/zquant}
ZQ_DEPS_EXTRA="python3-numpy" "$(dirname "$0")/deps.sh"
/usr/bin/python3 "$(dirname "$0")/bench_quantize.py" "$ZQ" "${ZQ_BENCH_RUNS:-5}"
