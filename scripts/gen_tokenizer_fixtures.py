#!/usr/bin/python3
"""Fixtures for zquant's tokenizer.json support (numpy-free; needs Debian's
python3-regex). Trains two small BPE tokenizers on the TinyStories excerpt
and writes them in Hugging Face's tokenizer.json format:

  bytelevel/      GPT-2 style: GPT-2's pre-tokenizer regex, bytes mapped to
                  printable characters (bytes_to_unicode), <|endoftext|>
  sentencepiece/  Llama style: normalizer Prepend("▁") + Replace(" ", "▁"),
                  no pre-tokenizer, byte_fallback to <0xXX>, <s> as BOS
  splits/         a Sequence of two Split pre-tokenizers (digits in runs of
                  at most three, as DeepSeek splits numbers, then GPT-2's
                  regex), each applied to every piece the one before made,
                  then ByteLevel without a regex of its own; trained on
                  numbers too, so that how digits split changes the ids

and encodes input.txt (stories and awkward strings) with an independent
reference of each algorithm: OpenAI's GPT-2 encoder.py procedure (merge every
occurrence of the lowest-ranked pair, repeat) for byte-level, and the same
rank-ordered merging over characters with byte fallback for the
SentencePiece style. expected.bin holds the ids (raw uint32), BOS first per
document, as `zquant tokenize` writes them.

usage: gen_tokenizer_fixtures.py TEXT OUT_DIR"""
import collections
import json
import os
import struct
import sys

import regex

GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
META = "\u2581"
MERGES = 300


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def learn(words, n_merges):
    """Plain BPE training: words is {tuple of symbols: count}."""
    merges = []
    words = dict(words)
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[a, b] += c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return merges


def bpe(symbols, ranks):
    """encoder.py's bpe(): merge all occurrences of the lowest-ranked pair."""
    word = list(symbols)
    while len(word) > 1:
        pairs = set(zip(word, word[1:]))
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        first, second = best
        new, i = [], 0
        while i < len(word):
            try:
                j = word.index(first, i)
            except ValueError:
                new.extend(word[i:])
                break
            new.extend(word[i:j])
            i = j
            if i < len(word) - 1 and word[i + 1] == second:
                new.append(first + second)
                i += 2
            else:
                new.append(word[i])
                i += 1
        word = new
    return word


def split_isolated(pattern, piece):
    """Hugging Face's Split, behavior Isolated: every match is a piece and so
    is every stretch between two; empty matches make none."""
    out, gap = [], 0
    for m in regex.finditer(pattern, piece):
        if m.end() == m.start():
            continue
        if m.start() > gap:
            out.append(piece[gap:m.start()])
        out.append(m.group())
        gap = m.end()
    if gap < len(piece):
        out.append(piece[gap:])
    return out


def docs_of(path, n):
    text = open(path, encoding="utf-8").read()
    return [d.strip() for d in text.split("<|endoftext|>") if d.strip()][:n]


AWKWARD = [
    "It's 2024 and they've said: \"we'll see\" -- 12345 apples, 6.75 pears!",
    "Tabs\tand  double  spaces   and\n\nnew lines.",
    "Curly \u201cquotes\u201d, an em\u2014dash, caf\u00e9, na\u00efve, \u4e2d\u6587, emoji \U0001F642.",
    "Mojibake as some stories have it: \u00e2\u20ac\u0153Hi!\u00e2\u20ac\u009d",
]


