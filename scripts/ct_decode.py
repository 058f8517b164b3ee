#!/usr/bin/python3
"""An independent reader of compressed-tensors folders, written from the
format's documented rules (../shared/EXPORT.md, compressed-tensors 0.12's
QuantizationArgs and pack_to_int32), sharing nothing with zquant's C.

  ct_decode.py check DIR
      checks config.json's quantization_config field by field: the allowed
      keys of the config, of each scheme and of QuantizationArgs (extra keys
      are rejected, as pydantic's extra="forbid" does), the strategy rules,
      that every target names modules that exist, and vLLM's acceptance
      rule for INT8 W8A8 (8-bit symmetric static weights per tensor or
      channel, 8-bit dynamic per-token inputs).
  ct_decode.py compare DIR DEQUANTIZED.safetensors
      decodes every tensor (unpacks weight_packed and weight_zero_point,
      w = (q - zp) * scale per group in float32) and requires each to equal,
      bit for bit, the float32 tensor of the same name that `zquant
      dequantize` wrote.
  ct_decode.py golden
      unpacks the documented golden word 0x7FBA9810 to [-8,-7,0,1,2,3,7,-1].

Exit status 0 when everything holds; a line per problem on stderr."""
import json
import os
import re
import struct
import sys

import numpy as np

ARGS_KEYS = {"num_bits", "type", "symmetric", "group_size", "strategy", "block_structure", "dynamic", "actorder",
             "observer", "observer_kwargs"}
SCHEME_KEYS = {"targets", "weights", "input_activations", "output_activations", "format"}
CONFIG_KEYS = {"quant_method", "format", "quantization_status", "version", "config_groups", "ignore",
               "kv_cache_scheme", "sparsity_config", "global_compression_ratio", "transform_config"}
FORMATS = {"int-quantized", "pack-quantized", "float-quantized", "naive-quantized", "dense", "mixed-precision"}
STRATEGIES = {"tensor", "channel", "group", "block", "token", "tensor_group"}
DTYPES = {"F16": np.float16, "F32": np.float32, "I8": np.int8, "I32": np.int32, "I64": np.int64, "BF16": None}
GPT2_CONV1D = re.compile(r"\.(c_attn|c_proj|c_fc)$")

problems = []


def bad(msg):
    problems.append(msg)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")).reshape(
            info["shape"])
    return out


def read_folder(d):
    index = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else [
        "model.safetensors"]
    tensors = {}
    for f in files:
        tensors.update(read_safetensors(os.path.join(d, f)))
    return tensors


def check_args(where, a, is_input):
    if a is None:
        return
    extra = set(a) - ARGS_KEYS
    if extra:
        bad(f"{where}: keys QuantizationArgs forbids: {sorted(extra)}")
    if a.get("type") != "int" or a.get("num_bits") not in (4, 8):
        bad(f"{where}: type {a.get('type')} num_bits {a.get('num_bits')}")
    strategy, group = a.get("strategy"), a.get("group_size")
    if strategy not in STRATEGIES:
        bad(f"{where}: strategy {strategy}")
    if strategy == "group" and not (isinstance(group, int) and group > 0):
        bad(f"{where}: strategy group needs a positive group_size")
    if isinstance(group, int) and group > 0 and strategy != "group":
        bad(f"{where}: group_size {group} needs strategy group")
    if strategy == "token" and not a.get("dynamic"):
        bad(f"{where}: token strategy must be dynamic")
    if a.get("actorder") is not None and strategy != "group":
        bad(f"{where}: actorder without group strategy")
    if not is_input and a.get("dynamic"):
        bad(f"{where}: weights cannot be dynamic")


