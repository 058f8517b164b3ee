#!/usr/bin/python3
"""An independent float64 reference for the bundled model, from its original
llama2.c files (numpy only; llama2.c's own layout: interleaved RoPE, no
conversion), used to make the committed fixture tests/fixtures/real/:

  stories.txt    the first stories of the TinyStories excerpt
  tokens-int64.npy  the first 1024 of those ids as a .npy of int64
  tokens.bin     the same, tokenized by a
                 Python port of llama2.c run.c's encoder (BOS per story)
  expected.json  the mean NLL of those tokens in windows of 256, and run.c's
                 greedy continuation from BOS (PROVENANCE.md's published ids)

usage: llama2c_reference.py MODEL.bin TOKENIZER.bin TEXT OUT_DIR [STORIES]"""
import json
import os
import struct
import sys

import numpy as np


def load_tokenizer(path):
    d = open(path, "rb").read()
    o, vocab, scores = 4, [], []
    while o < len(d):
        sc, n = struct.unpack("<fi", d[o: o + 8])
        vocab.append(d[o + 8: o + 8 + n])
        scores.append(sc)
        o += 8 + n
    lut = {}
    for i, p in enumerate(vocab):
        lut.setdefault(p, i)
    return vocab, scores, lut


def encode(tok, text):
    """run.c: dummy space, whole code points or byte fallback (+3), then merge
    the best-scoring adjacent pair (leftmost on ties) until none merges."""
    vocab, scores, lut = tok
    b = text.encode()
    ids = [lut[b" "]] if b else []
    i = 0
    while i < len(b):
        k = 1
        while i + k < len(b) and k < 4 and (b[i + k] & 0xC0) == 0x80:
            k += 1
        cp = b[i: i + k]
        ids += [lut[cp]] if cp in lut else [x + 3 for x in cp]
        i += k
    while True:
        best, at, merged = None, -1, -1
        for j in range(len(ids) - 1):
            m = lut.get(vocab[ids[j]] + vocab[ids[j + 1]])
            if m is not None and (best is None or scores[m] > best):
                best, at, merged = scores[m], j, m
        if at < 0:
            return [1] + ids
        ids[at: at + 2] = [merged]


class Model:
    def __init__(self, path):
        raw = open(path, "rb").read()
        self.dim, self.hidden, self.L, self.nh, self.nkv, v, self.seq = struct.unpack("<7i", raw[:28])
        self.V = abs(v)
        f = np.frombuffer(raw[28:], dtype="<f4").astype(np.float64)
        self.o = 0
        dim, L, hd = self.dim, self.L, self.dim // self.nh
        kvd = self.nkv * hd

        def take(*s):
            n = int(np.prod(s))
            a = f[self.o: self.o + n].reshape(s)
            self.o += n
            return a

        self.emb, self.ra, self.wq = take(self.V, dim), take(L, dim), take(L, dim, dim)
        self.wk, self.wv, self.wo = take(L, kvd, dim), take(L, kvd, dim), take(L, dim, dim)
        self.rf, self.w1 = take(L, dim), take(L, self.hidden, dim)
        self.w2, self.w3, self.rfin = take(L, dim, self.hidden), take(L, self.hidden, dim), take(dim)
        self.hd = hd

    def rope(self, x, heads):
        t, hd = x.shape[0], self.hd
        x = x.reshape(t, heads, hd // 2, 2).copy()
        freq = 1.0 / (10000 ** (2 * np.arange(hd // 2) / hd))
        ang = np.arange(t)[:, None] * freq[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        a, b = x[..., 0].copy(), x[..., 1].copy()
        x[..., 0], x[..., 1] = a * c - b * s, a * s + b * c
        return x.reshape(t, heads * hd)

    def logits(self, tok):
        def rms(x, w):
            return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * w

        t, hd, x = len(tok), self.hd, self.emb[tok]
        mask = np.triu(np.full((t, t), -np.inf), 1)
        for l in range(self.L):
            h = rms(x, self.ra[l])
            q, k, v = self.rope(h @ self.wq[l].T, self.nh), self.rope(h @ self.wk[l].T, self.nkv), h @ self.wv[l].T
            out = np.zeros((t, self.dim))
            for hh in range(self.nh):
                g = hh // (self.nh // self.nkv)
                s = q[:, hh * hd:(hh + 1) * hd] @ k[:, g * hd:(g + 1) * hd].T / np.sqrt(hd) + mask
                s = np.exp(s - s.max(1, keepdims=True))
                out[:, hh * hd:(hh + 1) * hd] = (s / s.sum(1, keepdims=True)) @ v[:, g * hd:(g + 1) * hd]
            x = x + out @ self.wo[l].T
            h = rms(x, self.rf[l])
            a = h @ self.w1[l].T
            x = x + (a / (1 + np.exp(-a)) * (h @ self.w3[l].T)) @ self.w2[l].T
        return rms(x, self.rfin) @ self.emb.T


def main(model_path, tok_path, text_path, out_dir, stories=40):
    tok = load_tokenizer(tok_path)
    docs = [d.strip() for d in open(text_path, encoding="utf-8").read().split("<|endoftext|>")]
    ids, first = [], [d for d in docs if d][: int(stories)]
    for d in first:
        ids += encode(tok, d)
    m = Model(model_path)
    ctx, nll, count = 256, 0.0, 0
    for w in range(0, len(ids) - 1, ctx):
        window = ids[w: w + ctx]
        if len(window) < 2:
            break
        z = m.logits(np.array(window))
        lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
        nll += float((lse[:-1] - z[np.arange(len(window) - 1), window[1:]]).sum())
        count += len(window) - 1
    greedy = [1]
    for _ in range(40):
        greedy.append(int(np.argmax(m.logits(np.array(greedy))[-1])))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "stories.txt"), "w", encoding="utf-8") as f:
        f.write("\n<|endoftext|>\n".join(first) + "\n")
    with open(os.path.join(out_dir, "tokens.bin"), "wb") as f:
        f.write(struct.pack(f"<{len(ids)}I", *ids))
    np.save(os.path.join(out_dir, "tokens-int64.npy"), np.array(ids[:1024], dtype=np.int64))
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump({"stories": int(stories), "tokens": len(ids), "ctx": ctx, "predicted": count,
                   "nll": nll / count, "greedy_from_bos": greedy[1:]}, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
