#!/usr/bin/python3
"""The quantize benchmark: synthetic GPT-2-medium- and Llama-shaped FP16
folders (the same ones bench_backend.py runs), zquant quantize at w8a8
and w4/8a16 against `cat > /dev/null` of the same files (warm cache), in
one run on this machine. Reports the best of N runs (these machines are
shared; the best run is the least disturbed one), GB/s of FP16 input,
the ratio to cat, and peak RSS.

Goals (issue "A 7B checkpoint ... at memory speed"): >= 3 GB/s end to end
with 2 threads, peak RSS < 64 MB.

usage: bench_quantize.py ZQUANT_BINARY [RUNS]"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = [("gpt2-medium", "make_synth_gpt2.py"), ("llama-374m", "make_synth_llama.py")]
GOAL_GBS, GOAL_MB = 3.0, 64


def run(cmd, stdout=subprocess.DEVNULL):
    """Wall seconds and peak RSS (MB) of one command."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    err = p.stderr.read().decode()
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed: {err}")
    return dt, usage.ru_maxrss / 1024


def main(zq, runs=5):
    ok = True
    for name, maker in SHAPES:
        model = os.path.join("build", "bench", name)
        weights = os.path.join(model, "model.safetensors")
        if not os.path.exists(weights):
            subprocess.check_call([sys.executable, os.path.join(HERE, maker), model])
        size = os.path.getsize(weights)
        with open(os.devnull, "wb") as null:
            run(["cat", weights], null)  # warm the page cache
            cat = min(run(["cat", weights], null)[0] for _ in range(runs))
        print(f"input: {model} ({size / 1e9:.3f} GB FP16), best of {runs} runs")
        print(f"{'cat > /dev/null':<28} {cat:7.3f} s {size / cat / 1e9:7.2f} GB/s")
        out = os.path.join("build", "bench", "out.zq")
        for preset in ("w8a8", "w4/8a16"):
            best, rss = None, 0.0
            for _ in range(runs):
                if os.path.exists(out):
                    os.unlink(out)  # a fresh output, as a user's first run has
                dt, r = run([zq, "quantize", model, "-o", out, "-q", "-p", preset])
                best = dt if best is None else min(best, dt)
                rss = max(rss, r)
            gbs = size / best / 1e9
            met = gbs >= GOAL_GBS and rss < GOAL_MB
            print(f"{'zquant quantize -p ' + preset:<28} {best:7.3f} s {gbs:7.2f} GB/s  "
                  f"{best / cat:6.1f}x cat  peak RSS {rss:6.1f} MB  {'met' if met else 'NOT met'}")
            ok &= met
        os.unlink(out)
    print(f"goals (>= {GOAL_GBS} GB/s, < {GOAL_MB} MB):", "met" if ok else "NOT met")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
