#!/usr/bin/python3
"""Converts a llama2.c checkpoint (version 0, as stories260K.bin) and its
tokenizer into a Hugging Face-style Llama folder: config.json, FP16
model.safetensors, the tokenizer file as it is.

llama2.c rotates interleaved pairs (x[2i], x[2i+1]) of each head; Hugging
Face's Llama rotates halves (x[i], x[i+d/2]). As Hugging Face's own
converter does, the rows of wq and wk are permuted within each head so the
halves layout computes the same attention.

usage: convert_llama2c.py MODEL.bin TOKENIZER.bin OUT_DIR"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402


def permute_rows(w, n_heads):
    """Interleaved-pair rows of each head -> half-split rows."""
    rows, cols = w.shape
    hd = rows // n_heads
    return w.reshape(n_heads, hd // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def main(model_path, tok_path, out_dir):
    raw = open(model_path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    head = dim // n_heads
    kv_dim = dim * n_kv // n_heads
    f = np.frombuffer(raw[28:], dtype="<f4")
    at = 0

    def take(*shape):
        nonlocal at
        n = int(np.prod(shape))
        a = f[at : at + n].reshape(shape)
        at += n
        return a

    emb = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq = take(n_layers, dim, dim)
    wk = take(n_layers, kv_dim, dim)
    wv = take(n_layers, kv_dim, dim)
    wo = take(n_layers, dim, dim)
    rms_ffn = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    rms_final = take(dim)
    at += seq_len * head  # legacy freq_cis_real and freq_cis_imag, recomputed at run time
    wcls = emb if shared else take(vocab, dim)
    if at != f.size:
        sys.exit(f"{model_path}: {f.size - at} floats left over; not a version-0 llama2.c checkpoint")

    t = {"model.embed_tokens.weight": emb}
    for i in range(n_layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = rms_att[i]
        t[p + "self_attn.q_proj.weight"] = permute_rows(wq[i], n_heads)
        t[p + "self_attn.k_proj.weight"] = permute_rows(wk[i], n_kv)
        t[p + "self_attn.v_proj.weight"] = wv[i]
        t[p + "self_attn.o_proj.weight"] = wo[i]
        t[p + "post_attention_layernorm.weight"] = rms_ffn[i]
        t[p + "mlp.gate_proj.weight"] = w1[i]
        t[p + "mlp.down_proj.weight"] = w2[i]
        t[p + "mlp.up_proj.weight"] = w3[i]
    t["model.norm.weight"] = rms_final
    if not shared:
        t["lm_head.weight"] = wcls
    t = {k: np.asarray(v, dtype=np.float16) for k, v in t.items()}

    os.makedirs(out_dir, exist_ok=True)
    stio.save(os.path.join(out_dir, "model.safetensors"), t, {"format": "pt"})
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": dim,
        "intermediate_size": hidden,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv,
        "vocab_size": vocab,
        "max_position_embeddings": seq_len,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": shared,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float16",
    }
    with open(os.path.join(out_dir, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)
        fh.write("\n")
    with open(tok_path, "rb") as src, open(os.path.join(out_dir, "tokenizer.bin"), "wb") as dst:
        dst.write(src.read())


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
