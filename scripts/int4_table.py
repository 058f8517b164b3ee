#!/usr/bin/python3
"""The INT4 accuracy table (README, "INT4: GPTQ, learned clipping, LKD"):
every quantization method zquant has, on the bundled stories260K, scored
by KL(P_fp16 || P_quantized) per token on held-out text, the first 40
stories of the bundled TinyStories excerpt; calibration text for the
methods that take it is the other 960 stories (never the held-out ones).
Each figure is also given as a ratio to round to nearest's KL in the same
setting. llama.cpp's Q4_0 (weight-only, its own rounding rule emulated in
numpy from ggml's quantize_row_q4_0_ref: d = signed max / -8, q =
min(15, trunc(x/d + 8.5))) is scored the same way for comparison.

usage: int4_table.py ZQUANT [OUT_DIR] [--groups 32,128] [--presets ...]"""
import json
import os
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL = os.path.join(ROOT, "data", "models", "stories260K")
TEXT = os.path.join(ROOT, "data", "text", "tinystories", "valid-excerpt.txt")
HELD_STORIES = 40

LONG = ["--lr-schedule", "cosine", "--lr", "2e-4", "--steps", "300", "--data-batches", "64"]

# name, command (quantize or lkd), its options
METHODS = [
    ("round to nearest", "quantize", []),
    ("GPTQ", "quantize", ["--method", "gptq", "--calib-text", "{calib_txt}"]),
    ("GPTQ, act order", "quantize", ["--method", "gptq", "--calib-text", "{calib_txt}", "--act-order"]),
    ("LKD, random tokens, FP input (the defaults before 0.1.0)", "lkd",
     ["--random-tokens", "--input", "fp", "--no-learn-clip"]),
    ("LKD, random tokens, quantized input, learned clipping", "lkd",
     ["--random-tokens", "--input", "quantized", "--learn-clip"]),
    ("LKD, generated (data-free), quantized input", "lkd", ["--input", "quantized", "--generated", "--no-learn-clip"]),
    ("LKD, generated, quantized input, learned clipping (the defaults)", "lkd",
     ["--input", "quantized", "--generated", "--learn-clip"]),
    ("LKD, calibration text, quantized input, learned clipping", "lkd",
     ["--input", "quantized", "--data", "{calib_bin}", "--learn-clip"]),
    ("GPTQ + LKD, calibration text, learned clipping", "lkd",
     ["--init", "gptq", "--input", "quantized", "--data", "{calib_bin}", "--learn-clip"]),
    # the longer schedule: cosine decay from lr 2e-4, 300 steps, 64 batches
    ("LKD, random tokens, quantized input, learned clipping, long", "lkd",
     ["--input", "quantized", "--learn-clip"] + LONG),
    ("LKD, generated, quantized input, learned clipping, long", "lkd",
     ["--input", "quantized", "--generated", "--learn-clip"] + LONG),
    ("GPTQ + LKD, calibration text, learned clipping, long", "lkd",
     ["--init", "gptq", "--input", "quantized", "--data", "{calib_bin}", "--learn-clip"] + LONG),
]


def split_text(out):
    held, calib, docs = [], [], 0
    with open(TEXT, encoding="utf-8") as f:
        for line in f:
            (held if docs < HELD_STORIES else calib).append(line)
            if "<|endoftext|>" in line:
                docs += 1
    paths = os.path.join(out, "held.txt"), os.path.join(out, "calib.txt")
    for path, lines in zip(paths, (held, calib)):
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(lines)
    return paths


def kl_of(zq, model, held, act=None):
    cmd = [zq, "eval", model, "--text", held, "--reference", MODEL, "--json", "-t", "1",
           "--tokenizer", os.path.join(MODEL, "tokenizer.bin")]
    if act:
        cmd += ["--act", act]
    return json.loads(subprocess.check_output(cmd))["kl"]


