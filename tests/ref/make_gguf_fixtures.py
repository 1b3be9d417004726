#!/usr/bin/env python3
"""GGUF references, written with llama.cpp's own gguf-py (build-ref/llama.cpp/gguf-py, installed by
scripts/refs.sh), never with ptq's code. Debian /usr/bin/python3 with numpy.

  vocab REFS OUT
      What gguf-py reads from the real vocabularies build-ref/llama.cpp/models/ggml-vocab-{llama-spm,llama-bpe}.gguf
      (tokens/test_gguf.c compares ptq_gguf_tok_spec with it), one text file per vocabulary, OUT/<name>.golden:
          model M / pre P / n_tokens N / n_merges N / scores yes|no / types yes|no
          key NAME VALUE        tokenizer.ggml.{bos,eos,unknown,padding}_token_id and add_{bos,eos}_token,
                                add_space_prefix (VALUE "absent" when the file has no such key)
          token ID HEX SCORE TYPE   a sample of tokens (HEX: the UTF-8 bytes; SCORE "-" when no scores)
          merge IDX HEX             a sample of merges
      Committed in tests/data/gguf/.
"""
import os
import sys


def gguf_module(refs):
    sys.path.insert(0, os.path.join(refs, "llama.cpp", "gguf-py"))
    import gguf  # noqa: E402

    return gguf


def field_value(r, key):
    """A scalar, string or array value of a GGUF field through gguf-py (None when absent)."""
    f = r.fields.get(key)
    if f is None:
        return None
    return f.contents()


def write_vocab_golden(gguf, path, out):
    r = gguf.GGUFReader(path)
    tokens = field_value(r, "tokenizer.ggml.tokens")
    scores = field_value(r, "tokenizer.ggml.scores")
    types = field_value(r, "tokenizer.ggml.token_type")
    merges = field_value(r, "tokenizer.ggml.merges") or []
    n = len(tokens)
    lines = [
        "model %s" % field_value(r, "tokenizer.ggml.model"),
        "pre %s" % (field_value(r, "tokenizer.ggml.pre") or ""),
        "n_tokens %d" % n,
        "n_merges %d" % len(merges),
        "scores %s" % ("yes" if scores is not None else "no"),
        "types %s" % ("yes" if types is not None else "no"),
    ]
    for k in ("bos_token_id", "eos_token_id", "unknown_token_id", "padding_token_id", "add_bos_token",
              "add_eos_token", "add_space_prefix"):
        v = field_value(r, "tokenizer.ggml." + k)
        lines.append("key %s %s" % (k, "absent" if v is None else int(v)))
    ids = sorted(set([0, 1, 2, 3, 10, 13, 29, 100, 255, 256, 259, 1000, 15043, 22557, 29871, 12345, 31999, 40000,
                      100000, 128000, 128001, 128255, n - 1] + list(range(7, n, n // 37))))
    for i in ids:
        if i >= n:
            continue
        sc = "-" if scores is None else repr(float(scores[i]))
        ty = "-" if types is None else str(int(types[i]))
        lines.append("token %d %s %s %s" % (i, tokens[i].encode("utf-8").hex(), sc, ty))
    for i in sorted(set([0, 1, 2, len(merges) - 1] + list(range(5, len(merges), 9973)))):
        if 0 <= i < len(merges):
            lines.append("merge %d %s" % (i, merges[i].encode("utf-8").hex()))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "vocab" and len(sys.argv) == 4:
        refs, out = sys.argv[2], sys.argv[3]
        gguf = gguf_module(refs)
        os.makedirs(out, exist_ok=True)
        for name in ("llama-spm", "llama-bpe"):
            src = os.path.join(refs, "llama.cpp", "models", "ggml-vocab-%s.gguf" % name)
            write_vocab_golden(gguf, src, os.path.join(out, name + ".golden"))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
