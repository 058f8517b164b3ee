#!/usr/bin/python3
"""The integer backend's benchmark (issue 18's figures), in one run on this
machine: `zquant bench` (prefill 512, decode 128, medians of 3) of a
Llama-shaped model (24 x 1024, FFN 2816, vocab 32000; random weights) and a
GPT-2-medium-shaped one, at FP16 (the FP path: weights in FP32) and every
preset; the same Llama weights exported to GGUF and run by llama.cpp itself
(node-llama-cpp, 2 threads, same token counts); the machine's memory read
bandwidth and INT8 peak from bench_int8. Prints each figure and the goals'
ratios, met or not met.

usage: bench_backend.py ZQUANT_BINARY [THREADS]"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = ["w8a8", "w4/8a8", "w8a16", "w4/8a16", "w4a16"]
GGUF = {"w8a8": "Q8_0", "w8a16": "Q8_0", "w4/8a16": "Q4_0+Q8_0"}  # what llama.cpp runs of them


def zq_bench(zq, model, threads, *extra):
    out = subprocess.run([zq, "bench", model, "--prefill", "512", "--decode", "128", "--reps", "3", "-t",
                          str(threads), "--json", *extra], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def llama_bench(node_dir, gguf):
    out = subprocess.run(["node", os.path.join(node_dir, "check.mjs"), gguf, "--ctx", "1024", "--bench-prefill",
                          "512", "--bench-decode", "128", "--reps", "3"], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def eval_rss(zq, model):
    """Peak RSS (MB) of `zquant eval MODEL` on 64 tokens it samples itself
    (batch 1, so the activations are a few MB)."""
    p = subprocess.Popen([zq, "eval", model, "--sample", "1,64", "--json"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: zquant eval {model} failed")
    return usage.ru_maxrss / 1024


def row(name, r):
    return (f"  {name:<22} prefill {r['prefill_tps']:8.1f} tok/s ({r['prefill_tps_min']:.1f}-{r['prefill_tps_max']:.1f})"
            f"  decode {r['decode_tps']:7.2f} tok/s ({r['decode_tps_min']:.2f}-{r['decode_tps_max']:.2f})"
            + (f"  {r['weight_bytes'] / 1e6:7.1f} MB/token  load {r['load_s']:.2f} s" if "weight_bytes" in r else ""))


def verdict(ok):
    return "met" if ok else "NOT met"


def main(zq, threads=2):
    build = os.path.dirname(zq)
    probe = subprocess.run([os.path.join(build, "bench_int8")], check=True, capture_output=True, text=True).stdout
    bw = float(re.search(r"bandwidth ([0-9.]+) GB/s", probe).group(1)) * 1e9
    peak = re.search(r"INT8 peak ([0-9]+) GMAC/s", probe)
    print(f"machine: memory read bandwidth {bw / 1e9:.1f} GB/s" +
          (f", INT8 peak {peak.group(1)} GMAC/s" if peak else ", no VNNI INT8 peak probe"))
    shapes = [("llama-374m", [sys.executable, os.path.join(HERE, "make_synth_llama.py")]),
              ("gpt2-medium", [sys.executable, os.path.join(HERE, "make_synth_gpt2.py")])]
    node_dir = os.path.join("build", "node")
    have_llama = subprocess.run([os.path.join(HERE, "llama_cpp_setup.sh"), node_dir], capture_output=True).returncode == 0
    for name, make in shapes:
        src = os.path.join("build", "bench", name)
        if not os.path.exists(os.path.join(src, "model.safetensors")):
            subprocess.check_call(make + [src])
        print(f"== {name}, {threads} threads, prefill 512, decode 128 (medians of 3, range)")
        res = {"fp16": zq_bench(zq, src, threads)}
        print(row("fp16 (FP32 path)", res["fp16"]))
        for p in PRESETS:
            out = os.path.join("build", "bench", f"{name}-{p.replace('/', '_')}.zq")
            opts = ["--for", "llama.cpp"] if p in GGUF and name.startswith("llama") else []
            subprocess.run([zq, "quantize", src, "-o", out, "-p", p, "-f", "-q", *opts], check=True)
            res[p] = zq_bench(zq, out, threads)
            print(row(p, res[p]))
            rss, size = eval_rss(zq, out), os.path.getsize(out) / 2**20
            print(f"  {'':<22} eval peak RSS {rss:.0f} MB, the file {size:.0f} MB: file + {rss - size:.0f} MB "
                  f"(goal: + activations + 64 MB), load {res[p]['load_s']:.2f} s for {size:.0f} MB")
            if have_llama and opts:
                gguf = out[:-3] + ".gguf"
                subprocess.run([zq, "export", out, "-o", gguf, "-f", "--from", src], check=True, capture_output=True)
                res["llama.cpp " + p] = llama_bench(node_dir, gguf)
                print(row(f"llama.cpp {GGUF[p]}", res["llama.cpp " + p]))
        fp, w8 = res["fp16"], res["w8a8"]
        print(f"  goal W8A8 prefill >= 4x the FP path: {w8['prefill_tps'] / fp['prefill_tps']:.2f}x, "
              f"{verdict(w8['prefill_tps'] >= 4 * fp['prefill_tps'])}")
        if "llama.cpp w8a8" in res:
            r = w8["prefill_tps"] / res["llama.cpp w8a8"]["prefill_tps"]
            print(f"  goal W8A8 prefill >= 1.3x llama.cpp Q8_0: {r:.2f}x, {verdict(r >= 1.3)}")
        for p in PRESETS:
            bound = bw / res[p]["weight_bytes"]
            r = bound / res[p]["decode_tps"]
            line = f"  goal {p} decode within 1.3x of the bandwidth bound ({bound:.1f} tok/s): {r:.2f}x, {verdict(r <= 1.3)}"
            if "llama.cpp " + p in res:
                ll = res["llama.cpp " + p]["decode_tps"]
                line += f"; against llama.cpp {res[p]['decode_tps'] / ll:.2f}x, {verdict(res[p]['decode_tps'] > ll)}"
            print(line)
        r = res["w4/8a16"]["decode_tps"] / res["w8a16"]["decode_tps"]
        print(f"  goal W4 decode >= 1.7x W8 (w4/8a16 against w8a16): {r:.2f}x, {verdict(r >= 1.7)}")
        r = res["w4a16"]["decode_tps"] / res["w8a16"]["decode_tps"]
        print(f"  goal W4 decode >= 1.7x W8 (w4a16 against w8a16): {r:.2f}x, {verdict(r >= 1.7)}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
