#!/bin/sh
# Installs llama.cpp as the tests run it: node-llama-cpp with its prebuilt
# CPU binaries for linux-x64, from the npm registry, into DIR (default
# build/node), once; then puts the check script beside node_modules (Node
# resolves an ES module's imports from the module's own folder).
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build/node}
version=3.22.1
command -v npm >/dev/null 2>&1 || ZQ_DEPS_EXTRA="nodejs npm" scripts/deps.sh
if [ ! -f "$dir/node_modules/node-llama-cpp/package.json" ] ||
    ! grep -q "\"version\": \"$version\"" "$dir/node_modules/node-llama-cpp/package.json"; then
    mkdir -p "$dir"
    npm install --prefix "$dir" --omit=optional --no-audit --no-fund --ignore-scripts --loglevel=error \
        "node-llama-cpp@$version" "@node-llama-cpp/linux-x64@$version" >&2
fi
cp scripts/llama_cpp_check.mjs "$dir/check.mjs"
