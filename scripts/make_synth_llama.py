#!/usr/bin/python3
"""Writes a synthetic Llama-shaped FP16 model folder for the benchmarks:
by default 24 layers, hidden 1024, 16 heads, FFN 2816, vocab 32000, 2048
positions (374M parameters, about 0.75 GB of FP16), untied head. Weights
are random normal (std 0.02; norms 1), written one tensor at a time so the
generator itself stays small.

usage: make_synth_llama.py OUT_DIR [LAYERS] [HIDDEN] [FFN] [VOCAB]"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_synth_gpt2 import write_f16_safetensors  # noqa: E402


def shapes(layers, h, ffn, vocab):
    out = [("model.embed_tokens.weight", (vocab, h))]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (h,)),
                (p + "self_attn.q_proj.weight", (h, h)), (p + "self_attn.k_proj.weight", (h, h)),
                (p + "self_attn.v_proj.weight", (h, h)), (p + "self_attn.o_proj.weight", (h, h)),
                (p + "post_attention_layernorm.weight", (h,)),
                (p + "mlp.gate_proj.weight", (ffn, h)), (p + "mlp.up_proj.weight", (ffn, h)),
                (p + "mlp.down_proj.weight", (h, ffn))]
    out += [("model.norm.weight", (h,)), ("lm_head.weight", (vocab, h))]
    return out


def main(out_dir, layers=24, h=1024, ffn=2816, vocab=32000):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(1)

    def values(name, shape):
        if name.endswith("norm.weight"):
            return np.ones(shape, dtype=np.float32)
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)

    write_f16_safetensors(os.path.join(out_dir, "model.safetensors"), shapes(layers, h, ffn, vocab), values)
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": h,
           "intermediate_size": ffn, "num_attention_heads": h // 64, "num_key_value_heads": h // 64,
           "num_hidden_layers": layers, "vocab_size": vocab, "max_position_embeddings": 2048,
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
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
