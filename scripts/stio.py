"""Minimal safetensors writing/reading with numpy only (Debian has no
safetensors package). Follows the format: 8-byte little-endian header length,
JSON header {name: {dtype, shape, data_offsets}}, then the data area."""
import json
import struct

import numpy as np

DTYPES = {np.dtype("float16"): "F16", np.dtype("float32"): "F32", np.dtype("float64"): "F64"}
NP = {"F16": np.float16, "F32": np.float32, "F64": np.float64}


def save(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (float16/float32/float64), or
    name -> (dtype_string, shape, raw_bytes) for dtypes numpy lacks (BF16)."""
    header, blobs, at = {}, [], 0
    for name, t in tensors.items():
        if isinstance(t, tuple):
            dtype, shape, raw = t
        else:
            a = np.ascontiguousarray(t)
            dtype, shape, raw = DTYPES[a.dtype], list(a.shape), a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        out[name] = np.frombuffer(data[base + b : base + en], dtype=NP[e["dtype"]]).reshape(e["shape"])
    return out


def load_raw(path):
    """Every tensor as (dtype string, shape, raw bytes), whatever its dtype
    (packed I32 codes, I64 shapes): what save() takes back unchanged."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    return {name: (e["dtype"], e["shape"], data[base + e["data_offsets"][0] : base + e["data_offsets"][1]])
            for name, e in header.items() if name != "__metadata__"}
