#!/usr/bin/python3
"""An independent GPTQ, written from the paper (Frantar et al., "GPTQ:
Accurate Post-Training Quantization for Generative Pre-trained
Transformers", 2023, Algorithm 1), in float64, sharing nothing with the C:
H += damp * mean(diag H) * I; U = the upper Cholesky factor of H^-1; for
each block of columns, for each column j: when a group starts, its scale
from the current weights (zquant's rule: max|w| / 2^(b-1) rounded to FP16);
q = round-to-nearest-even of w / scale, clamped; err = (w - q*scale) /
U[j, j]; the block's later columns -= err * U[j, later]; after the block,
all later columns -= errors . U[block, later].

With act order (static groups): every group's scale first, from the
weights as given; columns then taken in decreasing order of H's diagonal
(ties by index), each quantized with its own group's scale.

It writes a fixture for tests/unit/test_gptq.c: a random layer (48 x 96)
and the Hessian of correlated random inputs, and the codes and scales this
reference chooses (INT4, symmetric, groups of 32, damp 0.01, blocks of 32),
in column order and with act order.

usage: gptq_reference.py OUT_DIR"""
import os
import struct
import sys

import numpy as np

ROWS, COLS, N, BITS, GROUP, DAMP, BLOCK = 48, 96, 512, 4, 32, 0.01, 32


def scale_of(g):
    amax = np.float32(np.max(np.abs(g.astype(np.float32))))
    return np.float32(np.float16(amax / np.float32(2 ** (BITS - 1))))


def gptq(W, H, act_order=False):
    W, H = W.astype(np.float64).copy(), H.astype(np.float64).copy()
    rows, cols = W.shape
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    scales = np.zeros((rows, cols // GROUP), dtype=np.float16)
    perm = np.arange(cols)
    if act_order:  # static groups: every scale from the weights before any update; then the order
        for r in range(rows):
            for g in range(cols // GROUP):
                scales[r, g] = np.float16(scale_of(W[r, g * GROUP:(g + 1) * GROUP]))
        perm = np.argsort(-np.diag(H).astype(np.float32), kind="stable")
        W, H = W[:, perm], H[np.ix_(perm, perm)]
    H += DAMP * np.mean(np.diag(H)) * np.eye(cols)
    U = np.linalg.cholesky(np.linalg.inv(H)).T  # H^-1 = U^T U
    codes = np.zeros((rows, cols), dtype=np.int8)
    qlo, qhi = -(2 ** (BITS - 1)), 2 ** (BITS - 1) - 1
    for i1 in range(0, cols, BLOCK):
        i2 = min(i1 + BLOCK, cols)
        err = np.zeros((rows, i2 - i1))
        for j in range(i1, i2):
            col = perm[j]
            if not act_order and j % GROUP == 0:
                for r in range(rows):
                    scales[r, j // GROUP] = np.float16(scale_of(W[r, j:j + GROUP]))
            s = scales[:, col // GROUP].astype(np.float32)
            w32 = W[:, j].astype(np.float32)
            inv = np.where(s != 0, np.float32(1) / np.where(s != 0, s, 1), np.float32(0)).astype(np.float32)
            q = np.clip(np.rint(w32 * inv), qlo, qhi)
            codes[:, col] = q.astype(np.int8)
            e = (W[:, j] - q * s.astype(np.float64)) / U[j, j]
            W[:, j + 1:i2] -= np.outer(e, U[j, j + 1:i2])
            err[:, j - i1] = e
        W[:, i2:] -= err @ U[i1:i2, i2:]
    return codes, scales


def main(out):
    rng = np.random.default_rng(11)
    W = (rng.standard_normal((ROWS, COLS)) * 0.05).astype(np.float32)
    mix = rng.standard_normal((COLS, COLS)) * 0.3 + np.eye(COLS)  # correlated inputs, as real activations are
    X = (rng.standard_normal((N, COLS)) @ mix).astype(np.float32)
    X[:, 5] = 0  # an input that never varies
    H = (2 * X.T.astype(np.float64) @ X.astype(np.float64) / N).astype(np.float32)
    codes, scales = gptq(W, H)
    ao_codes, ao_scales = gptq(W, H, act_order=True)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "gptq.bin"), "wb") as f:  # rows, cols, W, H, codes, scales, then with act order
        f.write(struct.pack("<II", ROWS, COLS))
        f.write(W.astype("<f4").tobytes() + H.astype("<f4").tobytes())
        f.write(codes.tobytes() + scales.astype("<f2").tobytes())
        f.write(ao_codes.tobytes() + ao_scales.astype("<f2").tobytes())
    rtn = np.zeros_like(codes)
    for r in range(ROWS):
        for c0 in range(0, COLS, GROUP):
            s = scale_of(W[r, c0:c0 + GROUP])
            rtn[r, c0:c0 + GROUP] = np.clip(np.rint(W[r, c0:c0 + GROUP] / s), -8, 7)
    print(f"{out}/gptq.bin: {ROWS}x{COLS}, codes differing from round to nearest: {int((rtn != codes).sum())}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
