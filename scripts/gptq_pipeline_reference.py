#!/usr/bin/python3
"""An independent check of `zquant quantize --method gptq`'s Hessian path on
the bundled stories260K: block 0's q, k and v projections see the RMS-normed
token embeddings, quantized per token as the runtime quantizes activations
(asymmetric uint8: scale (max - min) / 255, zero point round(-min / scale)),
so their Hessian H = 2 X^T X / n needs no other block. This computes it in
float64 from the checkpoint and calibration ids alone, runs the GPTQ of
scripts/gptq_reference.py (INT4, symmetric, groups of 32, damp 0.01), and
writes the dequantized q/k/v weights it chooses, for tests/int4.sh to
compare with zquant's (`-p w4a16 --act int8-token --group-size 32 --method
gptq --calib CALIB --calib-samples N --seq-len T`).

usage: gptq_pipeline_reference.py MODEL_DIR CALIB.bin N T OUT.safetensors"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gptq_reference  # noqa: E402
import stio  # noqa: E402

EPS = 1e-5  # the bundled config's rms_norm_eps


def token_quant(x):
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    scale = (hi - lo) / 255
    scale[scale == 0] = 1
    zp = np.rint(-lo / scale)
    return (np.clip(np.rint(x / scale) + zp, 0, 255) - zp) * scale


def main(model, calib, n, t, out):
    w = stio.load(os.path.join(model, "model.safetensors"))
    ids = np.fromfile(calib, dtype="<u4")[: n * t].astype(np.int64)
    x = w["model.embed_tokens.weight"].astype(np.float64)[ids]
    x = x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + EPS) * w["model.layers.0.input_layernorm.weight"]
    x = token_quant(x)
    H = (2 * x.T @ x / len(x)).astype(np.float32)
    gptq_reference.BLOCK = 128
    result = {}
    for part in ("q", "k", "v"):
        name = f"model.layers.0.self_attn.{part}_proj.weight"
        codes, scales = gptq_reference.gptq(w[name].astype(np.float32), H)
        s = np.repeat(scales.astype(np.float32), gptq_reference.GROUP, axis=1)
        result[name] = (codes.astype(np.float32) * s).astype(np.float32)
    stio.save(out, result)
    print(f"{out}: block 0's q/k/v from {len(x)} calibration tokens")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
