#!/usr/bin/env python3
"""Golden files for the GPT-2 byte-level BPE tokenizer (src/text/gpt2_bpe.c, tests/test_gpt2_bpe.c).

The real GPT-2 vocab.json / merges.txt cannot be obtained here, so this script
  (a) trains a small byte-level BPE vocabulary (NUM_MERGES merges) on tinyshakespeare with the GPT-2
      pre-tokenizer, and writes it in GPT-2's file formats:
        vocab.json   {"token in byte-unicode form": id}: ids 0..255 are the single bytes (in the order of
                     the bytes_to_unicode table), then one id per new merge result, then "<|endoftext|>"
        merges.txt   "#version: 0.2", then one "a b" line per merge, in rank order
  (b) encodes text with an independent Python implementation of GPT-2's encoder, written from the
      algorithm (regex pre-tokenizer, bytes_to_unicode, lowest-rank-pair-first merge loop), and writes:
        wikitext_head.ids    ids of the first HEAD_BYTES bytes (cut after a newline) of
                             wikitext-2/wikitext2-raw-test.txt, one line, space separated
        wikitext.meta        "head_bytes N", "head_tokens N", and for the whole file "full_bytes N",
                             "full_tokens N", "full_fnv1a64 H" (FNV-1a 64 over the ids as little-endian
                             uint32), so the C test can check the whole file without a big golden
        tricky_inputs.hex    hand-written inputs (accents, CJK, emoji, digits, contractions, runs of spaces
                             and newlines, invalid UTF-8, ...), one per line, hex-encoded bytes
        tricky.ids           their ids, one line per input (an empty line for an empty encoding)
        tricky.pieces        their pre-tokens, as byte lengths, one line per input (the vocabulary is too
                             small for every pre-tokenizer difference to change the ids)
      wikitext.meta also has "full_pieces N" and "full_pieces_fnv1a64 H" (the same hash over the pre-token
      byte lengths of the whole file).
      Invalid UTF-8 is handled like the C code: every byte that is not part of a well-formed sequence is a
      code point of its own in no class (decoded with 'surrogateescape', so it becomes a lone surrogate,
      category Cs, which matches neither \\s, \\p{L} nor \\p{N}).
  `<|endoftext|>` inside text is not special (as tiktoken/GPT-2 encode without allowed_special).

Rerun from the repository root (Debian python3 with python3-regex; about a minute):
    /usr/bin/python3 tests/ref/make_bpe_golden.py [--data /work/shared/data] [--out tests/data/gpt2tok]
The output is deterministic (ties in training are broken by the smallest pair).
"""
import argparse
import heapq
import json
import os
import sys
import time
from collections import Counter, defaultdict

import regex

NUM_MERGES = 2000
HEAD_BYTES = 200_000
PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def byte_unicode_table():
    """Byte -> printable character, GPT-2 style: the printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC,
    U+00AE..U+00FF) stand for themselves; the remaining 68 bytes, in increasing order, get U+0100 onwards.
    Returns the list of bytes in id order and the mapping."""
    keep = [b for b in range(256) if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF]
    order = list(keep)
    mapping = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(0x100 + extra)
            order.append(b)
            extra += 1
    assert extra == 68 and len(set(mapping.values())) == 256
    return order, mapping


BYTE_ORDER, BYTE2CHAR = byte_unicode_table()


def pretokenize(data: bytes):
    """Split raw bytes into GPT-2 pre-tokens (as bytes). Invalid UTF-8 bytes become lone surrogates."""
    text = data.decode("utf-8", "surrogateescape")
    return [m.group(0).encode("utf-8", "surrogateescape") for m in PATTERN.finditer(text)]


def to_symbols(piece: bytes):
    return [BYTE2CHAR[b] for b in piece]


