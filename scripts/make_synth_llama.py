#!/usr/bin/python3
"""Writes a synthetic Llama-shaped FP16 model folder for the benchmarks:
by default 24 layers, hidden 1024, 16 heads, FFN 2816, vocab 32000, 2048
positions (374M parameters, about 0.75 GB of FP16), untied head. Weights
are random normal (std 0.02; norms 1), written one tensor at a time so the
generator itself stays small.

With SHARD_GB the weights are split into model-0000k-of-0000n.safetensors
shards of at most that many GB (10^9 bytes), tensors in order, with the
model.safetensors.index.json Hugging Face's save_pretrained writes (its
default max_shard_size is 5GB); HEADS and KV_HEADS default to HIDDEN / 64.

usage: make_synth_llama.py OUT_DIR [LAYERS] [HIDDEN] [FFN] [VOCAB] [SHARD_GB] [HEADS] [KV_HEADS] [MAX_POS]"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_synth_gpt2 import write_f16_safetensors  # noqa: E402


def shapes(layers, h, ffn, vocab, kv=None):
    kv = h if kv is None else kv
    out = [("model.embed_tokens.weight", (vocab, h))]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (h,)),
                (p + "self_attn.q_proj.weight", (h, h)), (p + "self_attn.k_proj.weight", (kv, h)),
                (p + "self_attn.v_proj.weight", (kv, h)), (p + "self_attn.o_proj.weight", (h, h)),
                (p + "post_attention_layernorm.weight", (h,)),
                (p + "mlp.gate_proj.weight", (ffn, h)), (p + "mlp.up_proj.weight", (ffn, h)),
                (p + "mlp.down_proj.weight", (h, ffn))]
    out += [("model.norm.weight", (h,)), ("lm_head.weight", (vocab, h))]
    return out


def shards(table, limit):
    """table cut in order into lists of at most limit bytes (one tensor
    larger than limit is a shard of its own), as save_pretrained cuts"""
    out, size = [[]], 0
    for name, shape in table:
        n = int(np.prod(shape)) * 2
        if out[-1] and size + n > limit:
            out.append([])
            size = 0
        out[-1].append((name, shape))
        size += n
    return out


def main(out_dir, layers=24, h=1024, ffn=2816, vocab=32000, shard_gb=0, heads=0, kv_heads=0, max_pos=2048):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(1)
    heads = heads or h // 64
    kv_heads = kv_heads or heads

    def values(name, shape):
        if name.endswith("norm.weight"):
            return np.ones(shape, dtype=np.float32)
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)

    table = shapes(layers, h, ffn, vocab, h // heads * kv_heads)
    if shard_gb:
        parts = shards(table, shard_gb * 10**9)
        weight_map, total = {}, 0
        for k, part in enumerate(parts):
            fname = f"model-{k + 1:05d}-of-{len(parts):05d}.safetensors"
            write_f16_safetensors(os.path.join(out_dir, fname), part, values)
            for name, shape in part:
                weight_map[name] = fname
                total += int(np.prod(shape)) * 2
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    else:
        write_f16_safetensors(os.path.join(out_dir, "model.safetensors"), table, values)
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": h,
           "intermediate_size": ffn, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
           "num_hidden_layers": layers, "vocab_size": vocab, "max_position_embeddings": max_pos,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
           "bos_token_id": 1, "eos_token_id": 2}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    write_tokenizer(os.path.join(out_dir, "tokenizer.bin"), vocab)


def write_tokenizer(path, vocab):
    """A llama2.c tokenizer.bin of `vocab` pieces (<unk>, <s>, </s>, the 256
    byte pieces, then made-up ones), so that an export carries a vocabulary
    llama.cpp can load: the benchmarks feed token ids, never text."""
    pieces = [b"<unk>", b"<s>", b"</s>"] + [b"<0x%02X>" % b for b in range(256)]
    pieces += [b"\xe2\x96\x81t%d" % k for k in range(vocab - len(pieces))]
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p in pieces)))
        for k, p in enumerate(pieces):
            f.write(struct.pack("<fi", -float(k), len(p)))
            f.write(p)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