def check(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    q = cfg.get("quantization_config")
    if not isinstance(q, dict):
        return bad("config.json: no quantization_config")
    extra = set(q) - CONFIG_KEYS
    if extra:
        bad(f"quantization_config: unknown keys {sorted(extra)}")
    if q.get("quant_method") != "compressed-tensors":
        bad("quant_method is not compressed-tensors")
    if q.get("quantization_status") != "compressed":
        bad("quantization_status is not compressed")
    if q.get("format") not in FORMATS:
        bad(f"format {q.get('format')}")
    tensors = read_folder(d)
    modules = {n.rsplit(".", 1)[0] for n in tensors}
    formats = set()
    for gname, g in q.get("config_groups", {}).items():
        extra = set(g) - SCHEME_KEYS
        if extra:
            bad(f"{gname}: keys QuantizationScheme forbids: {sorted(extra)}")
        w, x = g.get("weights"), g.get("input_activations")
        check_args(f"{gname}.weights", w, False)
        check_args(f"{gname}.input_activations", x, True)
        fmt = g.get("format", q.get("format"))
        formats.add(fmt)
        if q.get("format") == "mixed-precision" and "format" not in g:
            bad(f"{gname}: mixed-precision needs a format per group")
        for t in g.get("targets", []):
            if t.startswith("re:"):
                if not any(re.match(t[3:], m) for m in modules):
                    bad(f"{gname}: target {t} matches no module")
            elif t != "Linear" and t not in modules:
                bad(f"{gname}: target {t} is not a module of the checkpoint")
        if fmt == "int-quantized":  # vLLM's CompressedTensorsW8A8Int8 acceptance
            if not (w and x and w["num_bits"] == 8 and x["num_bits"] == 8 and w["symmetric"]
                    and w["strategy"] in ("tensor", "channel") and not w["dynamic"]
                    and x["strategy"] == "token" and x["dynamic"]):
                bad(f"{gname}: int-quantized is not the dynamic-token W8A8 vLLM accepts")
        elif fmt == "pack-quantized":
            if x is not None:
                bad(f"{gname}: pack-quantized with quantized inputs (no vLLM kernel)")
            if w["strategy"] == "group" and w["group_size"] not in (32, 64, 128):
                bad(f"{gname}: group size {w['group_size']} (Marlin: 32, 64, 128)")
    if len(formats) > 1 and q.get("format") != "mixed-precision":
        bad(f"formats {sorted(formats)} need format mixed-precision")


def unpack(words, bits, count, axis):
    """int32 words -> signed values (stored value - 2^(bits-1)), count along axis."""
    per = 32 // bits
    w = words.astype(np.int64) & 0xFFFFFFFF
    if axis == 0:
        w = w.T
    vals = np.stack([(w >> (k * bits)) & ((1 << bits) - 1) for k in range(per)], axis=-1)
    vals = vals.reshape(w.shape[0], -1)[:, :count] - (1 << (bits - 1))
    return vals.T if axis == 0 else vals


def scheme_of(q, module):
    for g in q["config_groups"].values():
        for t in g["targets"]:
            if t == module or (t.startswith("re:") and re.match(t[3:], module)):
                return g
    return None


def decode(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    q = cfg["quantization_config"]
    conv1d = cfg.get("model_type") == "gpt2"
    t = read_folder(d)
    out = {}
    for name, a in t.items():
        module, leaf = name.rsplit(".", 1)
        if leaf == "weight_packed":
            g = scheme_of(q, module)
            bits = g["weights"]["num_bits"]
            rows, cols = (int(v) for v in t[module + ".weight_shape"])
            codes = unpack(a, bits, cols, 1)
            scale = t[module + ".weight_scale"].astype(np.float32)
            zp = np.zeros_like(scale, dtype=np.int64)
            if module + ".weight_zero_point" in t:
                zp = unpack(t[module + ".weight_zero_point"], bits, rows, 0)
            group = g["weights"]["group_size"] if g["weights"]["strategy"] == "group" else cols
            col_group = np.arange(cols) // group
            w = (codes - zp[:, col_group]).astype(np.float32) * scale[:, col_group]
            if conv1d and GPT2_CONV1D.search(module):
                w = w.T
            out[module + ".weight"] = w
        elif leaf == "weight" and module + ".weight_scale" in t:
            scale = t[module + ".weight_scale"].astype(np.float32)  # [out, 1]
            if conv1d and GPT2_CONV1D.search(module):  # stored [in, out] as the checkpoint
                out[name] = a.astype(np.float32) * scale.T
            else:
                out[name] = a.astype(np.float32) * scale
        elif leaf in ("weight_scale", "weight_shape", "weight_zero_point"):
            continue
        else:
            out[name] = a.astype(np.float32)
    return out


def compare(d, ref_path):
    got, ref = decode(d), read_safetensors(ref_path)
    for name in sorted(set(got) | set(ref)):
        if name not in got or name not in ref:
            bad(f"{name}: only in {'the export' if name in got else 'the dequantized file'}")
            continue
        a, b = np.ascontiguousarray(got[name]), np.ascontiguousarray(ref[name], dtype=np.float32)
        if a.shape != b.shape:
            bad(f"{name}: shape {a.shape} vs {b.shape}")
        elif not np.array_equal(a.view(np.uint32), b.view(np.uint32)):
            bad(f"{name}: {int((a.view(np.uint32) != b.view(np.uint32)).sum())} values differ")
    print(f"{len(got)} tensors decoded")


def golden():
    vals = unpack(np.array([[np.int64(0x7FBA9810)]]).astype(np.int64), 4, 8, 1)
    if vals.tolist() != [[-8, -7, 0, 1, 2, 3, 7, -1]]:
        bad(f"golden word unpacks to {vals.tolist()}")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "check":
        check(sys.argv[2])
    elif cmd == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif cmd == "golden":
        golden()
    else:
        sys.exit(__doc__)
    for p in problems:
        print(p, file=sys.stderr)
    sys.exit(1 if problems else 0)
