#!/bin/sh
# Installs the Debian packages zquant builds and tests with, if any is
# missing. Works as root or through sudo. Set ZQ_DEPS_EXTRA to add more.
# Node.js runs llama.cpp in the export tests (scripts/llama_cpp_setup.sh
# adds Debian's npm where the Node.js in use has none); /usr/bin/python3 with
# numpy decodes compressed-tensors exports (scripts/ct_decode.py); OpenMPI
# builds and runs the MPI test (make MPI=1, tests/mpi.sh).
set -eu
pkgs="build-essential pkg-config clang nodejs python3-numpy openmpi-bin libopenmpi-dev libopenblas-dev libhdf5-dev libcjson-dev libzstd-dev libpcre2-dev libutf8proc-dev ${ZQ_DEPS_EXTRA:-}"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "deps.sh: need root or sudo to install:$missing" >&2
    exit 1
fi
echo "deps.sh: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
