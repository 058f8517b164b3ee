#!/usr/bin/python3
"""Generates the committed test fixtures under tests/fixtures/ (numpy and
h5py only; run from the repository root):

  models/<type>/        tiny random checkpoints of every supported model type,
                        with tensor names and layouts as Hugging Face saves them
  models/<type>.h5      the same weights as HDF5 (float16, config attribute)
  models/llama-sharded/ the llama weights split over two shards with an index
  models/llama-bf16.safetensors, models/llama-f32.safetensors
  expected/<case>.safetensors
                        the dequantized weights zquant must produce, computed
                        by scripts/refquant.py, with the options in CASES
  bad/                  malformed inputs (see bad/EXPECTED)

Deterministic: the same numpy produces the same files."""
import json
import os
import shutil
import struct
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refquant  # noqa: E402
import stio  # noqa: E402

OUT = "tests/fixtures"
H, HEADS, LAYERS, VOCAB, INTER, CTX = 16, 2, 2, 32, 40, 16
rng = np.random.default_rng(20221124)


def mat(rows, cols):
    """Rows with ranges 10x apart, as real attention matrices have."""
    scale = np.exp(rng.uniform(np.log(0.02), np.log(0.2), size=(rows, 1)))
    return (rng.standard_normal((rows, cols)) * scale).astype(np.float16)


def vec(n, base=0.0):
    return (base + 0.1 * rng.standard_normal(n)).astype(np.float16)


# Which tensors of each architecture are attention / MLP Linear weights, as
# the Hugging Face modules name them. "conv1d": stored [in, out].
def gpt2():
    t, roles = {"wte.weight": mat(VOCAB, H), "wpe.weight": mat(CTX, H)}, {}
    for i in range(LAYERS):
        p = f"h.{i}."
        t[p + "ln_1.weight"], t[p + "ln_1.bias"] = vec(H, 1), vec(H)
        t[p + "attn.c_attn.weight"], t[p + "attn.c_attn.bias"] = mat(H, 3 * H), vec(3 * H)
        t[p + "attn.c_proj.weight"], t[p + "attn.c_proj.bias"] = mat(H, H), vec(H)
        t[p + "ln_2.weight"], t[p + "ln_2.bias"] = vec(H, 1), vec(H)
        t[p + "mlp.c_fc.weight"], t[p + "mlp.c_fc.bias"] = mat(H, INTER), vec(INTER)
        t[p + "mlp.c_proj.weight"], t[p + "mlp.c_proj.bias"] = mat(INTER, H), vec(H)
        roles.update({p + "attn.c_attn.weight": "attention", p + "attn.c_proj.weight": "attention",
                      p + "mlp.c_fc.weight": "mlp", p + "mlp.c_proj.weight": "mlp"})
    t["ln_f.weight"], t["ln_f.bias"] = vec(H, 1), vec(H)
    cfg = {"model_type": "gpt2", "n_embd": H, "n_head": HEADS, "n_layer": LAYERS, "vocab_size": VOCAB,
           "n_positions": CTX, "n_inner": INTER, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}
    return t, roles, cfg, True


def linear_model(model_type, prefix, attn, mlp, extra, cfg):
    t, roles = dict(extra), {}
    for i in range(LAYERS):
        p = prefix.format(i)
        for name, shape in attn:
            t[p + name + ".weight"] = mat(*shape)
            roles[p + name + ".weight"] = "attention"
        for name, shape in mlp:
            t[p + name + ".weight"] = mat(*shape)
            roles[p + name + ".weight"] = "mlp"
        t[p + "norm_a.weight"] = vec(H, 1)
    cfg = dict(cfg, model_type=model_type, vocab_size=VOCAB)
    return t, roles, cfg, False


def opt():
    return linear_model("opt", "model.decoder.layers.{}.",
                        [("self_attn.q_proj", (H, H)), ("self_attn.k_proj", (H, H)), ("self_attn.v_proj", (H, H)),
                         ("self_attn.out_proj", (H, H))],
                        [("fc1", (INTER, H)), ("fc2", (H, INTER))],
                        {"model.decoder.embed_tokens.weight": mat(VOCAB, H),
                         "model.decoder.embed_positions.weight": mat(CTX + 2, H)},
                        {"hidden_size": H, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS, "ffn_dim": INTER,
                         "max_position_embeddings": CTX})


