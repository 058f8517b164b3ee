#!/usr/bin/python3
"""The LKD benchmark: seconds per distillation step for one GPT-2-medium-
shaped block (hidden 1024, 16 heads, seq 512, batch 4, w4/8a8: INT8 g128
attention weights, INT4 g128 MLP weights, token-wise INT8 activations, all
fake-quantized with straight-through gradients; MSE to the FP block's
output; Adam), zquant against the same step in PyTorch, same machine and
threads, same run. Target: faster than PyTorch.

usage: bench_lkd.py ZQUANT_BINARY [THREADS] [STEPS]"""
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import stio  # noqa: E402
from gen_grad_fixtures import fq_tokens, fq_weight as fq  # noqa: E402  (zquant's quantizers, straight-through)

MODEL = os.path.join("build", "bench", "gpt2-medium-1block")
B, T, C, H = 4, 512, 1024, 16


def fq_weight(w, bits, group=128):
    return fq(w, bits, group)


def block(p, x, quant):
    mask = torch.triu(torch.full((T, T), float("-inf")), 1)
    lin = lambda h, w, b, bits: (fq_tokens(h) @ fq_weight(w, bits).T if quant else h @ w.T) + b  # noqa: E731
    a = F.layer_norm(x, (C,), p["ln1w"], p["ln1b"], 1e-5)
    q, k, v = lin(a, p["attn_w"], p["attn_b"], 8).split(C, dim=-1)
    q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
    s = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // H) + mask, dim=-1)
    x = x + lin((s @ v).transpose(1, 2).reshape(B, T, C), p["proj_w"], p["proj_b"], 8)
    m = F.layer_norm(x, (C,), p["ln2w"], p["ln2b"], 1e-5)
    m = F.gelu(lin(m, p["fc_w"], p["fc_b"], 4), approximate="tanh")
    return x + lin(m, p["mproj_w"], p["mproj_b"], 4)


def torch_step_seconds(threads, steps):
    torch.set_num_threads(threads)
    w = stio.load(os.path.join(MODEL, "model.safetensors"))
    t = lambda k: torch.from_numpy(w[k].astype(np.float32))  # noqa: E731
    p = {"ln1w": t("h.0.ln_1.weight"), "ln1b": t("h.0.ln_1.bias"), "ln2w": t("h.0.ln_2.weight"),
         "ln2b": t("h.0.ln_2.bias"), "attn_w": t("h.0.attn.c_attn.weight").T.contiguous(),
         "attn_b": t("h.0.attn.c_attn.bias"), "proj_w": t("h.0.attn.c_proj.weight").T.contiguous(),
         "proj_b": t("h.0.attn.c_proj.bias"), "fc_w": t("h.0.mlp.c_fc.weight").T.contiguous(),
         "fc_b": t("h.0.mlp.c_fc.bias"), "mproj_w": t("h.0.mlp.c_proj.weight").T.contiguous(),
         "mproj_b": t("h.0.mlp.c_proj.bias")}
    trainable = [p[k].requires_grad_() for k in ("attn_w", "proj_w", "fc_w", "mproj_w")]
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)
    x = torch.randn(B, T, C) * 0.5
    with torch.no_grad():
        target = block(p, x, False)  # the teacher, once
    def step():
        opt.zero_grad()
        F.mse_loss(block(p, x, True), target).backward()
        opt.step()
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def main(zq, threads=2, steps=3):
    if not os.path.exists(os.path.join(MODEL, "model.safetensors")):
        subprocess.check_call([sys.executable, os.path.join(HERE, "make_synth_gpt2.py"), MODEL, "1", str(C)])
    pt = torch_step_seconds(threads, steps)
    out = subprocess.run([zq, "lkd", MODEL, "-o", os.path.join("build", "bench", "lkd.zq"), "--force", "-p", "w4/8a8",
                          "--steps", str(steps), "--batch", str(B), "--seq-len", str(T), "--data-batches", "1",
                          "-t", str(threads), "--json",
                          # the step PyTorch's mirrors: FP inputs, no learned clipping, data that needs no generating
                          "--input", "fp", "--no-learn-clip", "--random-tokens"],
                         check=True, capture_output=True, text=True).stdout
    layer = json.loads(out)["layers"][0]
    zt = layer["seconds"] / layer["steps"]
    print(f"one GPT-2-medium block, batch {B}, seq {T}, w4/8a8, {threads} threads, {steps} steps")
    print(f"{'PyTorch ' + torch.__version__:<24} {pt:7.2f} s/step")
    print(f"{'zquant lkd':<24} {zt:7.2f} s/step  {pt / zt:.2f}x PyTorch's speed")
    print("target (faster than PyTorch):", "met" if zt < pt else "NOT met")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
