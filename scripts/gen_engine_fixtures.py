#!/usr/bin/python3
"""PyTorch references for zquant's forward pass (Debian's python3-torch; run
from the repository root). For each architecture: a tiny random config, its
weights under Hugging Face's names and layouts (F32 safetensors), a token
sequence, and the logits the Hugging Face model computes, written to
tests/fixtures/engine/<name>/.

Each forward below is written from the Hugging Face modeling file named in
its docstring (transformers 4.x), not from zquant's C code."""
import json
import math
import os
import shutil
import struct
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

OUT = "tests/fixtures/engine"
T = 12
torch.manual_seed(20221124)
DT = torch.float64  # the reference runs in float64; zquant in float32


def rnd(*shape, scale=0.2):
    """float32-representable values, so the stored F32 weights are exact"""
    return (torch.randn(*shape, dtype=DT) * scale).float().to(DT)


def ones_ish(n):
    return (1 + 0.1 * torch.randn(n, dtype=DT)).float().to(DT)


def causal(t, window=None):
    """masking_utils: key j is seen from query i when j <= i and, with a
    sliding window, j > i - window (sliding_window_overlay)"""
    i, j = torch.arange(t)[:, None], torch.arange(t)[None, :]
    seen = (j <= i) & ((j > i - window) if window else True)
    return torch.zeros(t, t, dtype=DT).masked_fill(~seen, float("-inf"))


def attend(q, k, v, mask, scale):
    """q (H, T, d), k/v (H, T, d) -> (T, H*d)"""
    s = q @ k.transpose(-1, -2) * scale
    if mask is not None:
        s = s + mask
    p = torch.softmax(s, dim=-1)
    o = p @ v
    return o.transpose(0, 1).reshape(q.shape[1], -1)


def heads(x, n):
    t, c = x.shape
    return x.view(t, n, c // n).transpose(0, 1)


def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def llama3_inv_freq(inv, s):
    """transformers/modeling_rope_utils.py, _compute_llama3_parameters: long
    wavelengths divided by factor, short ones kept, those between blended."""
    old, lo, hi, f = s["original_max_position_embeddings"], s["low_freq_factor"], s["high_freq_factor"], s["factor"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old / lo, inv / f, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    blended = (1 - smooth) * scaled / f + smooth * scaled
    medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
    return torch.where(medium, blended, scaled)


def rope_halves(x, dim, base, scaling=None, pos0=0):
    """GPT-NeoX / Llama: rotate the first `dim` dims of each head, halves
    layout, at positions pos0.. ; scaling: a config's rope_scaling (llama3,
    linear: _compute_linear_scaling_rope_parameters divides every
    frequency, or longrope: _compute_longrope_parameters' short or long
    factors, long when the forward's positions pass the pretraining length
    as longrope_frequency_update switches, cos and sin times the attention
    factor)."""
    t = x.shape[-2]
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=DT) / dim))
    amp = 1.0
    kind = scaling and scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        inv = inv / scaling["factor"]
    elif kind == "longrope":
        orig, factor = scaling["original_max_position_embeddings"], scaling["factor"]
        ext = scaling["long_factor"] if pos0 + t > orig else scaling["short_factor"]
        inv = inv / torch.tensor(ext, dtype=DT)
        amp = math.sqrt(1 + math.log(factor) / math.log(orig)) if factor > 1 else 1.0
    elif scaling:
        inv = llama3_inv_freq(inv, scaling)
    f = torch.outer(torch.arange(pos0, pos0 + t, dtype=DT), inv)
    emb = torch.cat((f, f), dim=-1)
    r, rest = x[..., :dim], x[..., dim:]
    r = r * emb.cos() * amp + rotate_half(r) * emb.sin() * amp
    return torch.cat((r, rest), dim=-1)


def rope_interleaved(x, dim, base=10000.0):
    """GPT-J: rotate_every_two over the first `dim` dims, sin/cos duplicate_interleave'd."""
    t = x.shape[-2]
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=DT) / dim))
    f = torch.outer(torch.arange(t, dtype=DT), inv)
    sin, cos = f.sin().repeat_interleave(2, dim=-1), f.cos().repeat_interleave(2, dim=-1)
    r, rest = x[..., :dim], x[..., dim:]
    x1, x2 = r[..., ::2], r[..., 1::2]
    rot = torch.stack((-x2, x1), dim=-1).flatten(-2)
    return torch.cat((r * cos + rot * sin, rest), dim=-1)


