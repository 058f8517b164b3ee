#!/usr/bin/python3
"""Speed of one zquant build against another on this machine, in one run:
the LKD step (at make bench's 512 tokens a sequence and lkd's default
128), eval and GPTQ figures of `make bench`, each command run by
the two builds in turn (A B A B ...) so that the machine's load falls on
both alike; per figure the median of each, the ratio of medians (B's time
over A's: below 1, B is faster) and the range of the per-round ratios.

usage: bench_versus.py A_BUILD_DIR B_BUILD_DIR [ROUNDS]
(each directory holds a zquant and a bench_gptq, as `make` and `make
build/bench_gptq` leave them in build/; ROUNDS default 5;
ZQ_VERSUS_ONLY=gptq, say, runs the measures whose name has that word)"""
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join("build", "bench")


def lkd_step(build, seq):
    model = os.path.join(BENCH, "gpt2-medium-1block")
    zq = os.path.join(build, "zquant")
    # the same step in both builds: a build whose defaults learn clipping (and
    # generate data, and take quantized inputs) is asked for the older ones
    newer = "no-learn-clip" in subprocess.run([zq, "lkd", "--help"], capture_output=True, text=True).stdout
    same = ["--no-learn-clip", "--random-tokens", "--input", "fp"] if newer else []
    out = subprocess.run([zq, "lkd", model, "-o", os.path.join(BENCH, "versus.zq"), "--force",
                          "-p", "w4/8a8", "--steps", "3", "--batch", "4", "--seq-len", str(seq), "--data-batches", "1",
                          "--json"] + same, check=True, capture_output=True, text=True).stdout
    layer = json.loads(out)["layers"][0]
    return layer["seconds"] / layer["steps"]


def eval_run(build):
    model, tok = os.path.join(BENCH, "gpt2-small"), os.path.join(BENCH, "eval-tokens.bin")
    t0 = time.perf_counter()
    subprocess.run([os.path.join(build, "zquant"), "eval", model, "--tokens", tok, "--ctx", "512", "--batch", "4",
                    "--json"], check=True, capture_output=True)
    return time.perf_counter() - t0


def gptq_runs(build):
    out = subprocess.run([os.path.join(build, "bench_gptq")], check=True, capture_output=True, text=True).stdout
    return [float(x) for x in re.findall(r"x\s+\d+: +([0-9.]+) s", out)]


def prepare():
    for name, layers, hidden in (("gpt2-medium-1block", "1", "1024"), ("gpt2-small", "12", "768")):
        if not os.path.exists(os.path.join(BENCH, name, "model.safetensors")):
            subprocess.check_call([sys.executable, os.path.join(HERE, "make_synth_gpt2.py"),
                                   os.path.join(BENCH, name), layers, hidden])
    with open(os.path.join(BENCH, "eval-tokens.bin"), "wb") as f:  # as bench_eval.py: 8 windows of 512
        state = 7
        for _ in range(8 * 512):
            state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
            f.write(struct.pack("<I", (state >> 33) % 50257))


def main(a, b, rounds=5):
    prepare()
    # each measure gives one or more figures: (names, function of a build dir)
    measures = [(["lkd step, seq 512 (s)"], lambda d: [lkd_step(d, 512)]),
                (["lkd step, seq 128 (s)"], lambda d: [lkd_step(d, 128)]),
                (["eval 8 x 512 tokens (s)"], lambda d: [eval_run(d)]),
                (["gptq up 11008x4096 (s)", "gptq down 4096x11008 (s)"], gptq_runs)]
    only = os.environ.get("ZQ_VERSUS_ONLY")
    print(f"A = {a}, B = {b}, {rounds} rounds, A and B in turn")
    for names, fn in measures:
        if only and only not in names[0]:
            continue
        ta, tb = [], []
        for _ in range(rounds):
            ta.append(fn(a))
            tb.append(fn(b))
        for k, name in enumerate(names):
            xa, xb = [t[k] for t in ta], [t[k] for t in tb]
            ratios = sorted(y / x for x, y in zip(xa, xb))
            ma, mb = statistics.median(xa), statistics.median(xb)
            print(f"{name:<26} A {ma:7.3f}  B {mb:7.3f}  B/A {mb / ma:5.2f} (rounds {ratios[0]:.2f}-{ratios[-1]:.2f})",
                  flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], *(int(x) for x in sys.argv[3:]))