# ---------------------------------------------------------------------------------------------- training
def train(text: bytes, num_merges: int):
    words = Counter(pretokenize(text))
    seqs = [to_symbols(w) for w in words]
    freqs = [words[w] for w in words]

    pair_count = defaultdict(int)
    where = defaultdict(set)  # pair -> indices of words containing it
    for i, s in enumerate(seqs):
        for a, b in zip(s, s[1:]):
            pair_count[(a, b)] += freqs[i]
            where[(a, b)].add(i)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)

    merges = []
    while len(merges) < num_merges and heap:
        negc, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -negc:
            continue  # stale entry
        if -negc < 2:
            break
        a, b = pair
        merged = a + b
        merges.append(pair)
        touched = set()
        for i in list(where[pair]):
            s = seqs[i]
            f = freqs[i]
            for x, y in zip(s, s[1:]):
                pair_count[(x, y)] -= f
                touched.add((x, y))
            out = []
            j = 0
            while j < len(s):
                if j + 1 < len(s) and s[j] == a and s[j + 1] == b:
                    out.append(merged)
                    j += 2
                else:
                    out.append(s[j])
                    j += 1
            seqs[i] = out
            for x, y in zip(out, out[1:]):
                pair_count[(x, y)] += f
                where[(x, y)].add(i)
                touched.add((x, y))
        del where[pair]
        pair_count.pop(pair, None)
        for p in touched:
            c = pair_count.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                pair_count.pop(p, None)
    return merges


def build_vocab(merges):
    vocab = {}
    for b in BYTE_ORDER:
        vocab[BYTE2CHAR[b]] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:  # two different merges may spell the same string
            vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


# ---------------------------------------------------------------------------------------------- encoding
class Encoder:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.rank = {}
        for r, p in enumerate(merges):
            self.rank[p] = r  # a repeated pair keeps its last rank, as dict(zip(merges, range(n))) would
        self.cache = {}

    def bpe(self, piece: bytes):
        if piece in self.cache:
            return self.cache[piece]
        word = to_symbols(piece)
        while len(word) > 1:
            best, best_rank = None, None
            for p in zip(word, word[1:]):
                r = self.rank.get(p)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = p, r
            if best is None:
                break
            a, b = best
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        ids = [self.vocab[t] for t in word]
        self.cache[piece] = ids
        return ids

    def encode(self, data: bytes):
        ids = []
        for piece in pretokenize(data):
            ids.extend(self.bpe(piece))
        return ids


def fnv1a64(ids):
    h = 0xCBF29CE484222325
    for t in ids:
        for k in range(4):
            h ^= (t >> (8 * k)) & 0xFF
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


