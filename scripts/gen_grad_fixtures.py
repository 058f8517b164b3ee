#!/usr/bin/python3
"""PyTorch autograd references for zquant's block backward pass (Debian's
python3-torch; run from the repository root after gen_engine_fixtures.py).
For block 0 of each engine fixture: an input x (2 sequences of 5 tokens)
and a weight R for the loss sum(block(x) * R); torch's gradients of that
loss with respect to x and to the block's weights, in float64, written to
tests/fixtures/engine/<name>/grads[-quant].safetensors in the checkpoint's
names and layouts. "-quant": the Linear weights fake-quantized (attention
INT8 per row, MLP INT4 in groups of 16, symmetric, Microsoft's rule) and the
Linear inputs quantized per token (asymmetric INT8), both in float32 exactly
as zquant does it, gradients passed straight through.

Each block follows the Hugging Face modeling file named in
gen_engine_fixtures.py."""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402
from gen_engine_fixtures import attend, causal, gelu_new, gemma_layer, mixtral_layer, phi3_layer, qwen3_moe_layer, rope_halves, rope_interleaved  # noqa: E402,E501

DIR = "tests/fixtures/engine"
B, T = 2, 5
DT = torch.float64


class STE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, q):
        return q

    @staticmethod
    def backward(ctx, g):
        return g, None


