#!/usr/bin/python3
"""LKD across processes: one serial `zquant lkd` run against the same blocks
split over 2 processes sharing a work directory (scripts/lkd-parallel.mk
with make -j2), for the bundled model (5 blocks) and a synthetic 8-block
GPT-2-shaped model (hidden 256), on this machine. Prints wall seconds, the
speedup, the peak RSS of each process, and whether the outputs are the same
bytes (they must be: each process runs with the same --threads).

usage: bench_lkd_parallel.py ZQUANT_BINARY [STEPS]"""
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def start(cmd):
    """cmd under /usr/bin/time, which reports its peak RSS."""
    return subprocess.Popen(["/usr/bin/time", "-f", "rss %M"] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(p):
    """Waits for p; its peak RSS in MB."""
    _, err = p.communicate()
    if p.returncode:
        sys.exit(f"bench: {' '.join(p.args)} failed: {err.decode()[-500:]}")
    return [int(line.split()[1]) / 1024 for line in err.decode().splitlines() if line.startswith("rss ")]


def case(zq, model, ranges, steps, threads):
    out = os.path.join("build", "bench", "lkdpar")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    # blocks apart see FP inputs (lkd's default, the quantized prefix's, is serial)
    opts = ["-p", "w4/8a8", "--steps", str(steps), "-t", str(threads), "-q", "--input", "fp"]
    serial = os.path.join(out, "serial.zq")
    t0 = time.perf_counter()
    rss1 = finish(start([zq, "lkd", model, "-o", serial] + opts))
    t1 = time.perf_counter() - t0
    work = os.path.join(out, "work")
    t0 = time.perf_counter()
    procs = [start([zq, "lkd", model, "--work", work, "--layers", r] + opts) for r in ranges]
    rss2 = [rss for p in procs for rss in finish(p)]
    par = os.path.join(out, "par.zq")
    subprocess.run([zq, "lkd", model, "--work", work, "-o", par] + opts, check=True, stdout=subprocess.DEVNULL)
    t2 = time.perf_counter() - t0
    same = open(serial, "rb").read() == open(par, "rb").read()
    print(f"{os.path.basename(model):<14} {steps} steps, -t {threads}: serial {t1:6.2f} s (RSS {max(rss1):5.0f} MB); "
          f"{len(ranges)} processes {' '.join(ranges)} + assemble {t2:6.2f} s (RSS {', '.join(f'{r:.0f}' for r in rss2)} MB); "
          f"speedup {t1 / t2:4.2f}x; same bytes: {'yes' if same else 'NO'}")
    return same


def main(zq, steps=100):
    synth = os.path.join("build", "bench", "synth8")
    if not os.path.exists(os.path.join(synth, "model.safetensors")):
        subprocess.check_call([sys.executable, os.path.join(HERE, "make_synth_gpt2.py"), synth, "8", "256"])
    ok = True
    for threads in (1, 2):
        ok &= case(zq, "data/models/stories260K", ["0-2", "3-4"], steps, threads)
        ok &= case(zq, synth, ["0-3", "4-7"], max(steps // 5, 1), threads)
    print("outputs identical to the serial run:", "yes" if ok else "NO")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
