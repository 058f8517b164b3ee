#!/usr/bin/python3
"""A Llama-2-7B-shaped checkpoint end to end on this machine: every zquant
command a user runs on it, each timed (wall seconds) with its peak RSS
(the kernel's ru_maxrss of that process), in one table.

The checkpoint is made on the fly by make_synth_llama.py (random weights,
std 0.02; 32 layers, hidden 4096, 32 heads, FFN 11008, vocab 32000, 4096
positions, in 5 GB shards with their index, as save_pretrained writes
them) and is never committed. --layers 4 is the slice `make bench` runs.

Steps: quantize -p w8a8 and -p w4/8a16 (GB/s of FP16 input); quantize
--for llama.cpp then export to GGUF, and --for vllm then export to
compressed-tensors (GB/s of output); eval and bench of the w8a8 and
w4/8a16 files on the integer backend; lkd of --lkd-layers (random
tokens: sampling data from a 7B FP model costs a full pass over it per
token); quantize --method gptq on --gptq-samples x 2048 random token ids.
Outputs are removed once measured (the disk holds the checkpoint and one
output at a time).

usage: run_7b.py ZQUANT DIR [--layers N] [--gptq-samples S] [--lkd-layers LIST]
                 [--skip STEP,...] [--json FILE]"""
import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPE = dict(h=4096, ffn=11008, vocab=32000, heads=32, max_pos=4096, shard_gb=5)


def measure(cmd, capture=False):
    """(wall s, peak RSS MB, stdout) of one command; a failure stops the run."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.PIPE)
    out = p.stdout.read().decode() if capture else ""
    err = p.stderr.read().decode()
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"run_7b: {' '.join(cmd)} failed: {err.strip()}")
    return dt, usage.ru_maxrss / 1024, out


def size_of(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def evict(paths):
    """Drops files from the page cache: the 13.5 GB checkpoint and a 7 GB
    output do not both fit beside a run in 24 GB, and a model whose pages
    were pushed out is read from the disk once per token."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)


