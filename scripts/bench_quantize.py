#!/usr/bin/python3
"""The quantize benchmark: synthetic GPT-2-medium- and Llama-shaped FP16
folders (the same ones bench_backend.py runs), zquant quantize at w8a8
and w4/8a16, in one run on this machine: end to end into a fresh file,
and into /dev/null (the same work without the disk). References in the
same run: `cat > /dev/null` of the input (warm cache), and a direct
write of as many bytes as the output has, from memory, in 4 MiB pieces
with an fsync (what the disk takes for those bytes, written as zquant
writes them). Medians of N runs with their
spread (these machines are shared and noisy); GB/s of FP16 input, and
peak RSS.

Goals (issue "A 7B checkpoint ... at memory speed"): >= 3 GB/s end to end
with 2 threads, peak RSS < 64 MB.

usage: bench_quantize.py ZQUANT_BINARY [RUNS]"""
import mmap
import os
import statistics
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


def direct_write(path, nbytes):
    """Seconds to write nbytes to a fresh file at path from memory, with
    O_DIRECT in 4 MiB pieces and an fsync, as zquant writes its outputs:
    what the disk itself takes for an output of that size."""
    piece = 4 << 20
    buf = mmap.mmap(-1, piece)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(piece))
    if os.path.exists(path):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    t0 = time.perf_counter()
    for at in range(0, nbytes, piece):
        os.pwrite(fd, buf, at)
    os.fsync(fd)
    dt = time.perf_counter() - t0
    os.close(fd)
    os.unlink(path)
    return dt


def spread(times):
    """median, min, max"""
    return statistics.median(times), min(times), max(times)


def rate(label, size, times, unit="GB/s"):
    m, lo, hi = spread(times)
    return f"{label:<40} {m:7.3f} s {size / m / 1e9:6.2f} {unit} ({size / hi / 1e9:.2f}-{size / lo / 1e9:.2f})"


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
            cat = [run(["cat", weights], null)[0] for _ in range(runs)]
        print(f"input: {model} ({size / 1e9:.3f} GB FP16), medians of {runs} runs (spread)")
        print(rate("cat > /dev/null", size, cat))
        out = os.path.join("build", "bench", "out.zq")
        copy = os.path.join("build", "bench", "copy.bin")
        for preset in ("w8a8", "w4/8a16"):
            wall, to_null, disk, rss = [], [], [], 0.0
            for _ in range(runs):
                if os.path.exists(out):
                    os.unlink(out)  # a fresh output, as a user's first run has
                dt, r = run([zq, "quantize", model, "-o", out, "-q", "-p", preset])
                wall.append(dt)
                rss = max(rss, r)
                to_null.append(run([zq, "quantize", model, "-o", os.devnull, "-q", "-p", preset])[0])
                disk.append(direct_write(copy, os.path.getsize(out)))
            outsize = os.path.getsize(out)
            met = size / statistics.median(wall) / 1e9 >= GOAL_GBS and rss < GOAL_MB
            print(rate("zquant quantize -p " + preset, size, wall) +
                  f"  peak RSS {rss:5.1f} MB  {'met' if met else 'NOT met'}")
            print(rate("  the same into /dev/null", size, to_null))
            print(rate(f"  O_DIRECT write of {outsize / 1e6:.0f} MB", outsize, disk, "GB/s written") +
                  f": a bound of {size / statistics.median(disk) / 1e9:.2f} GB/s of input")
            ok &= met
        os.unlink(out)
    print(f"goals (>= {GOAL_GBS} GB/s end to end, < {GOAL_MB} MB):", "met" if ok else "NOT met")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
