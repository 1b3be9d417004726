#!/usr/bin/python3
"""Write a Hugging Face tokenizer.json for a llama2.c tokenizer.bin, the way Hugging Face converts a
SentencePiece BPE model (LlamaTokenizerFast): a BPE model with byte fallback, the "▁" normaliser
(prepend + replace spaces), <s> added by a TemplateProcessing post-processor, and merges made from the
vocabulary: for every token, each split into two tokens of the vocabulary is a merge, merges are ordered by
the score of the token they make (highest first; ties keep vocabulary order).

Used by tests/e2e_tokenizer_json.sh to give ../shared/data/llama-shakespeare-256 a tokenizer.json as its only
tokenizer file. Standard library only.
    /usr/bin/python3 tests/ref/l2c_tokenizer_json.py TOKENIZER.bin OUT/tokenizer.json
"""
import json
import struct
import sys

SPECIAL = {0: '<unk>', 1: '<s>', 2: '</s>'}


def read_l2c(path):
    b = open(path, 'rb').read()
    o = 4
    pieces, scores = [], []
    while o < len(b):
        s, n = struct.unpack('<fi', b[o:o + 8])
        o += 8
        pieces.append(b[o:o + n].decode('utf-8'))
        scores.append(s)
        o += n
    return pieces, scores


def main():
    src, out = sys.argv[1], sys.argv[2]
    pieces, scores = read_l2c(src)
    vocab = {}
    for i, p in enumerate(pieces):
        tok = SPECIAL.get(i) or p.replace(' ', '\u2581')
        vocab[tok] = i
    is_piece = [i not in SPECIAL and not (p.startswith('<0x') and len(p) == 6) for i, p in enumerate(pieces)]
    merges = []
    for tok, i in vocab.items():
        if not is_piece[i]:
            continue
        local = []
        for k in range(1, len(tok)):
            l, r = tok[:k], tok[k:]
            if l in vocab and r in vocab and is_piece[vocab[l]] and is_piece[vocab[r]]:
                local.append((l, r, scores[i]))
        merges += sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]]))
    merges.sort(key=lambda m: m[2], reverse=True)
    added = [{'id': i, 'content': t, 'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': False,
              'special': True} for i, t in SPECIAL.items()]
    tj = {
        'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added,
        'normalizer': {'type': 'Sequence', 'normalizers': [
            {'type': 'Prepend', 'prepend': '\u2581'},
            {'type': 'Replace', 'pattern': {'String': ' '}, 'content': '\u2581'}]},
        'pre_tokenizer': None,
        'post_processor': {'type': 'TemplateProcessing',
                           'single': [{'SpecialToken': {'id': '<s>', 'type_id': 0}},
                                      {'Sequence': {'id': 'A', 'type_id': 0}}],
                           'pair': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                                    {'SpecialToken': {'id': '<s>', 'type_id': 1}}, {'Sequence': {'id': 'B', 'type_id': 1}}],
                           'special_tokens': {'<s>': {'id': '<s>', 'ids': [1], 'tokens': ['<s>']}}},
        'decoder': {'type': 'Sequence', 'decoders': [
            {'type': 'Replace', 'pattern': {'String': '\u2581'}, 'content': ' '}, {'type': 'ByteFallback'},
            {'type': 'Fuse'}, {'type': 'Strip', 'content': ' ', 'start': 1, 'stop': 0}]},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': '<unk>', 'continuing_subword_prefix': None,
                  'end_of_word_suffix': None, 'fuse_unk': True, 'byte_fallback': True, 'ignore_merges': False,
                  'vocab': vocab, 'merges': [m[0] + ' ' + m[1] for m in merges]},
    }
    with open(out, 'w', encoding='utf-8') as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)
    print(f'{out}: {len(vocab)} tokens, {len(merges)} merges')


if __name__ == '__main__':
    main()