def remove(*paths):
    for p in paths:
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.unlink(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("zq")
    ap.add_argument("dir")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--gptq-samples", type=int, default=128)
    ap.add_argument("--lkd-layers", default="0")
    ap.add_argument("--skip", default="")
    ap.add_argument("--json")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    zq, model, out = a.zq, os.path.join(a.dir, "model"), os.path.join(a.dir, "out")
    os.makedirs(out, exist_ok=True)
    rows = []

    def row(step, dt, rss, note=""):
        rows.append({"step": step, "seconds": round(dt, 2), "peak_rss_mb": round(rss, 1), "note": note})
        print(f"| {step} | {dt:.1f} | {rss:.0f} | {note} |", flush=True)

    print(f"| {a.layers} layers of Llama-2-7B width | s | peak RSS MB | |\n|---|---|---|---|", flush=True)
    if not os.path.exists(os.path.join(model, "config.json")):
        dt, rss, _ = measure([sys.executable, os.path.join(HERE, "make_synth_llama.py"), model, str(a.layers),
                              str(SHAPE["h"]), str(SHAPE["ffn"]), str(SHAPE["vocab"]), str(SHAPE["shard_gb"]),
                              str(SHAPE["heads"]), str(SHAPE["heads"]), str(SHAPE["max_pos"])])
        row("make the checkpoint (scripts/make_synth_llama.py)", dt, rss)
    fp16 = sum(os.path.getsize(os.path.join(model, f)) for f in os.listdir(model) if f.endswith(".safetensors"))
    nshards = sum(f.endswith(".safetensors") for f in os.listdir(model))
    print(f"| checkpoint: {fp16 / 1e9:.2f} GB FP16 in {nshards} shard(s) | | | |", flush=True)
    weights = [os.path.join(model, f) for f in os.listdir(model) if f.endswith(".safetensors")]
    subprocess.run(["cat"] + weights, stdout=subprocess.DEVNULL)

    tokens = os.path.join(out, "tokens.u32")
    rng = random.Random(1)
    with open(tokens, "wb") as f:
        f.write(struct.pack("<2048I", *(rng.randrange(SHAPE["vocab"]) for _ in range(2048))))

    for preset in () if "quantize" in skip else ("w8a8", "w4/8a16"):
        tag = preset.replace("/", "")
        zqf = os.path.join(out, tag + ".zq")
        remove(zqf)
        dt, rss, _ = measure([zq, "quantize", model, "-o", zqf, "-q", "-p", preset])
        row(f"quantize -p {preset}", dt, rss, f"{fp16 / dt / 1e9:.2f} GB/s of FP16, {size_of(zqf) / 1e9:.2f} GB out")
        measured = not skip >= {"eval", "bench"}
        if measured:  # the model in memory, as where it is deployed; not its checkpoint
            evict(weights)
            subprocess.run(["cat", zqf], stdout=subprocess.DEVNULL)
        if "eval" not in skip:
            dt, rss, _ = measure([zq, "eval", zqf, "--tokens", tokens, "--seq-len", "512"])
            row(f"eval {tag}.zq (4 x 512 tokens, integer backend)", dt, rss)
        if "bench" not in skip:
            dt, rss, text = measure([zq, "bench", zqf, "--prefill", "128", "--decode", "16", "--reps", "1", "--json"],
                                    capture=True)
            b = json.loads(text)
            row(f"bench {tag}.zq (prefill 128, decode 16)", dt, rss,
                f"load {b['load_s']:.1f} s, prefill {b['prefill_tps']:.1f} tok/s, decode {b['decode_tps']:.2f} tok/s")
        remove(zqf)
        if measured:
            subprocess.run(["cat"] + weights, stdout=subprocess.DEVNULL)

    for target, fmt, dest in (("llama.cpp", "gguf", "model.gguf"), ("vllm", "compressed-tensors", "ct")):
        if "export" in skip:
            break
        preset = "w4/8a16" if fmt == "gguf" else "w8a8"
        zqf, dst = os.path.join(out, "for-" + target + ".zq"), os.path.join(out, dest)
        remove(zqf, dst)
        dt, rss, _ = measure([zq, "quantize", model, "-o", zqf, "-q", "-p", preset, "--for", target])
        row(f"quantize -p {preset} --for {target}", dt, rss, f"{fp16 / dt / 1e9:.2f} GB/s of FP16")
        dt, rss, _ = measure([zq, "export", zqf, "-o", dst, "--format", fmt, "-q"])
        row(f"export {preset} to {fmt}", dt, rss, f"{size_of(dst) / dt / 1e9:.2f} GB/s of output, {size_of(dst) / 1e9:.2f} GB")
        remove(zqf, dst)

    if "lkd" not in skip:
        zqf = os.path.join(out, "lkd.zq")
        remove(zqf)
        nblocks = len(a.lkd_layers.split(",")) if a.lkd_layers != "all" else a.layers
        dt, rss, _ = measure([zq, "lkd", model, "-o", zqf, "-q", "-p", "w4/8a16", "--layers", a.lkd_layers,
                              "--random-tokens"])
        row(f"lkd -p w4/8a16 --layers {a.lkd_layers} (100 steps, 4 x 128 tokens)", dt, rss,
            f"{dt / nblocks:.0f} s per block with the rest of the run")
        remove(zqf, zqf + ".lkd")

    if "gptq" not in skip:
        zqf = os.path.join(out, "gptq.zq")
        remove(zqf)
        s = a.gptq_samples
        calib = os.path.join(out, "calib.u32")  # gptq takes no --random-tokens: the same, as a file
        with open(calib, "wb") as f:
            for _ in range(s):
                f.write(struct.pack("<2048I", *(rng.randrange(SHAPE["vocab"]) for _ in range(2048))))
        dt, rss, _ = measure([zq, "quantize", model, "-o", zqf, "-q", "-p", "w4/8a16", "--method", "gptq",
                              "--tokens", calib, "--samples", str(s), "--seq-len", "2048"])
        row(f"quantize --method gptq -p w4/8a16, {s} x 2048 tokens", dt, rss, f"{dt / a.layers:.0f} s per block")
        remove(zqf, calib)

    if a.json:
        with open(a.json, "w") as f:
            json.dump({"layers": a.layers, "fp16_bytes": fp16, "steps": rows}, f, indent=1)


if __name__ == "__main__":
    main()