def gpt_neox():
    return linear_model("gpt_neox", "gpt_neox.layers.{}.",
                        [("attention.query_key_value", (3 * H, H)), ("attention.dense", (H, H))],
                        [("mlp.dense_h_to_4h", (INTER, H)), ("mlp.dense_4h_to_h", (H, INTER))],
                        {"gpt_neox.embed_in.weight": mat(VOCAB, H), "embed_out.weight": mat(VOCAB, H)},
                        {"hidden_size": H, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS,
                         "intermediate_size": INTER, "rotary_pct": 0.25})


def gptj():
    return linear_model("gptj", "transformer.h.{}.",
                        [("attn.q_proj", (H, H)), ("attn.k_proj", (H, H)), ("attn.v_proj", (H, H)),
                         ("attn.out_proj", (H, H))],
                        [("mlp.fc_in", (INTER, H)), ("mlp.fc_out", (H, INTER))],
                        {"transformer.wte.weight": mat(VOCAB, H), "lm_head.weight": mat(VOCAB, H)},
                        {"n_embd": H, "n_head": HEADS, "n_layer": LAYERS, "rotary_dim": 4, "n_inner": INTER})


def bert():
    return linear_model("bert", "bert.encoder.layer.{}.",
                        [("attention.self.query", (H, H)), ("attention.self.key", (H, H)),
                         ("attention.self.value", (H, H)), ("attention.output.dense", (H, H))],
                        [("intermediate.dense", (INTER, H)), ("output.dense", (H, INTER))],
                        {"bert.embeddings.word_embeddings.weight": mat(VOCAB, H),
                         "bert.embeddings.position_embeddings.weight": mat(CTX, H)},
                        {"hidden_size": H, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS,
                         "intermediate_size": INTER, "max_position_embeddings": CTX})


def llama():
    kv = H // 2
    return linear_model("llama", "model.layers.{}.",
                        [("self_attn.q_proj", (H, H)), ("self_attn.k_proj", (kv, H)), ("self_attn.v_proj", (kv, H)),
                         ("self_attn.o_proj", (H, H))],
                        [("mlp.gate_proj", (INTER, H)), ("mlp.up_proj", (INTER, H)), ("mlp.down_proj", (H, INTER))],
                        {"model.embed_tokens.weight": mat(VOCAB, H), "model.norm.weight": vec(H, 1),
                         "lm_head.weight": mat(VOCAB, H)},
                        {"hidden_size": H, "num_attention_heads": HEADS, "num_key_value_heads": 1,
                         "num_hidden_layers": LAYERS, "intermediate_size": INTER})


MODELS = {"gpt2": gpt2, "opt": opt, "gpt_neox": gpt_neox, "gptj": gptj, "bert": bert, "llama": llama}

# (case name, model, zquant options, {role: (bits)} , granularity, sym, extra quantized {name: bits})
PRESETS = {"w8a8": (8, 8), "w8a16": (8, 8), "w4/8a16": (8, 4), "w4/8a8": (8, 4), "w4a16": (4, 4)}
CASES = [
    ("llama-w48-g12", "llama", ["-p", "w4/8a16", "--group-size", "12"], "w4/8a16", ("group", 12), True, {}),
    ("llama-w8-row-asym", "llama", ["-p", "w8a8", "--per-row", "--asym"], "w8a8", ("row",), False, {}),
    ("gpt2-w48-g12", "gpt2", ["-p", "w4/8a8", "--group-size", "12"], "w4/8a8", ("group", 12), True, {}),
    ("gpt2-w8-blocks4", "gpt2", ["-p", "w8a16", "--groups", "4"], "w8a16", ("blocks", 4), True, {}),
    ("gpt_neox-w48-g8", "gpt_neox", ["-p", "w4/8a8", "--group-size", "8"], "w4/8a8", ("group", 8), True, {}),
    ("gptj-w8-g16-asym", "gptj", ["-p", "w8a8", "--group-size", "16", "--asym"], "w8a8", ("group", 16), False, {}),
    ("opt-w4-tensor-asym", "opt", ["-p", "w4a16", "--per-tensor", "--asym"], "w4a16", ("tensor",), False, {}),
    ("bert-w8-rule", "bert", ["-p", "w8a8", "--group-size", "8", "--rule",
                              "*.word_embeddings.weight=int4:g8:asym"], "w8a8", ("group", 8), True,
     {"bert.embeddings.word_embeddings.weight": (4, ("group", 8), False)}),
]