def gpt2(ids):
    """transformers/models/gpt2/modeling_gpt2.py: Conv1D weights [in, out], fused c_attn."""
    C, H, L, V, P, I = 32, 4, 2, 50, 16, 96
    w = {"wte.weight": rnd(V, C), "wpe.weight": rnd(P, C), "ln_f.weight": ones_ish(C), "ln_f.bias": rnd(C, scale=0.1)}
    for i in range(L):
        p = f"h.{i}."
        w.update({p + "ln_1.weight": ones_ish(C), p + "ln_1.bias": rnd(C, scale=0.1),
                  p + "attn.c_attn.weight": rnd(C, 3 * C), p + "attn.c_attn.bias": rnd(3 * C, scale=0.1),
                  p + "attn.c_proj.weight": rnd(C, C), p + "attn.c_proj.bias": rnd(C, scale=0.1),
                  p + "ln_2.weight": ones_ish(C), p + "ln_2.bias": rnd(C, scale=0.1),
                  p + "mlp.c_fc.weight": rnd(C, I), p + "mlp.c_fc.bias": rnd(I, scale=0.1),
                  p + "mlp.c_proj.weight": rnd(I, C), p + "mlp.c_proj.bias": rnd(C, scale=0.1)})
    cfg = {"model_type": "gpt2", "n_embd": C, "n_head": H, "n_layer": L, "vocab_size": V, "n_positions": P,
           "n_inner": I, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}
    t = len(ids)
    h = w["wte.weight"][ids] + w["wpe.weight"][:t]
    for i in range(L):
        p = f"h.{i}."
        a = F.layer_norm(h, (C,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], 1e-5)
        qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=-1)
        o = attend(heads(q, H), heads(k, H), heads(v, H), causal(t), 1 / math.sqrt(C // H))
        h = h + o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = F.layer_norm(h, (C,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], 1e-5)
        m = gelu_new(m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        h = h + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    h = F.layer_norm(h, (C,), w["ln_f.weight"], w["ln_f.bias"], 1e-5)
    return w, cfg, h @ w["wte.weight"].T


def opt(ids):
    """transformers/models/opt/modeling_opt.py: positions offset by 2, q scaled
    before q.k, pre-LN (do_layer_norm_before), ReLU, lm_head tied."""
    C, H, L, V, P, I = 32, 4, 2, 50, 16, 64
    pre = "model.decoder."
    w = {pre + "embed_tokens.weight": rnd(V, C), pre + "embed_positions.weight": rnd(P + 2, C),
         pre + "final_layer_norm.weight": ones_ish(C), pre + "final_layer_norm.bias": rnd(C, scale=0.1)}
    for i in range(L):
        p = f"{pre}layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            w[p + f"self_attn.{n}.weight"], w[p + f"self_attn.{n}.bias"] = rnd(C, C), rnd(C, scale=0.1)
        w.update({p + "self_attn_layer_norm.weight": ones_ish(C), p + "self_attn_layer_norm.bias": rnd(C, scale=0.1),
                  p + "final_layer_norm.weight": ones_ish(C), p + "final_layer_norm.bias": rnd(C, scale=0.1),
                  p + "fc1.weight": rnd(I, C), p + "fc1.bias": rnd(I, scale=0.1),
                  p + "fc2.weight": rnd(C, I), p + "fc2.bias": rnd(C, scale=0.1)})
    cfg = {"model_type": "opt", "hidden_size": C, "num_attention_heads": H, "num_hidden_layers": L, "ffn_dim": I,
           "vocab_size": V, "max_position_embeddings": P, "do_layer_norm_before": True, "word_embed_proj_dim": C,
           "activation_function": "relu"}
    t = len(ids)
    lin = lambda x, n: x @ w[n + ".weight"].T + w[n + ".bias"]  # noqa: E731
    h = w[pre + "embed_tokens.weight"][ids] + w[pre + "embed_positions.weight"][2: t + 2]
    d = C // H
    for i in range(L):
        p = f"{pre}layers.{i}."
        a = F.layer_norm(h, (C,), w[p + "self_attn_layer_norm.weight"], w[p + "self_attn_layer_norm.bias"], 1e-5)
        q = lin(a, p + "self_attn.q_proj") * d ** -0.5
        o = attend(heads(q, H), heads(lin(a, p + "self_attn.k_proj"), H), heads(lin(a, p + "self_attn.v_proj"), H),
                   causal(t), 1.0)
        h = h + lin(o, p + "self_attn.out_proj")
        m = F.layer_norm(h, (C,), w[p + "final_layer_norm.weight"], w[p + "final_layer_norm.bias"], 1e-5)
        h = h + lin(F.relu(lin(m, p + "fc1")), p + "fc2")
    h = F.layer_norm(h, (C,), w[pre + "final_layer_norm.weight"], w[pre + "final_layer_norm.bias"], 1e-5)
    return w, cfg, h @ w[pre + "embed_tokens.weight"].T


def gpt_neox(ids):
    """transformers/models/gpt_neox/modeling_gpt_neox.py: query_key_value laid
    out per head [h][q|k|v][d], partial rotary (rotary_pct) in halves,
    parallel residual, exact GELU, untied embed_out."""
    C, H, L, V, P, I = 32, 4, 2, 50, 16, 128
    d, rot = C // H, int((C // H) * 0.5)
    w = {"gpt_neox.embed_in.weight": rnd(V, C), "embed_out.weight": rnd(V, C),
         "gpt_neox.final_layer_norm.weight": ones_ish(C), "gpt_neox.final_layer_norm.bias": rnd(C, scale=0.1)}
    for i in range(L):
        p = f"gpt_neox.layers.{i}."
        w.update({p + "input_layernorm.weight": ones_ish(C), p + "input_layernorm.bias": rnd(C, scale=0.1),
                  p + "post_attention_layernorm.weight": ones_ish(C),
                  p + "post_attention_layernorm.bias": rnd(C, scale=0.1),
                  p + "attention.query_key_value.weight": rnd(3 * C, C),
                  p + "attention.query_key_value.bias": rnd(3 * C, scale=0.1),
                  p + "attention.dense.weight": rnd(C, C), p + "attention.dense.bias": rnd(C, scale=0.1),
                  p + "mlp.dense_h_to_4h.weight": rnd(I, C), p + "mlp.dense_h_to_4h.bias": rnd(I, scale=0.1),
                  p + "mlp.dense_4h_to_h.weight": rnd(C, I), p + "mlp.dense_4h_to_h.bias": rnd(C, scale=0.1)})
    cfg = {"model_type": "gpt_neox", "hidden_size": C, "num_attention_heads": H, "num_hidden_layers": L,
           "intermediate_size": I, "vocab_size": V, "max_position_embeddings": P, "rotary_pct": 0.5,
           "rotary_emb_base": 10000, "layer_norm_eps": 1e-5, "use_parallel_residual": True, "hidden_act": "gelu"}
    t = len(ids)
    lin = lambda x, n: x @ w[n + ".weight"].T + w[n + ".bias"]  # noqa: E731
    ln = lambda x, n: F.layer_norm(x, (C,), w[n + ".weight"], w[n + ".bias"], 1e-5)  # noqa: E731
    h = w["gpt_neox.embed_in.weight"][ids]
    for i in range(L):
        p = f"gpt_neox.layers.{i}."
        qkv = lin(ln(h, p + "input_layernorm"), p + "attention.query_key_value").view(t, H, 3 * d).transpose(0, 1)
        q, k, v = qkv[..., :d], qkv[..., d: 2 * d], qkv[..., 2 * d:]
        q, k = rope_halves(q, rot, 10000.0), rope_halves(k, rot, 10000.0)
        attn = lin(attend(q, k, v, causal(t), 1 / math.sqrt(d)), p + "attention.dense")
        mlp = lin(F.gelu(lin(ln(h, p + "post_attention_layernorm"), p + "mlp.dense_h_to_4h")), p + "mlp.dense_4h_to_h")
        h = mlp + attn + h
    h = ln(h, "gpt_neox.final_layer_norm")
    return w, cfg, h @ w["embed_out.weight"].T


def gptj(ids):
    """transformers/models/gptj/modeling_gptj.py: q/k/v/out without bias,
    interleaved rotary on rotary_dim dims, one ln_1 feeding attention and MLP
    in parallel, gelu_new, lm_head with bias."""
    C, H, L, V, P, I = 32, 4, 2, 50, 16, 128
    d, rot = C // H, 4
    w = {"transformer.wte.weight": rnd(V, C), "lm_head.weight": rnd(V, C), "lm_head.bias": rnd(V, scale=0.1),
         "transformer.ln_f.weight": ones_ish(C), "transformer.ln_f.bias": rnd(C, scale=0.1)}
    for i in range(L):
        p = f"transformer.h.{i}."
        w.update({p + "ln_1.weight": ones_ish(C), p + "ln_1.bias": rnd(C, scale=0.1),
                  p + "attn.q_proj.weight": rnd(C, C), p + "attn.k_proj.weight": rnd(C, C),
                  p + "attn.v_proj.weight": rnd(C, C), p + "attn.out_proj.weight": rnd(C, C),
                  p + "mlp.fc_in.weight": rnd(I, C), p + "mlp.fc_in.bias": rnd(I, scale=0.1),
                  p + "mlp.fc_out.weight": rnd(C, I), p + "mlp.fc_out.bias": rnd(C, scale=0.1)})
    cfg = {"model_type": "gptj", "n_embd": C, "n_head": H, "n_layer": L, "n_inner": I, "vocab_size": V,
           "n_positions": P, "rotary_dim": rot, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}
    t = len(ids)
    h = w["transformer.wte.weight"][ids]
    for i in range(L):
        p = f"transformer.h.{i}."
        a = F.layer_norm(h, (C,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], 1e-5)
        q = rope_interleaved(heads(a @ w[p + "attn.q_proj.weight"].T, H), rot)
        k = rope_interleaved(heads(a @ w[p + "attn.k_proj.weight"].T, H), rot)
        v = heads(a @ w[p + "attn.v_proj.weight"].T, H)
        attn = attend(q, k, v, causal(t), 1 / math.sqrt(d)) @ w[p + "attn.out_proj.weight"].T
        ff = gelu_new(a @ w[p + "mlp.fc_in.weight"].T + w[p + "mlp.fc_in.bias"]) @ w[p + "mlp.fc_out.weight"].T \
            + w[p + "mlp.fc_out.bias"]
        h = attn + ff + h
    h = F.layer_norm(h, (C,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], 1e-5)
    return w, cfg, h @ w["lm_head.weight"].T + w["lm_head.bias"]


def llama_like(ids, model_type, qkv_bias, tied, rope_scaling=None, head_dim=None, window=None):
    """transformers/models/llama/modeling_llama.py (and qwen2's, which adds
    q/k/v biases): RMSNorm, RoPE in halves, grouped-query attention
    (repeat_kv), SwiGLU MLP; rope_scaling as Llama 3.1 and later set it.
    head_dim: qwen3's (modeling_qwen3.py), an explicit head size and q_norm,
    k_norm (RMSNorm over each head, eps rms_norm_eps) before the rotation.
    window: mistral's sliding_window (modeling_mistral.py: every layer)."""
    C, H, KV, L, V, P, I = 32, 4, 2, 2, 50, 16, 48
    d = head_dim or C // H
    w = {"model.embed_tokens.weight": rnd(V, C), "model.norm.weight": ones_ish(C)}
    if not tied:
        w["lm_head.weight"] = rnd(V, C)
    for i in range(L):
        p = f"model.layers.{i}."
        w.update({p + "input_layernorm.weight": ones_ish(C), p + "post_attention_layernorm.weight": ones_ish(C),
                  p + "self_attn.q_proj.weight": rnd(H * d, C), p + "self_attn.k_proj.weight": rnd(KV * d, C),
                  p + "self_attn.v_proj.weight": rnd(KV * d, C), p + "self_attn.o_proj.weight": rnd(C, H * d),
                  p + "mlp.gate_proj.weight": rnd(I, C), p + "mlp.up_proj.weight": rnd(I, C),
                  p + "mlp.down_proj.weight": rnd(C, I)})
        if qkv_bias:
            w.update({p + "self_attn.q_proj.bias": rnd(C, scale=0.1), p + "self_attn.k_proj.bias": rnd(KV * d, scale=0.1),
                      p + "self_attn.v_proj.bias": rnd(KV * d, scale=0.1)})
        if head_dim:
            w.update({p + "self_attn.q_norm.weight": ones_ish(d), p + "self_attn.k_norm.weight": ones_ish(d)})
    cfg = {"model_type": model_type, "hidden_size": C, "num_attention_heads": H, "num_key_value_heads": KV,
           "num_hidden_layers": L, "intermediate_size": I, "vocab_size": V, "max_position_embeddings": P,
           "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": tied}
    if rope_scaling:
        cfg["rope_scaling"] = rope_scaling
    if head_dim:
        cfg.update({"head_dim": d, "attention_bias": False, "use_sliding_window": False})
    if model_type == "mistral":
        cfg["sliding_window"] = window
    t = len(ids)

    def rms(x, n):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w[n]

    def lin(x, n):
        y = x @ w[n + ".weight"].T
        return y + w[n + ".bias"] if n + ".bias" in w else y

    h = w["model.embed_tokens.weight"][ids]
    for i in range(L):
        p = f"model.layers.{i}."
        a = rms(h, p + "input_layernorm.weight")
        q, k = heads(lin(a, p + "self_attn.q_proj"), H), heads(lin(a, p + "self_attn.k_proj"), KV)
        if head_dim:
            q, k = rms(q, p + "self_attn.q_norm.weight"), rms(k, p + "self_attn.k_norm.weight")
        q = rope_halves(q, d, 10000.0, rope_scaling)
        k = rope_halves(k, d, 10000.0, rope_scaling)
        v = heads(lin(a, p + "self_attn.v_proj"), KV)
        k, v = k.repeat_interleave(H // KV, dim=0), v.repeat_interleave(H // KV, dim=0)
        h = h + lin(attend(q, k, v, causal(t, window), 1 / math.sqrt(d)), p + "self_attn.o_proj")
        m = rms(h, p + "post_attention_layernorm.weight")
        h = h + lin(F.silu(lin(m, p + "mlp.gate_proj")) * lin(m, p + "mlp.up_proj"), p + "mlp.down_proj")
    h = rms(h, "model.norm.weight")
    return w, cfg, h @ (w["model.embed_tokens.weight"] if tied else w["lm_head.weight"]).T


GEMMA2 = {"model_type": "gemma2", "hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2,
          "head_dim": 16, "num_hidden_layers": 2, "intermediate_size": 48, "vocab_size": 50,
          "max_position_embeddings": 16, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
          "hidden_activation": "gelu_pytorch_tanh", "hidden_act": "gelu_pytorch_tanh", "query_pre_attn_scalar": 16,
          "sliding_window": 3, "attn_logit_softcapping": 2.0, "final_logit_softcapping": 1.5,
          "tie_word_embeddings": True, "attention_bias": False}


def gemma_norm(x, w, eps=1e-6):
    """Gemma2RMSNorm: x * rsqrt(mean(x^2) + eps) * (1 + w)"""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (1 + w)


def gemma_attention(q, k, v, cfg, window):
    """eager_attention_forward of modeling_gemma2.py: q (H, T, d), k/v (KV,
    T, d); scores * query_pre_attn_scalar^-0.5, soft-capped where the config
    caps them, masked (sliding_window in the layers that have it), softmax,
    @ v -> (T, H*d)"""
    H, KV = q.shape[0], k.shape[0]
    k, v = k.repeat_interleave(H // KV, dim=0), v.repeat_interleave(H // KV, dim=0)
    s = q @ k.transpose(-1, -2) * cfg["query_pre_attn_scalar"] ** -0.5
    cap = cfg["attn_logit_softcapping"]
    if cap:
        s = torch.tanh(s / cap) * cap
    p = torch.softmax(s + causal(q.shape[1], window), dim=-1)
    return (p @ v).transpose(0, 1).reshape(q.shape[1], -1)


def gemma_layer(w, p, h, cfg, layer, lin):
    """Gemma2DecoderLayer (and Gemma3DecoderLayer): norms before and after
    attention and MLP, GeGLU (gelu tanh). Gemma 2's even layers slide;
    Gemma 3's slide but every sliding_window_pattern-th, with their own
    rotary base (rope_local_base_freq, unscaled), and norm q and k per head
    (Gemma3RMSNorm) before the rotation."""
    H, KV, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    gemma3 = cfg["model_type"] == "gemma3_text"
    sliding = (layer + 1) % cfg["sliding_window_pattern"] != 0 if gemma3 else layer % 2 == 0
    base, scaling = cfg["rope_theta"], cfg.get("rope_scaling")
    if gemma3 and sliding:
        base, scaling = cfg["rope_local_base_freq"], None
    a = gemma_norm(h, w[p + "input_layernorm.weight"])
    q, k = heads(lin(a, p + "self_attn.q_proj"), H), heads(lin(a, p + "self_attn.k_proj"), KV)
    if gemma3:
        q, k = gemma_norm(q, w[p + "self_attn.q_norm.weight"]), gemma_norm(k, w[p + "self_attn.k_norm.weight"])
    q, k = rope_halves(q, d, base, scaling), rope_halves(k, d, base, scaling)
    v = heads(lin(a, p + "self_attn.v_proj"), KV)
    o = lin(gemma_attention(q, k, v, cfg, cfg["sliding_window"] if sliding else None), p + "self_attn.o_proj")
    h = h + gemma_norm(o, w[p + "post_attention_layernorm.weight"])
    m = gemma_norm(h, w[p + "pre_feedforward_layernorm.weight"])
    m = lin(gelu_new(lin(m, p + "mlp.gate_proj")) * lin(m, p + "mlp.up_proj"), p + "mlp.down_proj")
    return h + gemma_norm(m, w[p + "post_feedforward_layernorm.weight"])


GEMMA3 = dict(GEMMA2, model_type="gemma3_text", num_hidden_layers=3, sliding_window_pattern=3, rope_theta=1e6,
              rope_local_base_freq=10000.0, rope_scaling={"rope_type": "linear", "factor": 4.0},
              attn_logit_softcapping=None, final_logit_softcapping=None)


def gemma(ids, cfg):
    """transformers/models/gemma2/modeling_gemma2.py and gemma3's (text):
    embeddings times sqrt(hidden), the layers above, the final norm, the
    tied head, final logits soft-capped where the config caps them. Norm
    weights are Gemma's w of (1 + w), not near 1."""
    C, L, V, I = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"], cfg["intermediate_size"]
    H, KV, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    w = {"model.embed_tokens.weight": rnd(V, C), "model.norm.weight": rnd(C, scale=0.1)}
    for i in range(L):
        p = f"model.layers.{i}."
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            w[p + n + ".weight"] = rnd(C, scale=0.1)
        w.update({p + "self_attn.q_proj.weight": rnd(H * d, C), p + "self_attn.k_proj.weight": rnd(KV * d, C),
                  p + "self_attn.v_proj.weight": rnd(KV * d, C), p + "self_attn.o_proj.weight": rnd(C, H * d),
                  p + "mlp.gate_proj.weight": rnd(I, C), p + "mlp.up_proj.weight": rnd(I, C),
                  p + "mlp.down_proj.weight": rnd(C, I)})
        if cfg["model_type"] == "gemma3_text":
            w.update({p + "self_attn.q_norm.weight": rnd(d, scale=0.1), p + "self_attn.k_norm.weight": rnd(d, scale=0.1)})
    lin = lambda x, n: x @ w[n + ".weight"].T  # noqa: E731
    h = w["model.embed_tokens.weight"][ids] * torch.tensor(C ** 0.5, dtype=DT)
    for i in range(L):
        h = gemma_layer(w, f"model.layers.{i}.", h, cfg, i, lin)
    logits = gemma_norm(h, w["model.norm.weight"]) @ w["model.embed_tokens.weight"].T
    cap = cfg["final_logit_softcapping"]
    return w, dict(cfg), torch.tanh(logits / cap) * cap if cap else logits


PHI3 = {"model_type": "phi3", "hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2,
        "num_hidden_layers": 2, "intermediate_size": 48, "vocab_size": 50, "max_position_embeddings": 16,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "partial_rotary_factor": 0.5,
        "sliding_window": None, "tie_word_embeddings": False, "rope_scaling": None}


def phi3_scaling(cfg):
    """rope_scaling with the pretraining length and factor Phi3Config keeps beside it"""
    s = cfg["rope_scaling"]
    if s and "original_max_position_embeddings" in cfg:
        orig = cfg["original_max_position_embeddings"]
        s = dict(s, original_max_position_embeddings=orig, factor=cfg["max_position_embeddings"] / orig)
    return s


def phi3_layer(w, p, h, cfg, lin, cache=None):
    """Phi3DecoderLayer (modeling_phi3.py): qkv_proj's rows are q, then k,
    then v (grouped-query sizes); the first partial_rotary_factor of each
    head rotated in halves; gate_up_proj's output chunked, gate first,
    up * silu(gate). cache: a list the layer's rotated keys and values of
    earlier calls are kept in (decoding one token a call, as generate)"""
    H, KV, C, I = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"], cfg["intermediate_size"]
    d = C // H
    rms = lambda x, n: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg["rms_norm_eps"]) * w[n]  # noqa: E731
    qkv = lin(rms(h, p + "input_layernorm.weight"), p + "self_attn.qkv_proj")
    q, k, v = heads(qkv[:, :H * d], H), heads(qkv[:, H * d:(H + KV) * d], KV), heads(qkv[:, (H + KV) * d:], KV)
    rot, pos0 = int(d * cfg["partial_rotary_factor"]), len(cache[0]) if cache else 0
    q = rope_halves(q, rot, cfg["rope_theta"], phi3_scaling(cfg), pos0)
    k = rope_halves(k, rot, cfg["rope_theta"], phi3_scaling(cfg), pos0)
    if cache is not None:
        cache[0].append(k), cache[1].append(v)
        k, v = torch.cat(cache[0], dim=1), torch.cat(cache[1], dim=1)
    k, v = k.repeat_interleave(H // KV, dim=0), v.repeat_interleave(H // KV, dim=0)
    mask = causal(k.shape[1], cfg["sliding_window"])[pos0:]
    h = h + lin(attend(q, k, v, mask, 1 / math.sqrt(d)), p + "self_attn.o_proj")
    gate, up = lin(rms(h, p + "post_attention_layernorm.weight"), p + "mlp.gate_up_proj").chunk(2, dim=-1)
    return h + lin(up * F.silu(gate), p + "mlp.down_proj")


def phi3(ids, cfg=PHI3, decode=False):
    """transformers/models/phi3/modeling_phi3.py: the layers above, final
    RMSNorm, the head; decode (a dict): also the logits of decoding one
    token at a time as a fourth result, where they differ (longrope)."""
    C, H, KV, L, V, I = 32, 4, 2, 2, 50, 48
    d = C // H
    w = {"model.embed_tokens.weight": rnd(V, C), "model.norm.weight": ones_ish(C), "lm_head.weight": rnd(V, C)}
    for i in range(L):
        p = f"model.layers.{i}."
        w.update({p + "input_layernorm.weight": ones_ish(C), p + "post_attention_layernorm.weight": ones_ish(C),
                  p + "self_attn.qkv_proj.weight": rnd((H + 2 * KV) * d, C), p + "self_attn.o_proj.weight": rnd(C, C),
                  p + "mlp.gate_up_proj.weight": rnd(2 * I, C), p + "mlp.down_proj.weight": rnd(C, I)})
    lin = lambda x, n: x @ w[n + ".weight"].T  # noqa: E731

    def run(ids, caches=None):
        h = w["model.embed_tokens.weight"][ids]
        for i in range(L):
            h = phi3_layer(w, f"model.layers.{i}.", h, cfg, lin, caches[i] if caches else None)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + cfg["rms_norm_eps"]) * w["model.norm.weight"]
        return h @ w["lm_head.weight"].T

    if decode:
        caches = [([], []) for _ in range(L)]
        decoded = torch.cat([run(ids[t:t + 1], caches) for t in range(len(ids))])
        return w, dict(cfg), run(ids), decoded
    return w, dict(cfg), run(ids)


# Phi-3.5's longrope with a pretraining length of 8 of 32 positions: the
# fixture's 12 tokens run on the long factors; decoded one at a time, the
# first 8 on the short ones (their keys cached so), as Hugging Face decodes
PHI3_LONGROPE = dict(PHI3, max_position_embeddings=32, original_max_position_embeddings=8,
                     rope_scaling={"type": "longrope", "short_factor": [1.0, 1.25], "long_factor": [1.5, 4.0]})


def moe(x, router, experts, k, renormalize, lin, fixed_routing=False):
    """MixtralSparseMoeBlock (modeling_mixtral.py) and Qwen3MoeSparseMoeBlock:
    a softmax over the router's logits, each token's top-k experts, their
    weights renormalized (Mixtral; Qwen3-MoE with norm_topk_prob), the
    experts' SwiGLU outputs (lin(x, name) of their gate, up, down names)
    summed with those weights. fixed_routing: the weights as constants,
    as zquant's backward holds them."""
    p = torch.softmax(x @ router.T, dim=-1)
    w, sel = torch.topk(p, k, dim=-1)
    if renormalize:
        w = w / w.sum(-1, keepdim=True)
    if fixed_routing:
        w = w.detach()
    out = torch.zeros_like(x)
    for e, (g, u, d) in enumerate(experts):
        rows, slot = torch.where(sel == e)
        if len(rows):
            y = lin(F.silu(lin(x[rows], g)) * lin(x[rows], u), d)
            out = out.index_add(0, rows, y * w[rows, slot, None])
    return out


MIXTRAL = {"model_type": "mixtral", "hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2,
           "num_hidden_layers": 2, "intermediate_size": 32, "vocab_size": 50, "max_position_embeddings": 16,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "num_local_experts": 4,
           "num_experts_per_tok": 2, "sliding_window": None, "tie_word_embeddings": False}


def decoder_attention_weights(p, C, H, KV, d):
    """block p's norms and q, k, v, o of a Llama-like decoder"""
    return {p + "input_layernorm.weight": ones_ish(C), p + "post_attention_layernorm.weight": ones_ish(C),
            p + "self_attn.q_proj.weight": rnd(H * d, C), p + "self_attn.k_proj.weight": rnd(KV * d, C),
            p + "self_attn.v_proj.weight": rnd(KV * d, C), p + "self_attn.o_proj.weight": rnd(C, H * d)}


def decoder_attention(w, p, h, cfg, lin, d, qk_norms):
    """Llama's attention sublayer (RMSNorm, rope in halves, grouped-query),
    with Qwen3's per-head q/k norms; the residual sum and its normed copy
    for the MLP"""
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    rms = lambda x, n: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg["rms_norm_eps"]) * w[n]  # noqa: E731
    a = rms(h, p + "input_layernorm.weight")
    q, k = heads(lin(a, p + "self_attn.q_proj"), H), heads(lin(a, p + "self_attn.k_proj"), KV)
    if qk_norms:
        q, k = rms(q, p + "self_attn.q_norm.weight"), rms(k, p + "self_attn.k_norm.weight")
    q, k = rope_halves(q, d, cfg["rope_theta"]), rope_halves(k, d, cfg["rope_theta"])
    v = heads(lin(a, p + "self_attn.v_proj"), KV)
    k, v = k.repeat_interleave(H // KV, dim=0), v.repeat_interleave(H // KV, dim=0)
    h = h + lin(attend(q, k, v, causal(h.shape[0]), 1 / math.sqrt(d)), p + "self_attn.o_proj")
    return h, rms(h, p + "post_attention_layernorm.weight")


def decoder_logits(w, ids, cfg, layer):
    """embeddings, layer(p, i, h, lin) for each block, final norm and head"""
    h = w["model.embed_tokens.weight"][ids]
    lin = lambda x, n: x @ w[n + ".weight"].T  # noqa: E731
    for i in range(cfg["num_hidden_layers"]):
        h = layer(f"model.layers.{i}.", i, h, lin)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + cfg["rms_norm_eps"]) * w["model.norm.weight"]
    return h @ w["lm_head.weight"].T


def mixtral(ids):
    """transformers/models/mixtral/modeling_mixtral.py: llama's attention,
    the mixture above for the MLP (experts w1 gate, w3 up, w2 down), final
    norm and head."""
    cfg = MIXTRAL
    C, H, KV, L, V, I, E = 32, 4, 2, 2, 50, 32, 4
    w = {"model.embed_tokens.weight": rnd(V, C), "model.norm.weight": ones_ish(C), "lm_head.weight": rnd(V, C)}
    for i in range(L):
        p = f"model.layers.{i}."
        w.update(decoder_attention_weights(p, C, H, KV, C // H))
        w[p + "block_sparse_moe.gate.weight"] = rnd(E, C, scale=1.0)
        for e in range(E):
            q = f"{p}block_sparse_moe.experts.{e}."
            w.update({q + "w1.weight": rnd(I, C), q + "w3.weight": rnd(I, C), q + "w2.weight": rnd(C, I)})
    return w, dict(cfg), decoder_logits(w, ids, cfg, lambda p, i, h, lin: mixtral_layer(w, p, h, cfg, lin))


def mixtral_layer(w, p, h, cfg, lin, fixed_routing=False):
    """lin(x, name): a Linear by its name without ".weight" """
    h, m = decoder_attention(w, p, h, cfg, lin, cfg["hidden_size"] // cfg["num_attention_heads"], False)
    x = f"{p}block_sparse_moe.experts."
    experts = [(f"{x}{e}.w1", f"{x}{e}.w3", f"{x}{e}.w2") for e in range(cfg["num_local_experts"])]
    return h + moe(m, w[p + "block_sparse_moe.gate.weight"], experts, cfg["num_experts_per_tok"], True, lin,
                   fixed_routing)


QWEN3_MOE = {"model_type": "qwen3_moe", "hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2,
             "head_dim": 12, "num_hidden_layers": 2, "intermediate_size": 48, "moe_intermediate_size": 16,
             "vocab_size": 50, "max_position_embeddings": 16, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
             "hidden_act": "silu", "num_experts": 4, "num_experts_per_tok": 2, "norm_topk_prob": True,
             "decoder_sparse_step": 1, "mlp_only_layers": [], "use_sliding_window": False,
             "tie_word_embeddings": False}
# block 1 dense by mlp_only_layers, three experts of four a token, not renormalized
QWEN3_MOE_DENSE = dict(QWEN3_MOE, num_hidden_layers=3, mlp_only_layers=[1], num_experts_per_tok=3,
                       norm_topk_prob=False)


def qwen3_moe_sparse(cfg, layer):
    """Qwen3MoeDecoderLayer: the mixture unless mlp_only_layers lists the
    block or decoder_sparse_step skips it"""
    return layer not in cfg["mlp_only_layers"] and (layer + 1) % cfg["decoder_sparse_step"] == 0


def qwen3_moe(ids, cfg):
    """transformers/models/qwen3_moe/modeling_qwen3_moe.py: Qwen3's
    attention (explicit head_dim, q/k RMSNorm per head before the
    rotation), Qwen3MoeSparseMoeBlock (router mlp.gate, experts of
    gate/up/down_proj moe_intermediate_size wide, norm_topk_prob) or
    Qwen3MoeMLP in the dense blocks."""
    C, H, KV, V = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"]
    d, I, MI, E = cfg["head_dim"], cfg["intermediate_size"], cfg["moe_intermediate_size"], cfg["num_experts"]
    w = {"model.embed_tokens.weight": rnd(V, C), "model.norm.weight": ones_ish(C), "lm_head.weight": rnd(V, C)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w.update(decoder_attention_weights(p, C, H, KV, d))
        w.update({p + "self_attn.q_norm.weight": ones_ish(d), p + "self_attn.k_norm.weight": ones_ish(d)})
        if not qwen3_moe_sparse(cfg, i):
            w.update({p + "mlp.gate_proj.weight": rnd(I, C), p + "mlp.up_proj.weight": rnd(I, C),
                      p + "mlp.down_proj.weight": rnd(C, I)})
            continue
        w[p + "mlp.gate.weight"] = rnd(E, C, scale=1.0)
        for e in range(E):
            q = f"{p}mlp.experts.{e}."
            w.update({q + "gate_proj.weight": rnd(MI, C), q + "up_proj.weight": rnd(MI, C),
                      q + "down_proj.weight": rnd(C, MI)})
    return w, dict(cfg), decoder_logits(w, ids, cfg, lambda p, i, h, lin: qwen3_moe_layer(w, p, i, h, cfg, lin))


def qwen3_moe_layer(w, p, layer, h, cfg, lin, fixed_routing=False):
    """lin(x, name): a Linear by its name without ".weight" """
    h, m = decoder_attention(w, p, h, cfg, lin, cfg["head_dim"], True)
    if not qwen3_moe_sparse(cfg, layer):
        return h + lin(F.silu(lin(m, p + "mlp.gate_proj")) * lin(m, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = f"{p}mlp.experts."
    experts = [(f"{x}{e}.gate_proj", f"{x}{e}.up_proj", f"{x}{e}.down_proj") for e in range(cfg["num_experts"])]
    return h + moe(m, w[p + "mlp.gate.weight"], experts, cfg["num_experts_per_tok"], cfg["norm_topk_prob"], lin,
                   fixed_routing)


def bert(ids):
    """transformers/models/bert/modeling_bert.py: post-LN encoder, no mask,
    exact GELU, MLM head (transform dense, GELU, LayerNorm, decoder tied to
    the word embeddings plus cls.predictions.bias)."""
    C, H, L, V, P, I = 32, 4, 2, 50, 16, 64
    eps = 1e-12
    pre = "bert."
    w = {pre + "embeddings.word_embeddings.weight": rnd(V, C), pre + "embeddings.position_embeddings.weight": rnd(P, C),
         pre + "embeddings.token_type_embeddings.weight": rnd(2, C),
         pre + "embeddings.LayerNorm.weight": ones_ish(C), pre + "embeddings.LayerNorm.bias": rnd(C, scale=0.1),
         "cls.predictions.transform.dense.weight": rnd(C, C), "cls.predictions.transform.dense.bias": rnd(C, scale=0.1),
         "cls.predictions.transform.LayerNorm.weight": ones_ish(C),
         "cls.predictions.transform.LayerNorm.bias": rnd(C, scale=0.1), "cls.predictions.bias": rnd(V, scale=0.1)}
    for i in range(L):
        p = f"{pre}encoder.layer.{i}."
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            w[p + n + ".weight"], w[p + n + ".bias"] = rnd(C, C), rnd(C, scale=0.1)
        w.update({p + "attention.output.LayerNorm.weight": ones_ish(C),
                  p + "attention.output.LayerNorm.bias": rnd(C, scale=0.1),
                  p + "intermediate.dense.weight": rnd(I, C), p + "intermediate.dense.bias": rnd(I, scale=0.1),
                  p + "output.dense.weight": rnd(C, I), p + "output.dense.bias": rnd(C, scale=0.1),
                  p + "output.LayerNorm.weight": ones_ish(C), p + "output.LayerNorm.bias": rnd(C, scale=0.1)})
    cfg = {"model_type": "bert", "hidden_size": C, "num_attention_heads": H, "num_hidden_layers": L,
           "intermediate_size": I, "vocab_size": V, "max_position_embeddings": P, "type_vocab_size": 2,
           "layer_norm_eps": eps, "hidden_act": "gelu"}
    t = len(ids)
    lin = lambda x, n: x @ w[n + ".weight"].T + w[n + ".bias"]  # noqa: E731
    ln = lambda x, n: F.layer_norm(x, (C,), w[n + ".weight"], w[n + ".bias"], eps)  # noqa: E731
    e = pre + "embeddings."
    h = ln(w[e + "word_embeddings.weight"][ids] + w[e + "position_embeddings.weight"][:t]
           + w[e + "token_type_embeddings.weight"][0], e + "LayerNorm")
    for i in range(L):
        p = f"{pre}encoder.layer.{i}."
        q, k, v = (heads(lin(h, p + "attention.self." + n), H) for n in ("query", "key", "value"))
        a = lin(attend(q, k, v, None, 1 / math.sqrt(C // H)), p + "attention.output.dense")
        h = ln(a + h, p + "attention.output.LayerNorm")
        m = lin(F.gelu(lin(h, p + "intermediate.dense")), p + "output.dense")
        h = ln(m + h, p + "output.LayerNorm")
    x = ln(F.gelu(lin(h, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm")
    return w, cfg, x @ w[e + "word_embeddings.weight"].T + w["cls.predictions.bias"]


MODELS = {
    "gpt2": gpt2, "opt": opt, "gpt_neox": gpt_neox, "gptj": gptj, "bert": bert,
    "llama": lambda ids: llama_like(ids, "llama", False, False),
    "qwen2": lambda ids: llama_like(ids, "qwen2", True, True),
    # Llama 3.2's shape: tied embeddings, llama3 rope scaling whose head of 8
    # has one frequency kept (wavelength 6.3 < 256/16), one blended (62.8)
    # and two divided by the factor (628, 6283 > 256)
    "llama3": lambda ids: llama_like(ids, "llama", False, True, {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 16.0, "original_max_position_embeddings": 256}),
    # Qwen3: heads of 12 where hidden / heads is 8, per-head q and k norms
    "qwen3": lambda ids: llama_like(ids, "qwen3", False, False, head_dim=12),
    # Mistral v0.1's sliding window, 3 of the 12 positions (5 of the
    # backward's): most queries see part of the causal context
    "mistral": lambda ids: llama_like(ids, "mistral", False, False, window=3),
    # Gemma 2: head_dim 16 of hidden 32, soft caps low enough to bend the
    # scores and logits, block 0 sliding over 3 positions, block 1 full
    "gemma2": lambda ids: gemma(ids, GEMMA2),
    # Gemma 3: q/k norms, layers 0 and 1 sliding over 3 positions with
    # their own rotary base, layer 2 full with rope_theta 1e6 scaled
    # linearly by 4, no caps
    "gemma3_text": lambda ids: gemma(ids, GEMMA3),
    # Phi-3: fused q/k/v of grouped-query sizes, fused gate/up, half of
    # each head rotated
    "phi3": phi3,
    # Mixtral: top-2 of 4 experts, a router wide enough that tokens spread
    "mixtral": mixtral,
    # Qwen3-MoE: heads of 12 where hidden / heads is 8, top-2 of 4 experts
    # renormalized (as Qwen3-30B-A3B and llama.cpp's qwen3moe); and the
    # class's other mixtures: a dense block among sparse ones, top-3 as
    # the router gives them
    "qwen3_moe": lambda ids: qwen3_moe(ids, QWEN3_MOE),
    "qwen3_moe_dense": lambda ids: qwen3_moe(ids, QWEN3_MOE_DENSE),
    "phi3_longrope": lambda ids: phi3(ids, PHI3_LONGROPE, decode=True),
}


def main():
    """With names, only those fixtures are written: every model is still
    computed, in order, so each one's random draws stay what they were."""
    only = set(sys.argv[1:])
    if not only and os.path.exists(OUT):
        shutil.rmtree(OUT)
    for name, fn in MODELS.items():
        ids = torch.randint(0, 50, (T,))
        with torch.no_grad():
            w, cfg, logits, *decoded = fn(ids)  # decoded: the logits of decoding, where not the forward's
        if only and name not in only:
            continue
        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        stio.save(os.path.join(d, "model.safetensors"), {k: v.to(torch.float32).numpy() for k, v in w.items()})
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        with open(os.path.join(d, "tokens.bin"), "wb") as f:
            f.write(struct.pack(f"<{T}I", *ids.tolist()))
        stio.save(os.path.join(d, "logits.safetensors"), {"logits": logits.to(torch.float32).numpy()})
        if decoded:
            stio.save(os.path.join(d, "decode-logits.safetensors"), {"logits": decoded[0].to(torch.float32).numpy()})
        if name in ("gpt2", "llama"):  # the same model as HDF5 (float16, as h5py writes it), config inside
            with h5py.File(os.path.join(OUT, name + ".h5"), "w") as f:
                for k, v in w.items():
                    f.create_dataset("/" + k.replace(".", "/"), data=v.to(torch.float16).numpy())
                f.attrs["config"] = json.dumps(cfg)


if __name__ == "__main__":
    main()
