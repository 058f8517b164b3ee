#!/usr/bin/python3
"""The export benchmark: the synthetic GPT-2-medium-shaped model (as the
quantize benchmark makes it), quantized for each runtime, then zquant export
to GGUF (w8a16 and w4/8a16 --for llama.cpp) and to compressed-tensors (w8a8
and w4/8a16 --for vllm), in one run on this machine, the input in the page
cache, a fresh output each time. References in the same run: `cat >
/dev/null` of the output (warm cache), and a direct write of as many bytes
from memory in 4 MiB pieces with an fsync (what the disk takes for them,
written as zquant writes them). Medians of N runs with their spread; GB/s
of output written, and peak RSS.

Goals (issue "A 7B checkpoint ... at memory speed"): >= 1.5 GB/s of
output for every target and preset, peak RSS < 256 MB.

usage: bench_export.py ZQUANT_BINARY [RUNS]"""
import os
import shutil
import statistics
import subprocess
import sys

from bench_quantize import HERE, direct_write, rate, run

MODEL = os.path.join("build", "bench", "gpt2-medium")


def size_of(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return os.path.getsize(path)


def main(zq, runs=5):
    if not os.path.exists(os.path.join(MODEL, "model.safetensors")):
        subprocess.check_call([sys.executable, os.path.join(HERE, "make_synth_gpt2.py"), MODEL])
    ok = True
    print(f"model: {MODEL}, medians of {runs} runs (spread)")
    for fmt, runtime, preset, out in (("gguf", "llama.cpp", "w8a16", "out.gguf"),
                                      ("gguf", "llama.cpp", "w4/8a16", "out.gguf"),
                                      ("compressed-tensors", "vllm", "w8a8", "out-ct"),
                                      ("compressed-tensors", "vllm", "w4/8a16", "out-ct")):
        src = os.path.join("build", "bench", "export-in.zq")
        dst = os.path.join("build", "bench", out)
        subprocess.check_call([zq, "quantize", MODEL, "-o", src, "-q", "-f", "-p", preset, "--for", runtime])
        with open(os.devnull, "wb") as null:
            run(["cat", src], null)  # into the page cache: quantize writes past it
        cmd = [zq, "export", src, "-o", dst, "--format", fmt, "-q", "-f"] + (["--no-vocab"] if fmt == "gguf" else [])
        wall, rss = [], 0.0
        for _ in range(runs):
            # a fresh output, as a user's first run has (replacing one also
            # frees the old file's blocks, 60 ms for 400 MB here)
            if os.path.isdir(dst):
                shutil.rmtree(dst)
            elif os.path.exists(dst):
                os.unlink(dst)
            dt, r = run(cmd)
            wall.append(dt)
            rss = max(rss, r)
        files = [os.path.join(dst, f) for f in os.listdir(dst)] if os.path.isdir(dst) else [dst]
        size = size_of(dst)
        with open(os.devnull, "wb") as null:
            run(["cat"] + files, null)
            cat = [run(["cat"] + files, null)[0] for _ in range(runs)]
        disk = [direct_write(os.path.join("build", "bench", "copy.bin"), size) for _ in range(runs)]
        met = size / statistics.median(wall) / 1e9 >= 1.5 and rss < 256
        print(rate(f"export {preset} -> {fmt} ({size / 1e6:.0f} MB)", size, wall) +
              f"  peak RSS {rss:5.1f} MB  {'met' if met else 'NOT met'}")
        print(rate("  cat > /dev/null of it", size, cat))
        print(rate("  O_DIRECT write of as many bytes", size, disk))
        ok &= met
        if os.path.isdir(dst):
            shutil.rmtree(dst)
    print("goals (>= 1.5 GB/s of output, < 256 MB):", "met" if ok else "NOT met")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    sys.path.insert(0, HERE)
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