TRICKY = [
    b"Hello world",
    b"",
    b" ",
    b"\n",
    b"  leading spaces and trailing   ",
    b"multiple    spaces\n\n\nnewlines\t\ttabs \n \n\n  x",
    b" \na  \n  b\t \tc  ",
    "I'm you're we've he'll she'd it's don't CAN'T 'quoted' ''s 's's'S 'RE 're'll'd'm't' \u2019s".encode(),
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m fa\u00e7ade \u00df\u00fc\u00f1 \u0141\u00f3d\u017a".encode(),
    "e\u0301 a\u0308o\u0308 combining marks".encode(),
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u4e2d\u6587 \ud55c\uad6d\uc5b4 \u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u05e2\u05d1\u05e8\u05d9\u05ea \u0627\u0644\u0639\u0631\u0628\u064a\u0629".encode(),
    "emoji \U0001F600\U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467 flags \U0001F1EB\U0001F1F7!".encode(),
    "digits 12345 3.14159 1,000,000 x2y \u0663\u0664\u0665 \u00bd \u216b \u00b2 2023-01-01".encode(),
    b"<|endoftext|>special<|endoftext|> <|endoftext|>",
    "white:\u00a0nbsp\u3000ideo\u2028ls\u0085nel\x1cfs\x1fus\x0bvt\x0cff end \u00a0 \u2003x".encode(),
    b"bad \xff\xfe bytes \xc3( \xe2\x82 \xf0\x9f\x98 end\x80",
    b"overlong \xc0\xaf surrogate \xed\xa0\x80 toobig \xf4\x90\x80\x80 \xf5 ok \xc3\xa9\xc3",
    b"overlong letters x\xc1\x81y \xe0\x81\x81z \xf0\x80\x81\x81w \xc0\xa0 \xe0\x80\xa0v 7\xe0\x80\xb0",
    b"separators a \x1c\x1d b\x1e\x1f c \x1c",
    b"\xe2\x82",
    b"nul\x00byte \x00\x00 x",
    b"Punctuation!!! ...??? (parens) [brackets] {braces} @#$%^&* -- --- ``quotes''",
    b"MiXeD CaSe WORDS and_under_scores and-hyphens e-mail@example.com http://x.org/a?b=c",
    b"\r\n windows\r\nline endings \r\n",
    b"First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n",
    b"the the the the. The THE tHe",
    b"ab" * 1500 + b" " + b"x" * 3000 + b" " * 500 + b"z" + b"!" * 700,
]


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "gpt2tok"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    t0 = time.time()
    with open(os.path.join(args.data, "tinyshakespeare", "input.txt"), "rb") as f:
        shakespeare = f.read()
    merges = train(shakespeare, NUM_MERGES)
    vocab = build_vocab(merges)
    print("trained %d merges, vocab %d (%.1fs)" % (len(merges), len(vocab), time.time() - t0), file=sys.stderr)

    with open(os.path.join(args.out, "vocab.json"), "w", encoding="ascii") as f:
        json.dump(vocab, f)  # ensure_ascii: non-ASCII as \\uXXXX escapes, like GPT-2's encoder.json
    with open(os.path.join(args.out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write("%s %s\n" % (a, b))

    enc = Encoder(vocab, merges)
    with open(os.path.join(args.data, "wikitext-2", "wikitext2-raw-test.txt"), "rb") as f:
        wiki = f.read()
    cut = wiki.rfind(b"\n", 0, HEAD_BYTES) + 1
    head = wiki[:cut]
    head_ids = enc.encode(head)
    t1 = time.time()
    full_ids = enc.encode(wiki)
    print("wikitext: %d bytes -> %d tokens (%.1fs)" % (len(wiki), len(full_ids), time.time() - t1),
          file=sys.stderr)
    # self-checks of the reference: byte-exact round trip, and the head is a prefix of the whole
    inv = {v: k for k, v in vocab.items()}
    char2byte = {c: b for b, c in BYTE2CHAR.items()}
    assert bytes(char2byte[c] for t in full_ids for c in inv[t]) == wiki
    assert full_ids[: len(head_ids)] == head_ids

    with open(os.path.join(args.out, "wikitext_head.ids"), "w") as f:
        f.write(" ".join(map(str, head_ids)) + "\n")
    with open(os.path.join(args.out, "wikitext.meta"), "w") as f:
        f.write("head_bytes %d\nhead_tokens %d\nfull_bytes %d\nfull_tokens %d\nfull_fnv1a64 %016x\n"
                % (len(head), len(head_ids), len(wiki), len(full_ids), fnv1a64(full_ids)))
        pieces = [len(p) for p in pretokenize(wiki)]
        f.write("full_pieces %d\nfull_pieces_fnv1a64 %016x\n" % (len(pieces), fnv1a64(pieces)))
    with open(os.path.join(args.out, "tricky_inputs.hex"), "w") as fi, \
            open(os.path.join(args.out, "tricky.ids"), "w") as fo, \
            open(os.path.join(args.out, "tricky.pieces"), "w") as fp:
        for s in TRICKY:
            ids = enc.encode(s)
            assert bytes(char2byte[c] for t in ids for c in inv[t]) == s
            fi.write(s.hex() + "\n")
            fo.write(" ".join(map(str, ids)) + "\n")
            fp.write(" ".join(str(len(p)) for p in pretokenize(s)) + "\n")
    print("wrote %s" % args.out, file=sys.stderr)


if __name__ == "__main__":
    main()