def q4_0_model(out):
    """The FP model with every block Linear (input a multiple of 32) rounded
    as llama.cpp's Q4_0 does, written back as F32 safetensors."""
    src = os.path.join(MODEL, "model.safetensors")
    with open(src, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dt = {"F16": np.float16, "F32": np.float32, "BF16": None}[info["dtype"]]
        x = np.frombuffer(data[a:b], dtype=dt).astype(np.float32).reshape(info["shape"])
        if ".layers." in name and name.endswith("proj.weight") and x.shape[1] % 32 == 0:
            blocks = x.reshape(-1, 32)
            idx = np.argmax(np.abs(blocks), axis=1)
            mx = blocks[np.arange(len(blocks)), idx]
            d = (mx / np.float32(-8)).astype(np.float32)
            inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
            q = np.minimum(15, np.trunc(blocks * inv[:, None] + np.float32(8.5))).astype(np.float32)
            x = ((q - 8) * d.astype(np.float16).astype(np.float32)[:, None]).reshape(x.shape)
        tensors[name] = x.astype(np.float32)
    os.makedirs(out, exist_ok=True)
    head, off = {}, 0
    for name, x in tensors.items():
        head[name] = {"dtype": "F32", "shape": list(x.shape), "data_offsets": [off, off + x.nbytes]}
        off += x.nbytes
    hj = json.dumps(head).encode()
    hj += b" " * (-len(hj) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj)
        for x in tensors.values():
            f.write(x.tobytes())
    for extra in ("config.json", "tokenizer.bin"):
        with open(os.path.join(MODEL, extra), "rb") as s, open(os.path.join(out, extra), "wb") as d:
            d.write(s.read())
    return out


def main():
    args = sys.argv[1:]
    zq = args[0]
    out = args[1] if len(args) > 1 and not args[1].startswith("--") else os.path.join("build", "int4")
    groups = [32, 128]
    presets = ["w4/8a8", "w4/8a16", "w4a16"]
    for k, a in enumerate(args):
        if a == "--groups":
            groups = [int(g) for g in args[k + 1].split(",")]
        if a == "--presets":
            presets = args[k + 1].split(",")
    os.makedirs(out, exist_ok=True)
    held, calib_txt = split_text(out)
    calib_bin = os.path.join(out, "calib.bin")
    subprocess.check_call([zq, "tokenize", calib_txt, "--tokenizer", os.path.join(MODEL, "tokenizer.bin"),
                           "-o", calib_bin, "-f"])
    jobs = []
    for g in groups:
        for p in presets:
            for m, (name, cmd, opts) in enumerate(METHODS):
                dst = os.path.join(out, f"{p.replace('/', '')}-g{g}-{m}.zq")
                opts = [o.format(calib_txt=calib_txt, calib_bin=calib_bin) for o in opts]
                jobs.append((g, p, name, [zq, cmd, MODEL, "-o", dst, "-q", "-f", "-t", "1", "-p", p,
                                          "--group-size", str(g)] + opts, dst))

    def run(job):
        g, p, name, cmd, dst = job
        subprocess.check_call(cmd)
        return g, p, name, kl_of(zq, dst, held)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(run, jobs))
    q4 = kl_of(zq, q4_0_model(os.path.join(out, "q4_0")), held, act="none")
    for g in groups:
        print(f"\ngroups of {g}: KL per token on the first {HELD_STORIES} stories (ratio to round to nearest)\n")
        print("| method | " + " | ".join(presets) + " |")
        print("|---|" + "---|" * len(presets))
        table = {(p, name): kl for gg, p, name, kl in results if gg == g}
        for name, _, _ in METHODS:
            cells = [f"{table[(p, name)]:.4f} ({table[(p, name)] / table[(p, 'round to nearest')]:.2f}x)" for p in presets]
            print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nllama.cpp Q4_0 (emulated; block Linears whose input is a multiple of 32, weight-only): KL {q4:.4f}")


if __name__ == "__main__":
    main()
