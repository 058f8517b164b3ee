#!/usr/bin/python3
"""The export benchmark: the synthetic GPT-2-medium-shaped model (as the
quantize benchmark makes it), quantized for each runtime, then zquant export
to GGUF (w8a16 and w4/8a16 --for llama.cpp) and to compressed-tensors (w8a8
and w4/8a16 --for vllm), against `cat > /dev/null` of the output (warm
cache), in one run on this machine. Best of N runs; GB/s of output written,
the ratio to cat, and peak RSS. A second reference, `cat OUT > COPY; sync
COPY`, writes the same bytes to the same disk as the export does (which
also fsyncs): what writing alone costs here.

Goals (issue "A 7B checkpoint ... at memory speed"): >= 1.5 GB/s of
output for every target and preset, peak RSS < 256 MB.

usage: bench_export.py ZQUANT_BINARY [RUNS]"""
import os
import shutil
import subprocess
import sys

from bench_quantize import HERE, run

MODEL = os.path.join("build", "bench", "gpt2-medium")


def size_of(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return os.path.getsize(path)


def main(zq, runs=5):
    if not os.path.exists(os.path.join(MODEL, "model.safetensors")):
        subprocess.check_call([sys.executable, os.path.join(HERE, "make_synth_gpt2.py"), MODEL])
    ok = True
    print(f"model: {MODEL}, best of {runs} runs")
    for fmt, runtime, preset, out in (("gguf", "llama.cpp", "w8a16", "out.gguf"),
                                      ("gguf", "llama.cpp", "w4/8a16", "out.gguf"),
                                      ("compressed-tensors", "vllm", "w8a8", "out-ct"),
                                      ("compressed-tensors", "vllm", "w4/8a16", "out-ct")):
        src = os.path.join("build", "bench", "export-in.zq")
        dst = os.path.join("build", "bench", out)
        subprocess.check_call([zq, "quantize", MODEL, "-o", src, "-q", "-f", "-p", preset, "--for", runtime])
        cmd = [zq, "export", src, "-o", dst, "--format", fmt, "-q", "-f"] + (["--no-vocab"] if fmt == "gguf" else [])
        best, rss = None, 0.0
        for _ in range(runs):
            # a fresh output, as a user's first run has (replacing one also
            # frees the old file's blocks, 60 ms for 400 MB here)
            if os.path.isdir(dst):
                shutil.rmtree(dst)
            elif os.path.exists(dst):
                os.unlink(dst)
            dt, r = run(cmd)
            best = dt if best is None else min(best, dt)
            rss = max(rss, r)
        files = [os.path.join(dst, f) for f in os.listdir(dst)] if os.path.isdir(dst) else [dst]
        with open(os.devnull, "wb") as null:
            run(["cat"] + files, null)
            cat = min(run(["cat"] + files, null)[0] for _ in range(runs))
        copy = os.path.join("build", "bench", "copy.bin")
        write = min(run(["sh", "-c", 'cat "$@" > ' + copy + " && sync " + copy, "sh"] + files)[0] for _ in range(runs))
        os.unlink(copy)
        size = size_of(dst)
        gbs = size / best / 1e9
        print(f"{'export ' + preset + ' -> ' + fmt:<38} {size / 1e6:8.1f} MB {best:7.3f} s {gbs:6.2f} GB/s  "
              f"cat {size / cat / 1e9:6.2f} GB/s ({best / cat:4.1f}x)  cat>file+sync {size / write / 1e9:5.2f} GB/s "
              f"({best / write:4.1f}x)  peak RSS {rss:6.1f} MB  {'met' if gbs >= 1.5 and rss < 256 else 'NOT met'}")
        ok &= gbs >= 1.5 and rss < 256
        if os.path.isdir(dst):
            shutil.rmtree(dst)
    print("goals (>= 1.5 GB/s of output, < 256 MB):", "met" if ok else "NOT met")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.path.insert(0, HERE)
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
