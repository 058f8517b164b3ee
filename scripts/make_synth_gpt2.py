#!/usr/bin/python3
"""Writes a synthetic GPT-2-medium-shaped FP16 model folder for the
benchmarks: 24 layers, hidden 1024, vocab 50257, 1024 positions (354.8M
parameters, about 0.71 GB of FP16). Weights are random normal (std 0.02),
written one tensor at a time so the generator itself stays small.

usage: make_synth_gpt2.py OUT_DIR [LAYERS] [HIDDEN]"""
import json
import os
import struct
import sys

import numpy as np


def shapes(layers, h, vocab=50257, ctx=1024):
    out = [("wte.weight", (vocab, h)), ("wpe.weight", (ctx, h))]
    for i in range(layers):
        p = f"h.{i}."
        out += [(p + "ln_1.weight", (h,)), (p + "ln_1.bias", (h,)),
                (p + "attn.c_attn.weight", (h, 3 * h)), (p + "attn.c_attn.bias", (3 * h,)),
                (p + "attn.c_proj.weight", (h, h)), (p + "attn.c_proj.bias", (h,)),
                (p + "ln_2.weight", (h,)), (p + "ln_2.bias", (h,)),
                (p + "mlp.c_fc.weight", (h, 4 * h)), (p + "mlp.c_fc.bias", (4 * h,)),
                (p + "mlp.c_proj.weight", (4 * h, h)), (p + "mlp.c_proj.bias", (h,))]
    out += [("ln_f.weight", (h,)), ("ln_f.bias", (h,))]
    return out


def write_f16_safetensors(path, table, values):
    """A safetensors file of F16 tensors, table [(name, shape)] in order,
    values(name, shape) giving each as float32, one tensor at a time."""
    header, at = {}, 0
    for name, shape in table:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [at, at + n]}
        at += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape in table:
            f.write(values(name, shape).astype("<f2").tobytes())


def main(out_dir, layers=24, h=1024):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(1)
    write_f16_safetensors(os.path.join(out_dir, "model.safetensors"), shapes(layers, h),
                          lambda name, shape: rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02))
    cfg = {"model_type": "gpt2", "n_embd": h, "n_head": h // 64, "n_layer": layers, "vocab_size": 50257,
           "n_positions": 1024, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