def byte_level(train, test, out):
    b2u = bytes_to_unicode()
    words = collections.Counter()
    for d in train:
        for w in regex.findall(GPT2_PAT, d):
            words[tuple(b2u[b] for b in w.encode())] += 1
    merges = learn(words, MERGES)
    vocab = {b2u[b]: i for i, b in enumerate(sorted(b2u))}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    eot = len(vocab)
    ranks = {m: i for i, m in enumerate(merges)}
    tok = {"version": "1.0", "added_tokens": [{"id": eot, "content": "<|endoftext|>", "special": True}],
           "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                                  "use_regex": True},
           "decoder": {"type": "ByteLevel"},
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "byte_fallback": False,
                     "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]}}
    ids = []
    for d in test:
        ids.append(eot)
        for w in regex.findall(GPT2_PAT, d):
            ids += [vocab[s] for s in bpe([b2u[b] for b in w.encode()], ranks)]
    write(out, tok, test, ids)


DIGITS_PAT = r"\p{N}{1,3}"


def splits(train, test, out):
    b2u = bytes_to_unicode()

    def pieces(doc):
        ps = [doc]
        for pat in (DIGITS_PAT, GPT2_PAT):
            ps = [q for p in ps for q in split_isolated(pat, p)]
        return ps

    # numbers to learn merges of digits from, so splitting them matters
    numbers = [f"Tom counted {i * 7919 % 100000} stars and {i * 104729 % 1000000} coins in {1900 + i % 120}."
               for i in range(400)]
    words = collections.Counter()
    for d in train + numbers:
        for w in pieces(d):
            words[tuple(b2u[b] for b in w.encode())] += 1
    merges = learn(words, MERGES)
    vocab = {b2u[b]: i for i, b in enumerate(sorted(b2u))}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    bos = len(vocab)
    test = test + ["Call 0123456789 or 31415926535; in 19842024 we counted 7919791979 coins."]
    ranks = {m: i for i, m in enumerate(merges)}
    split = lambda pat: {"type": "Split", "pattern": {"Regex": pat}, "behavior": "Isolated", "invert": False}  # noqa: E731
    tok = {"version": "1.0", "added_tokens": [{"id": bos, "content": "<|begin_of_text|>", "special": True}],
           "normalizer": None,
           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
               split(DIGITS_PAT), split(GPT2_PAT),
               {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
           "decoder": {"type": "ByteLevel"},
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "byte_fallback": False,
                     "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]}}
    ids = []
    for d in test:
        ids.append(bos)
        for w in pieces(d):
            ids += [vocab[s] for s in bpe([b2u[b] for b in w.encode()], ranks)]
    write(out, tok, test, ids)


def sentencepiece(train, test, out):
    norm = lambda s: META + s.replace(" ", META)  # noqa: E731
    chars = collections.Counter(c for d in train for c in norm(d))
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for c, n in sorted(chars.items()):
        if n >= 5:  # rare characters are left to byte fallback
            vocab[c] = len(vocab)
    words = collections.Counter()
    for d in train:
        for w in regex.findall(META + "[^" + META + "]*", norm(d)):
            words[tuple(w)] += 1
    words = {w: c for w, c in words.items() if all(ch in vocab for ch in w)}
    merges = learn(words, MERGES)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    ranks = {m: i for i, m in enumerate(merges)}
    tok = {"version": "1.0", "added_tokens": [{"id": 0, "content": "<unk>", "special": True},
                                               {"id": 1, "content": "<s>", "special": True},
                                               {"id": 2, "content": "</s>", "special": True}],
           "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": META},
                                                               {"type": "Replace", "pattern": {"String": " "},
                                                                "content": META}]},
           "pre_tokenizer": None,
           "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "byte_fallback": True,
                     "vocab": vocab, "merges": [[a, b] for a, b in merges]}}
    ids = []
    for d in test:
        ids.append(1)
        symbols = []
        for c in norm(d):  # characters, unknown ones as their bytes
            symbols += [c] if c in vocab else [f"<0x{b:02X}>" for b in c.encode()]
        ids += [vocab[s] for s in bpe(symbols, ranks)]
    write(out, tok, test, ids)


def write(out, tok, docs, ids):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
    with open(os.path.join(out, "input.txt"), "w", encoding="utf-8") as f:
        f.write("\n<|endoftext|>\n".join(docs) + "\n")
    with open(os.path.join(out, "expected.bin"), "wb") as f:
        f.write(struct.pack(f"<{len(ids)}I", *ids))


def main(text, out):
    train = docs_of(text, 300)
    test = docs_of(text, 330)[300:] + AWKWARD
    byte_level(train, test, os.path.join(out, "bytelevel"))
    sentencepiece(train, test, os.path.join(out, "sentencepiece"))
    splits(train, test, os.path.join(out, "splits"))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
