"""A numpy reference of zquant's weight quantization, written from the rule
in ../shared/ZEROQUANT.md and zquant-format(5), not from the C code. All
arithmetic is float32 with fp16-rounded scales, as the format specifies."""
import numpy as np

F32 = np.float32


def rne(x):
    return np.rint(x).astype(F32)  # numpy rounds half to even


def quantize_matrix(w, bits, symmetric, group_rows, group_cols):
    """w: [out, in] float32. Returns the dequantized matrix (float32)."""
    w = np.asarray(w, dtype=F32)
    rows, cols = w.shape
    out = np.empty_like(w)
    for r0 in range(0, rows, group_rows):
        for c0 in range(0, cols, group_cols):
            g = w[r0 : r0 + group_rows, c0 : c0 + group_cols]
            lo, hi = g.min(), g.max()
            if symmetric:
                amax = max(abs(lo), abs(hi))
                s = F32(np.float16(F32(amax) / F32(2 ** (bits - 1))))
                m = F32(0)
                qlo, qhi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
            else:
                s = F32(np.float16((F32(hi) - F32(lo)) / F32(2**bits)))
                m = F32(np.float16(lo))
                qlo, qhi = 0, 2**bits - 1
            inv = F32(1) / s if s != 0 else F32(0)
            q = np.clip(rne((g - m) * inv), qlo, qhi).astype(F32)
            out[r0 : r0 + group_rows, c0 : c0 + group_cols] = q * s + m
    return out


def grid(gran, rows, cols, group_size=128, blocks=1):
    """(group_rows, group_cols) for a granularity name."""
    if gran == "group":
        return 1, min(group_size, cols)
    if gran == "row":
        return 1, cols
    if gran == "tensor":
        return rows, cols
    if gran == "blocks":
        return -(-rows // blocks), cols
    raise ValueError(gran)
