#!/usr/bin/python3
"""The goals of lkd's defaults (issue 19), on the bundled stories260K,
W4/8-A8, groups of 32, KL(P_fp16 || P_quantized) per token on the first 40
stories of the bundled TinyStories excerpt (calibration text, where given,
is the other 960 stories):

- `zquant lkd MODEL -o OUT -p w4/8a8 --group-size 32` (every default):
  KL <= 0.5x round to nearest's;
- the same with `--text` of the other stories: <= 0.45x;
- its wall time at most 2x that of the previous defaults (random ids, FP
  inputs, no learned clipping), medians of REPS runs each, in turn.

usage: lkd_defaults.py ZQUANT [OUT_DIR] [REPS]"""
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from int4_table import MODEL, split_text, kl_of  # noqa: E402

COMMON = ["-p", "w4/8a8", "--group-size", "32", "-q", "-f"]
OLD_DEFAULTS = ["--random-tokens", "--input", "fp", "--no-learn-clip", "--lr", "1e-4", "--lr-schedule", "constant"]


def timed(cmd):
    t0 = time.monotonic()
    subprocess.check_call(cmd)
    return time.monotonic() - t0


def main():
    zq = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join("build", "lkd-defaults")
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    os.makedirs(out, exist_ok=True)
    held, calib = split_text(out)
    path = {k: os.path.join(out, k + ".zq") for k in ("rtn", "default", "text", "old", "gptq")}
    subprocess.check_call([zq, "quantize", MODEL, "-o", path["rtn"]] + COMMON)
    subprocess.check_call([zq, "quantize", MODEL, "-o", path["gptq"], "--method", "gptq", "--text", calib] + COMMON)
    new_t, old_t = [], []
    for _ in range(reps):  # in turn, so both see the same machine load
        new_t.append(timed([zq, "lkd", MODEL, "-o", path["default"]] + COMMON))
        old_t.append(timed([zq, "lkd", MODEL, "-o", path["old"]] + COMMON + OLD_DEFAULTS))
    subprocess.check_call([zq, "lkd", MODEL, "-o", path["text"], "--text", calib] + COMMON)
    kl = {k: kl_of(zq, p, held) for k, p in path.items()}
    r = {k: kl[k] / kl["rtn"] for k in kl}
    t_ratio = statistics.median(new_t) / statistics.median(old_t)
    rows = [
        ("lkd, every default (generated data, quantized inputs, learned clipping)", kl["default"], r["default"],
         "<= 0.5x", r["default"] <= 0.5),
        ("lkd --text OTHER_STORIES (the defaults otherwise)", kl["text"], r["text"], "<= 0.45x", r["text"] <= 0.45),
        ("lkd with the previous defaults (--random-tokens --input fp --no-learn-clip --lr 1e-4 --lr-schedule constant)", kl["old"], r["old"], "", None),
        ("quantize --method gptq --text OTHER_STORIES", kl["gptq"], r["gptq"], "", None),
    ]
    print("| setting | KL | vs round to nearest | goal | |")
    print("|---|---|---|---|---|")
    print(f"| round to nearest | {kl['rtn']:.4f} | 1.00x | | |")
    for name, k, ratio, goal, met in rows:
        verdict = "" if met is None else ("met" if met else "**not met**")
        print(f"| {name} | {k:.4f} | {ratio:.2f}x | {goal} | {verdict} |")
    spread = f"runs {min(new_t):.1f}-{max(new_t):.1f} s against {min(old_t):.1f}-{max(old_t):.1f} s"
    print(f"| wall time, defaults / previous defaults (median of {reps}) | {statistics.median(new_t):.1f} s | "
          f"{t_ratio:.2f}x ({spread}) | <= 2x | {'met' if t_ratio <= 2 else '**not met**'} |")
    json.dump({"kl": kl, "ratio": r, "time_ratio": t_ratio}, open(os.path.join(out, "result.json"), "w"))


if __name__ == "__main__":
    main()