def fq_weight(m, bits, group):
    """[out, in]: scale = fp16(max|w| / 2^(b-1)), q = clamp(rne(w * (1/scale))), float32"""
    o, i = m.shape
    g = m.detach().float().reshape(o, i // group, group)
    scale = (g.abs().amax(-1, keepdim=True) / 2 ** (bits - 1)).half().float()
    inv = torch.where(scale > 0, 1 / scale, torch.zeros_like(scale))
    q = torch.clamp(torch.round(g * inv), -2 ** (bits - 1), 2 ** (bits - 1) - 1) * scale
    return STE.apply(m, q.reshape(o, i).to(m.dtype))


def fq_tokens(x):
    """per row: scale (max-min)/255, zero point rne(-min/scale), float32"""
    d = x.detach().float()
    lo, hi = d.amin(-1, keepdim=True), d.amax(-1, keepdim=True)
    scale = (hi - lo) / 255
    ok = scale > 0
    inv = torch.where(ok, 1 / torch.where(ok, scale, torch.ones_like(scale)), torch.zeros_like(scale))
    zp = torch.round(-lo * inv)
    q = (torch.clamp(torch.round(d * inv) + zp, 0, 255) - zp) * scale
    return STE.apply(x, torch.where(ok, q, d).to(x.dtype))


class Block:
    """Weights of block 0 by their names; lin() applies (fake-quantized) Linears."""

    def __init__(self, w, prefix, quant, mlp_names):
        self.w, self.p, self.quant, self.mlp = w, prefix, quant, mlp_names

    def __call__(self, name):
        return self.w[self.p + name]

    def lin(self, x, name, bias=True, conv1d=False):
        W = self.w[self.p + name + ".weight"]
        M = W.T if conv1d else W  # [out, in]
        if self.quant:
            mlp = any(name.startswith(m) for m in self.mlp)
            M = fq_weight(M, 4 if mlp else 8, 16 if mlp else M.shape[1])
            x = fq_tokens(x)
        y = x @ M.T
        b = self.w.get(self.p + name + ".bias")
        return y + b if bias and b is not None else y


def ln(b, x, name, eps):
    return F.layer_norm(x, (x.shape[-1],), b(name + ".weight"), b(name + ".bias"), eps)




def mha(b, q, k, v, cfg, nkv, rot=None, norms=None):
    """q (T, H*d), k/v (T, nkv*d) of one sequence; norms: of each q and k
    head, before rot (Qwen3)"""
    H = cfg["num_attention_heads"] if "num_attention_heads" in cfg else cfg["n_head"]
    d = q.shape[-1] // H
    q, k, v = (t.view(T, -1, d).transpose(0, 1) for t in (q, k, v))
    if norms:
        q, k = norms[0](q), norms[1](k)
    if rot:
        q, k = rot(q), rot(k)
    k, v = k.repeat_interleave(H // nkv, 0), v.repeat_interleave(H // nkv, 0)
    window = cfg.get("sliding_window") if cfg["model_type"] == "mistral" else None
    mask = None if cfg["model_type"] == "bert" else causal(T, window)
    return attend(q, k, v, mask, 1 / math.sqrt(d))


def per_seq(x, f):
    return torch.cat([f(x[s * T:(s + 1) * T]) for s in range(B)])


def block(name, w, cfg, x, quant):
    if name == "gpt2":
        b = Block(w, "h.0.", quant, ("mlp",))
        a = ln(b, x, "ln_1", 1e-5)
        qkv = b.lin(a, "attn.c_attn", conv1d=True)
        C = x.shape[1]
        o = per_seq(qkv, lambda s: mha(b, s[:, :C], s[:, C:2 * C], s[:, 2 * C:], cfg, cfg["n_head"]))
        x = x + b.lin(o, "attn.c_proj", conv1d=True)
        return x + b.lin(gelu_new(b.lin(ln(b, x, "ln_2", 1e-5), "mlp.c_fc", conv1d=True)), "mlp.c_proj", conv1d=True)
    if name == "opt":
        b = Block(w, "model.decoder.layers.0.", quant, ("fc",))
        a = ln(b, x, "self_attn_layer_norm", 1e-5)
        q, k, v = (b.lin(a, f"self_attn.{n}_proj") for n in "qkv")
        x = x + b.lin(per_seq(torch.cat((q, k, v), 1), lambda s: mha(b, *s.split(q.shape[1], 1), cfg, 4)), "self_attn.out_proj")
        return x + b.lin(F.relu(b.lin(ln(b, x, "final_layer_norm", 1e-5), "fc1")), "fc2")
    if name == "gpt_neox":
        b = Block(w, "gpt_neox.layers.0.", quant, ("mlp",))
        H, C = cfg["num_attention_heads"], x.shape[1]
        d = C // H
        rot = int(d * cfg["rotary_pct"])
        qkv = b.lin(ln(b, x, "input_layernorm", 1e-5), "attention.query_key_value")

        def att(s):
            s = s.view(T, H, 3 * d)
            q, k, v = (s[..., i * d:(i + 1) * d].reshape(T, C) for i in range(3))
            return mha(b, q, k, v, cfg, H, lambda t: rope_halves(t, rot, 10000.0))

        attn = b.lin(per_seq(qkv, att), "attention.dense")
        mlp = b.lin(F.gelu(b.lin(ln(b, x, "post_attention_layernorm", 1e-5), "mlp.dense_h_to_4h")), "mlp.dense_4h_to_h")
        return mlp + attn + x
    if name == "gptj":
        b = Block(w, "transformer.h.0.", quant, ("mlp",))
        a = ln(b, x, "ln_1", 1e-5)
        q, k, v = (b.lin(a, f"attn.{n}_proj") for n in "qkv")
        rot = lambda t: rope_interleaved(t, cfg["rotary_dim"])  # noqa: E731
        o = per_seq(torch.cat((q, k, v), 1), lambda s: mha(b, *s.split(q.shape[1], 1), cfg, cfg["n_head"], rot))
        return b.lin(o, "attn.out_proj") + b.lin(gelu_new(b.lin(a, "mlp.fc_in")), "mlp.fc_out") + x
    if name in ("llama", "qwen2", "llama3", "qwen3", "mistral"):
        b = Block(w, "model.layers.0.", quant, ("mlp",))
        rms = lambda t, n: t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6) * b(n)  # noqa: E731
        a = rms(x, "input_layernorm.weight")
        q, k, v = (b.lin(a, f"self_attn.{n}_proj") for n in "qkv")
        H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        d = cfg.get("head_dim", x.shape[1] // H)
        rot = lambda t: rope_halves(t, d, 10000.0, cfg.get("rope_scaling"))  # noqa: E731
        norms = (lambda t: rms(t, "self_attn.q_norm.weight"), lambda t: rms(t, "self_attn.k_norm.weight")) if name == "qwen3" else None
        o = per_seq(torch.cat((q, k, v), 1), lambda s: mha(b, s[:, :H * d], s[:, H * d:(H + KV) * d], s[:, (H + KV) * d:], cfg, KV, rot, norms))
        x = x + b.lin(o, "self_attn.o_proj")
        m = rms(x, "post_attention_layernorm.weight")
        return x + b.lin(F.silu(b.lin(m, "mlp.gate_proj")) * b.lin(m, "mlp.up_proj"), "mlp.down_proj")
    if name == "mixtral":  # the routing held fixed, as zquant's backward (and LKD) hold it
        b = Block(w, "model.layers.0.", quant, ("block_sparse_moe.experts",))
        return per_seq(x, lambda s: mixtral_layer(w, "model.layers.0.", s, cfg, lambda t, n: b.lin(t, n[len(b.p):]), True))
    if name in ("qwen3_moe", "qwen3_moe_dense"):  # block 0 is sparse in both
        b = Block(w, "model.layers.0.", quant, ("mlp.experts",))
        return per_seq(x, lambda s: qwen3_moe_layer(w, "model.layers.0.", 0, s, cfg, lambda t, n: b.lin(t, n[len(b.p):]), True))
    if name in ("phi3", "phi3_longrope"):  # 5 positions: longrope's short factors
        b = Block(w, "model.layers.0.", quant, ("mlp",))
        return per_seq(x, lambda s: phi3_layer(w, "model.layers.0.", s, cfg, lambda t, n: b.lin(t, n[len(b.p):])))
    if name in ("gemma2", "gemma3_text"):
        b = Block(w, "model.layers.0.", quant, ("mlp",))
        return per_seq(x, lambda s: gemma_layer(w, "model.layers.0.", s, cfg, 0, lambda t, n: b.lin(t, n[len(b.p):])))
    if name == "bert":
        b = Block(w, "bert.encoder.layer.0.", quant, ("intermediate", "output.dense"))
        q, k, v = (b.lin(x, f"attention.self.{n}") for n in ("query", "key", "value"))
        o = per_seq(torch.cat((q, k, v), 1), lambda s: mha(b, *s.split(q.shape[1], 1), cfg, 4))
        x = ln(b, b.lin(o, "attention.output.dense") + x, "attention.output.LayerNorm", 1e-12)
        m = b.lin(F.gelu(b.lin(x, "intermediate.dense")), "output.dense")
        return ln(b, m + x, "output.LayerNorm", 1e-12)
    raise ValueError(name)


# fixtures added after the first seven draw from their own generator, so the
# others' draws (and files) stay as they were
LATER = ("llama3", "qwen3", "mistral", "gemma2", "gemma3_text", "phi3", "mixtral", "qwen3_moe", "qwen3_moe_dense", "phi3_longrope")


def main():
    gen = torch.Generator().manual_seed(99)
    for name in sorted(n for n in os.listdir(DIR) if os.path.isdir(os.path.join(DIR, n))):
        d = os.path.join(DIR, name)
        if name in LATER:
            continue
        fixture(gen, name, d)
    for k, name in enumerate(LATER):
        fixture(torch.Generator().manual_seed(1000 + k), name, os.path.join(DIR, name))


def fixture(gen, name, d):
    """x, R, and the gradients of sum(block(x) * R) for block 0 of the model in d."""
    cfg = json.load(open(os.path.join(d, "config.json")))
    raw = stio.load(os.path.join(d, "model.safetensors"))
    C = cfg.get("hidden_size", cfg.get("n_embd"))
    x0 = torch.randn(B * T, C, generator=gen, dtype=torch.float32).to(DT)
    R = torch.randn(B * T, C, generator=gen, dtype=torch.float32).to(DT)
    for quant in (False, True):
        w = {k: torch.tensor(np.array(v, dtype=np.float64), requires_grad=True) for k, v in raw.items()}
        x = x0.clone().requires_grad_()
        (block(name, w, cfg, x, quant) * R).sum().backward()
        out = {"x": x0.float().numpy(), "R": R.float().numpy(), "grad.x": x.grad.float().numpy()}
        for k, v in w.items():
            if v.grad is not None:
                out["grad." + k] = v.grad.float().numpy()
        stio.save(os.path.join(d, "grads-quant.safetensors" if quant else "grads.safetensors"), out)


if __name__ == "__main__":
    main()
