#!/usr/bin/python3
"""Generates tests/fixtures/probe/: GGUF files and compressed-tensors folders
that contradict themselves, each a small edit of a good export of the
llama engine fixture, with the exit code and error fragment zquant must
give when it reads them (EXPECTED: name|exit|fragment). Made from what the
probe of issue 16 found readers accepting. Needs build/zquant; numpy only.

usage: scripts/gen_probe_fixtures.py [ZQUANT_BINARY]"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import stio  # noqa: E402

OUT = "tests/fixtures/probe"
SRC = "tests/fixtures/engine/llama"

# ---- GGUF, as llama.cpp's gguf.h lays it out -------------------------------------
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.p:self.p + n]
        self.p += n
        return s

    def value(self, t):
        if t == STRING:
            return self.string()
        if t == ARRAY:
            et, n = self.take("<I"), self.take("<Q")
            return (et, [self.value(et) for _ in range(n)])
        return self.take(SCALARS[t])


def put_value(t, v):
    if t == STRING:
        return struct.pack("<Q", len(v)) + v
    if t == ARRAY:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(put_value(et, x) for x in items)
    return struct.pack(SCALARS[t], v)


def gguf_load(path):
    r = Reader(open(path, "rb").read())
    assert r.d[:4] == b"GGUF"
    r.p = 4
    version, nt, nkv = r.take("<I"), r.take("<Q"), r.take("<Q")
    kv = []
    for _ in range(nkv):
        k = r.string()
        t = r.take("<I")
        kv.append([k, t, r.value(t)])
    tensors = []
    for _ in range(nt):
        name = r.string()
        dims = [r.take("<Q") for _ in range(r.take("<I"))]
        tensors.append([name, dims, r.take("<I"), r.take("<Q")])
    align = 32
    start = (r.p + align - 1) // align * align
    return {"version": version, "kv": kv, "tensors": tensors, "data": r.d[start:]}


def gguf_save(path, g):
    out = b"GGUF" + struct.pack("<IQQ", g["version"], len(g["tensors"]), len(g["kv"]))
    for k, t, v in g["kv"]:
        out += put_value(STRING, k) + struct.pack("<I", t) + put_value(t, v)
    for name, dims, t, off in g["tensors"]:
        out += put_value(STRING, name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", t, off)
    out += b"\0" * (-len(out) % 32)
    with open(path, "wb") as f:
        f.write(out + g["data"])


def kv_set(g, key, value):
    for e in g["kv"]:
        if e[0] == key.encode():
            e[2] = value
            return
    raise KeyError(key)


def tensor(g, name):
    return next(t for t in g["tensors"] if t[0] == name.encode())


def gguf_cases(good):
    g0 = gguf_load(good)

    def fresh():
        g = {"version": g0["version"], "data": g0["data"]}
        g["kv"] = [list(e) for e in g0["kv"]]
        g["tensors"] = [[t[0], list(t[1]), t[2], t[3]] for t in g0["tensors"]]
        return g

    cases = {}
    g = fresh()
    kv_set(g, "llama.block_count", 1)  # the file holds blocks 0 and 1
    cases["block-count-short.gguf"] = (g, 3, "is of block 1, but llama.block_count is 1")
    g = fresh()  # a blk.2 tensor past block_count 2, with bytes of its own
    extra = list(tensor(g, "blk.1.attn_norm.weight"))
    extra[0], extra[3] = b"blk.2.attn_norm.weight", len(g["data"])
    nbytes = 4 * extra[1][0] if extra[2] == 0 else 2 * extra[1][0]
    g["data"] = g["data"] + g["data"][tensor(g, "blk.1.attn_norm.weight")[3]:][:nbytes]
    g["data"] += b"\0" * (-len(g["data"]) % 32)
    g["tensors"].append(extra)
    cases["extra-block.gguf"] = (g, 3, "is of block 2, but llama.block_count is 2")
    g = fresh()
    tensor(g, "blk.1.attn_norm.weight")[3] = tensor(g, "blk.0.attn_norm.weight")[3]
    cases["shared-offset.gguf"] = (g, 3, "share bytes of the data")
    g = fresh()
    tensor(g, "blk.1.attn_norm.weight")[0] = b"blk.0.attn_norm.weight"
    cases["named-twice.gguf"] = (g, 3, "is listed twice")
    g = fresh()
    kv_set(g, "llama.rope.freq_base", float("nan"))
    cases["nan-rope-base.gguf"] = (g, 3, "llama.rope.freq_base' is nan, not a finite number")
    g = fresh()
    kv_set(g, "llama.attention.layer_norm_rms_epsilon", float("inf"))
    cases["inf-epsilon.gguf"] = (g, 3, "layer_norm_rms_epsilon' is inf, not a finite number")
    for label, name in (("leading-zero", b"blk.00.attn_q.weight"), ("space", b"blk. 0.attn_q.weight")):
        g = fresh()
        tensor(g, "blk.0.attn_q.weight")[0] = name
        cases[f"block-number-{label}.gguf"] = (g, 3, "is not one zquant knows")
    return cases


# ---- compressed-tensors ------------------------------------------------------------


def ct_cases(w4, w8):
    """w4: a pack-quantized W4A16 folder, w8: an int-quantized W8A8 one."""
    cases = {}

    def variant(name, base, edit_config=None, edit_tensors=None, code=3, fragment=""):
        d = tempfile.mkdtemp()
        cfg = json.load(open(os.path.join(base, "config.json")))
        tens = stio.load_raw(os.path.join(base, "model.safetensors"))
        if edit_config:
            edit_config(cfg["quantization_config"])
        if edit_tensors:
            edit_tensors(tens)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        stio.save(os.path.join(d, "model.safetensors"), tens)
        cases[name] = (d, code, fragment)

    mod = "model.layers.0.mlp.up_proj"

    def shape(cols):  # the stored rows, another number of columns
        def edit(t):
            rows = struct.unpack("<2q", t[mod + ".weight_shape"][2])[0]
            t[mod + ".weight_shape"] = ("I64", [2], struct.pack("<2q", rows, cols))
        return edit

    # sizes whose products with the bit width wrap around to the stored
    # words (4 of them, as 32 INT4 codes take), so that checks on the
    # product alone pass: the probe's crash
    variant("weight-shape-huge", w4, edit_tensors=shape((1 << 61) + 16), fragment=", 2305843009213693968] does not fit")
    variant("weight-shape-negative", w4, edit_tensors=shape(-(1 << 61) + 16), fragment=", -2305843009213693936] does not fit")

    def groups(q):
        return q["config_groups"].values()

    def set_weights(key, value):
        return lambda q: [g["weights"].__setitem__(key, value) for g in groups(q)]

    variant("num-bits-8-packed-4", w4, set_weights("num_bits", 8), fragment="num_bits other than the 4")
    variant("num-bits-2-packed-4", w4, set_weights("num_bits", 2), fragment="num_bits other than the 4")
    variant("float-quantized", w4, lambda q: q.__setitem__("format", "float-quantized"),
            fragment="format 'float-quantized' is not one zquant reads")
    variant("float-weights", w4, set_weights("type", "float"), fragment="weights of type other than int")

    def g_idx(t):
        t[mod + ".weight_g_idx"] = np.zeros(32, dtype=np.float32)

    variant("g-idx", w4, edit_tensors=g_idx, fragment="weight_g_idx (activation reordering)")

    def plain_too(t):
        t[mod + ".weight"] = np.zeros((64, 32), dtype=np.float16)

    variant("weight-and-packed", w4, edit_tensors=plain_too, fragment="is stored twice")
    variant("untargeted", w4, lambda q: [g.__setitem__("targets", [x for x in g["targets"] if x != mod])
                                         for g in groups(q)], fragment="that no config group of quantization_config targets")
    variant("static-activations", w8, lambda q: [g["input_activations"].update({"dynamic": False, "strategy": "tensor"})
                                                  for g in groups(q)],
            fragment="input_activations other than dynamic per-token INT8")
    return cases


def main(zq="build/zquant"):
    tmp = tempfile.mkdtemp()
    try:
        run = lambda *a: subprocess.run([zq, *a], check=True, capture_output=True)  # noqa: E731
        run("quantize", SRC, "-o", f"{tmp}/l.zq", "-q", "-p", "w4/8a16", "--for", "llama.cpp")
        run("export", f"{tmp}/l.zq", "-o", f"{tmp}/l.gguf", "--no-vocab", "-q")
        run("quantize", SRC, "-o", f"{tmp}/w4.zq", "-q", "-p", "w4a16", "--for", "vllm")
        run("export", f"{tmp}/w4.zq", "-o", f"{tmp}/w4", "--format", "compressed-tensors", "--from", SRC, "-q")
        run("quantize", SRC, "-o", f"{tmp}/w8.zq", "-q", "-p", "w8a8", "--for", "vllm")
        run("export", f"{tmp}/w8.zq", "-o", f"{tmp}/w8", "--format", "compressed-tensors", "--from", SRC, "-q")
        if os.path.exists(OUT):
            shutil.rmtree(OUT)
        os.makedirs(OUT)
        lines = ["# file|exit code|fragment of the one-line error (zquant eval FILE)"]
        for name, (g, code, frag) in gguf_cases(f"{tmp}/l.gguf").items():
            gguf_save(os.path.join(OUT, name), g)
            lines.append(f"{name}|{code}|{frag}")
        for name, (d, code, frag) in ct_cases(f"{tmp}/w4", f"{tmp}/w8").items():
            shutil.copytree(d, os.path.join(OUT, name))
            shutil.rmtree(d)
            lines.append(f"{name}|{code}|{frag}")
        with open(os.path.join(OUT, "EXPECTED"), "w") as f:
            f.write("\n".join(lines) + "\n")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main(*sys.argv[1:])