def expected(weights, roles, transposed, preset, gran, sym, extra):
    attn_bits, mlp_bits = PRESETS[preset]
    out = {}
    for name, w in weights.items():
        w32 = w.astype(np.float32)
        spec = None
        if name in roles:
            spec = (attn_bits if roles[name] == "attention" else mlp_bits, gran, sym)
        if name in extra:
            spec = extra[name]
        if spec is None:
            out[name] = w32
            continue
        bits, g, s = spec
        m = w32.T if (transposed and name in roles) else w32
        gr, gc = refquant.grid(g[0], m.shape[0], m.shape[1], *(g[1:] if g[0] == "group" else ()),
                               **({"blocks": g[1]} if g[0] == "blocks" else {}))
        dq = refquant.quantize_matrix(m, bits, s, gr, gc)
        out[name] = np.ascontiguousarray(dq.T if (transposed and name in roles) else dq)
    return out


def write_h5(path, weights, cfg):
    with h5py.File(path, "w") as f:
        for name, w in weights.items():
            f.create_dataset("/" + name.replace(".", "/"), data=w)
        f.attrs["config"] = json.dumps(cfg)


def bad_corpus(d, good):
    """Malformed files, each with the exit code and an error fragment."""
    os.makedirs(d, exist_ok=True)
    raw = open(good, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]

    def with_header(h, data=body):
        text = json.dumps(h).encode()
        return struct.pack("<Q", len(text)) + text + data

    first = next(k for k in header if k != "__metadata__")
    cases = {}

    def add(name, content, code, fragment):
        with open(os.path.join(d, name), "wb") as f:
            f.write(content)
        cases[name] = (code, fragment)

    add("empty.safetensors", b"", 3, "truncated")
    add("short.safetensors", b"\x05\x00\x00", 3, "truncated")
    add("header-past-end.safetensors", struct.pack("<Q", 1 << 40) + b"{}", 3, "runs past the end")
    add("truncated-data.safetensors", raw[: len(raw) - 100], 3, "past end of file")
    add("broken-json.safetensors", struct.pack("<Q", 10) + b'{"a": [1,,', 3, "not a JSON object")
    add("not-object.safetensors", struct.pack("<Q", 2) + b"[]", 3, "not a JSON object")
    h = json.loads(json.dumps(header))
    h[first]["data_offsets"] = [0, len(body) + 64]
    add("offsets-outside.safetensors", with_header(h), 3, "past end of file")
    h = json.loads(json.dumps(header))
    second = next(k for k in header if k != "__metadata__" and header[k]["data_offsets"][0] > 0)
    h[second]["data_offsets"] = [o - 2 for o in h[second]["data_offsets"]]  # same size, 2 bytes into its neighbour
    add("overlap.safetensors", with_header(h), 3, "overlaps")
    h = json.loads(json.dumps(header))
    h[first]["shape"] = [h[first]["shape"][0] + 1] + h[first]["shape"][1:]
    add("size-mismatch.safetensors", with_header(h), 3, "need")
    h = json.loads(json.dumps(header))
    h[first]["dtype"] = "U16"  # safetensors has it; zquant reads floats and the integers of packed codes
    add("dtype-u16.safetensors", with_header(h), 3, "dtype 'U16' is not supported")
    h = json.loads(json.dumps(header))
    h[first]["shape"] = [-3, 4]
    add("negative-shape.safetensors", with_header(h), 3, "shape holds")
    h = json.loads(json.dumps(header))
    del h[first]["data_offsets"]
    add("no-offsets.safetensors", with_header(h), 3, "data_offsets")
    nan = np.ones((4, 8), dtype=np.float16)
    nan[2, 5] = np.nan
    stio.save(os.path.join(d, "nan.safetensors"), {"w.weight": nan})
    cases["nan.safetensors"] = (7, "NaN or Inf at [2, 5]")
    inf = np.ones((4, 8), dtype=np.float32)
    inf[3, 1] = np.inf
    stio.save(os.path.join(d, "inf-f32.safetensors"), {"w.weight": inf})
    cases["inf-f32.safetensors"] = (7, "NaN or Inf at [3, 1]")
    add("not-hdf5.h5", b"this is not an HDF5 file\n", 3, "not an HDF5 file")
    with h5py.File(os.path.join(d, "int-dataset.h5"), "w") as f:
        f.create_dataset("w", data=np.arange(6, dtype=np.int32).reshape(2, 3))
    cases["int-dataset.h5"] = (3, "not a float dataset")
    # a folder whose two shards both hold the first tensor (the index names one)
    two = os.path.join(d, "in-two-shards")
    os.makedirs(two, exist_ok=True)
    names = [k for k in header if k != "__metadata__"]
    shard = {n: "model-00001-of-00002.safetensors" if i % 2 == 0 else "model-00002-of-00002.safetensors"
             for i, n in enumerate(names)}
    for part in sorted(set(shard.values())):
        mine = [n for n in names if shard[n] == part or n == first]
        h, data = {}, b""
        for n in mine:
            a, b = header[n]["data_offsets"]
            h[n] = {"dtype": header[n]["dtype"], "shape": header[n]["shape"], "data_offsets": [len(data), len(data) + b - a]}
            data += body[a:b]
        with open(os.path.join(two, part), "wb") as f:
            f.write(with_header(h, data))
    with open(os.path.join(two, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": shard}, f, indent=1)
    cases["in-two-shards"] = (3, "is in two shards")
    # huge-config-attribute.h5 is not made here: fuzzing found it (its config
    # attribute makes libhdf5 allocate 4 GB); it is kept as found
    cases["huge-config-attribute.h5"] = (3, "cannot read attribute 'config'")
    with open(os.path.join(d, "EXPECTED"), "w") as f:
        f.write("# file|exit code|fragment of the one-line error\n")
        for name in sorted(cases):
            f.write(f"{name}|{cases[name][0]}|{cases[name][1]}\n")


def main():
    # only what this script makes: other generators own the rest of OUT
    # (engine/, real/, tokenizers/...), and bad/ keeps a file fuzzing found
    for sub in ("models", "expected"):
        if os.path.exists(f"{OUT}/{sub}"):
            shutil.rmtree(f"{OUT}/{sub}")
        os.makedirs(f"{OUT}/{sub}")
    built = {}
    for mt, fn in MODELS.items():
        weights, roles, cfg, transposed = fn()
        built[mt] = (weights, roles, transposed)
        d = f"{OUT}/models/{mt}"
        os.makedirs(d)
        stio.save(d + "/model.safetensors", weights, {"format": "pt"})
        with open(d + "/config.json", "w") as f:
            json.dump(cfg, f, indent=1)
        write_h5(f"{OUT}/models/{mt}.h5", weights, cfg)
        with open(f"{OUT}/models/{mt}.roles.json", "w") as f:
            json.dump(roles, f, indent=1, sort_keys=True)
    # shards, and other dtypes, of the llama weights
    weights = built["llama"][0]
    names = list(weights)
    d = f"{OUT}/models/llama-sharded"
    os.makedirs(d)
    shutil.copy(f"{OUT}/models/llama/config.json", d)
    half = len(names) // 2
    wm = {}
    for k, part in enumerate((names[:half], names[half:])):
        fn = f"model-0000{k + 1}-of-00002.safetensors"
        stio.save(f"{d}/{fn}", {n: weights[n] for n in part})
        wm.update({n: fn for n in part})
    with open(f"{d}/model.safetensors.index.json", "w") as f:
        json.dump({"metadata": {}, "weight_map": wm}, f, indent=1)
    stio.save(f"{OUT}/models/llama-f32.safetensors", {n: w.astype(np.float32) for n, w in weights.items()})
    bf16 = {}
    for n, w in weights.items():
        bits = w.astype(np.float32).view(np.uint32)
        bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
        bf16[n] = ("BF16", list(w.shape), bits.astype("<u2").tobytes())
    stio.save(f"{OUT}/models/llama-bf16.safetensors", bf16)
    for name, mt, args, preset, gran, sym, extra in CASES:
        w, roles, transposed = built[mt]
        exp = expected(w, roles, transposed, preset, gran, sym, extra)
        stio.save(f"{OUT}/expected/{name}.safetensors", exp)
        with open(f"{OUT}/expected/{name}.args", "w") as f:
            f.write(mt + "\n" + "\n".join(args) + "\n")
    bad_corpus(f"{OUT}/bad", f"{OUT}/models/llama/model.safetensors")


if __name__ == "__main__":
    main()
