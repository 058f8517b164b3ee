#!/usr/bin/python3
"""The eval benchmark: tokens per second of `zquant eval` on a GPT-2-small-
shaped model (12 layers, hidden 768, vocab 50257; random weights), batch 4,
context 512, against PyTorch doing the same forward pass (logits and mean
NLL) on the same threads, in the same run. Target: at least as fast.

usage: bench_eval.py ZQUANT_BINARY [THREADS]"""
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import stio  # noqa: E402

MODEL = os.path.join("build", "bench", "gpt2-small")
B, T, WINDOWS = 4, 512, 8


def torch_nll(w, ids, threads):
    """GPT-2 forward in float32 (as Hugging Face's GPT2LMHeadModel computes it)."""
    torch.set_num_threads(threads)
    g = {k: torch.from_numpy(v.astype(np.float32)) for k, v in w.items()}
    C, H = g["wte.weight"].shape[1], g["wte.weight"].shape[1] // 64
    L = sum(1 for k in g if k.endswith("attn.c_attn.weight"))
    mask = torch.triu(torch.full((T, T), float("-inf")), 1)
    total, count = 0.0, 0
    with torch.no_grad():
        for b0 in range(0, len(ids), B):
            x = torch.tensor(ids[b0: b0 + B])
            h = g["wte.weight"][x] + g["wpe.weight"][:T]
            for i in range(L):
                p = f"h.{i}."
                a = F.layer_norm(h, (C,), g[p + "ln_1.weight"], g[p + "ln_1.bias"], 1e-5)
                q, k, v = (a @ g[p + "attn.c_attn.weight"] + g[p + "attn.c_attn.bias"]).split(C, dim=-1)
                q, k, v = (t.view(-1, T, H, C // H).transpose(1, 2) for t in (q, k, v))
                s = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // H) + mask, dim=-1)
                o = (s @ v).transpose(1, 2).reshape(-1, T, C)
                h = h + o @ g[p + "attn.c_proj.weight"] + g[p + "attn.c_proj.bias"]
                m = F.layer_norm(h, (C,), g[p + "ln_2.weight"], g[p + "ln_2.bias"], 1e-5)
                m = F.gelu(m @ g[p + "mlp.c_fc.weight"] + g[p + "mlp.c_fc.bias"], approximate="tanh")
                h = h + m @ g[p + "mlp.c_proj.weight"] + g[p + "mlp.c_proj.bias"]
            h = F.layer_norm(h, (C,), g["ln_f.weight"], g["ln_f.bias"], 1e-5)
            logits = h[:, :-1] @ g["wte.weight"].T
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum").item()
            count += x[:, 1:].numel()
    return total / count


def main(zq, threads=2):
    weights = os.path.join(MODEL, "model.safetensors")
    if not os.path.exists(weights):
        subprocess.check_call([sys.executable, os.path.join(HERE, "make_synth_gpt2.py"), MODEL, "12", "768"])
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 50257, size=(WINDOWS, T)).tolist()
    tok = os.path.join("build", "bench", "eval-tokens.bin")
    with open(tok, "wb") as f:
        for row in ids:
            f.write(struct.pack(f"<{T}I", *row))
    w = stio.load(weights)
    t0 = time.perf_counter()
    ref = torch_nll(w, ids, threads)
    pt = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = subprocess.run([zq, "eval", MODEL, "--tokens", tok, "--ctx", str(T), "--batch", str(B), "-t", str(threads),
                          "--json"], check=True, capture_output=True, text=True).stdout
    zt = time.perf_counter() - t0
    nll = float(out.split('"nll":')[1].split(",")[0])
    n = WINDOWS * T
    print(f"GPT-2-small shape, batch {B}, ctx {T}, {WINDOWS} windows, {threads} threads")
    print(f"{'PyTorch ' + torch.__version__:<24} {pt:7.2f} s {n / pt:9.0f} tokens/s  nll {ref:.5f}")
    print(f"{'zquant eval':<24} {zt:7.2f} s {n / zt:9.0f} tokens/s  nll {nll:.5f}  {pt / zt:.2f}x PyTorch's speed")
    print("same nll:", "yes" if abs(nll - ref) < 1e-3 else "NO", "| target (>= PyTorch):", "met" if zt <= pt else "NOT met")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
