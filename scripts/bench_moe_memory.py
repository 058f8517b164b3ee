#!/usr/bin/python3
"""The mixture-of-experts memory benchmark: peak RSS of distilling (lkd) and
of GPTQ on block 0 of a synthetic Qwen3-MoE checkpoint, against two dense
Qwen3 checkpoints of the same attention: one whose MLP is one expert's
size, one whose MLP holds as many weights as all the experts. Each command
runs on its own, measured by the kernel (the child's ru_maxrss), repeated;
the median and the spread are printed, and each MoE figure as a ratio of
the two dense ones.

usage: bench_moe_memory.py ZQUANT_BINARY [OUT_DIR] [REPS] [EXPERTS]"""
import json
import os
import statistics
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_synth_gpt2 import write_f16_safetensors  # noqa: E402

H, HEADS, KV, D, MI, TOPK, VOCAB, LAYERS = 1024, 16, 4, 64, 512, 4, 2048, 2


def attention(p):
    return [(p + "input_layernorm.weight", (H,)), (p + "post_attention_layernorm.weight", (H,)),
            (p + "self_attn.q_proj.weight", (HEADS * D, H)), (p + "self_attn.k_proj.weight", (KV * D, H)),
            (p + "self_attn.v_proj.weight", (KV * D, H)), (p + "self_attn.o_proj.weight", (H, HEADS * D)),
            (p + "self_attn.q_norm.weight", (D,)), (p + "self_attn.k_norm.weight", (D,))]


def mlp(prefix, width):
    return [(prefix + "gate_proj.weight", (width, H)), (prefix + "up_proj.weight", (width, H)),
            (prefix + "down_proj.weight", (H, width))]


def write_model(path, experts, width):
    """experts > 0: Qwen3-MoE with that many experts of MI; else Qwen3 with an MLP of width"""
    table = [("model.embed_tokens.weight", (VOCAB, H))]
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        table += attention(p)
        if experts:
            table.append((p + "mlp.gate.weight", (experts, H)))
            for e in range(experts):
                table += mlp(f"{p}mlp.experts.{e}.", MI)
        else:
            table += mlp(p + "mlp.", width)
    table += [("model.norm.weight", (H,)), ("lm_head.weight", (VOCAB, H))]
    rng = np.random.default_rng(1)

    def values(name, shape):
        if name.endswith("norm.weight"):
            return np.ones(shape, dtype=np.float32)
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)

    os.makedirs(path, exist_ok=True)
    write_f16_safetensors(os.path.join(path, "model.safetensors"), table, values)
    cfg = {"model_type": "qwen3_moe" if experts else "qwen3", "hidden_size": H, "intermediate_size": width or MI,
           "num_attention_heads": HEADS, "num_key_value_heads": KV, "head_dim": D, "num_hidden_layers": LAYERS,
           "vocab_size": VOCAB, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 1e6,
           "hidden_act": "silu", "tie_word_embeddings": False}
    if experts:
        cfg.update({"num_experts": experts, "num_experts_per_tok": TOPK, "moe_intermediate_size": MI,
                    "norm_topk_prob": True})
    json.dump(cfg, open(os.path.join(path, "config.json"), "w"), indent=1)


def peak_rss_mb(cmd):
    """the command's own peak RSS (a fresh process: ru_maxrss of its wait)"""
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1), os.dup2(fd, 2)
        os.execv(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return usage.ru_maxrss / 1024


def main(zq, out="build/bench/moe-memory", reps=3, experts=16):
    experts, reps = int(experts), int(reps)
    models = {"moe": (experts, 0), "dense, one expert's MLP": (0, MI), "dense, all experts' weights": (0, MI * experts)}
    paths = {name: os.path.join(out, f"moe{e}" if e else f"dense{w}") for name, (e, w) in models.items()}
    for name, (e, w) in models.items():
        write_model(paths[name], e, w)
    common = ["--layers", "0", "--seq-len", "128", "--batch", "4", "--data-batches", "4", "--random-tokens", "-q", "-f",
              "-p", "w4/8a8"]
    cmds = {"lkd (3 steps)": lambda m: [zq, "lkd", m, "-o", os.path.join(out, "x.zq"), "--steps", "3"] + common,
            "lkd --init gptq (0 steps)": lambda m: [zq, "lkd", m, "-o", os.path.join(out, "x.zq"), "--steps", "0",
                                                     "--init", "gptq"] + common}
    print(f"hidden {H}, {experts} experts of {MI} (top {TOPK}) against dense MLPs of {MI} and {MI * experts}; "
          f"block 0 of {LAYERS}, 4 x 128 tokens x 4 batches; peak RSS, median of {reps} (spread)")
    for cname, cmd in cmds.items():
        med = {}
        for name, path in paths.items():
            runs = [peak_rss_mb(cmd(path)) for _ in range(reps)]
            med[name] = statistics.median(runs)
            print(f"  {cname:26s} {name:28s} {med[name]:7.1f} MB ({min(runs):.1f}-{max(runs):.1f})")
        moe, small, big = med["moe"], med["dense, one expert's MLP"], med["dense, all experts' weights"]
        print(f"  {cname:26s} moe / dense of one expert {moe / small:.2f}x, moe / dense of equal weights "
              f"{moe / big:.2f}x")


if __name__ == "__main__":
    main(*sys.argv[1:])
