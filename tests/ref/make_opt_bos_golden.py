#!/usr/bin/python3
"""Golden for OPT's Hugging Face perplexity protocol (tests/test_hf_models.c, "opt_bos").

OPT's tokenizer prepends </s> (id 2, bos_token_id in config.json) to every text. This script builds a tiny
OPT-architecture model in Hugging Face layout whose vocabulary is OPT's layout: <s> 0, <pad> 1, </s> 2,
<unk> 3, then a byte-level BPE vocabulary (the one tests/ref/make_bpe_golden.py trained, read from
tests/data/gpt2tok, its ids shifted by 4), and writes
    tests/data/hf/opt_bos/{config.json, manifest.json, vocab.json, merges.txt, golden.json}
golden.json holds the text (documents joined by a separator), the token stream of the Hugging Face protocol
(each stripped document encoded by the independent Python BPE of make_bpe_golden.py, </s> first, the
documents concatenated) and the mean next-token cross-entropy over it from the PyTorch float64 logits of
make_hf_goldens.make_opt.

Run from the repository root (needs torch, numpy, regex):  /usr/bin/python3 tests/ref/make_opt_bos_golden.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_bpe_golden as bpe  # noqa: E402
import make_hf_goldens as hf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
SRC = os.path.join(ROOT, 'tests', 'data', 'gpt2tok')
SPECIALS = ['<s>', '<pad>', '</s>', '<unk>']
SEP = '\n===\n'
DOCS = ['  First Citizen:\nBefore we proceed any further, hear me speak.\n',
        'All:\nSpeak, speak. </s> is not written here, ',
        '\n\nMENENIUS:\nWhat work\'s, my countrymen, in hand?  ']


def main():
    vocab = json.load(open(os.path.join(SRC, 'vocab.json'), encoding='utf-8'))
    merges_txt = open(os.path.join(SRC, 'merges.txt'), encoding='utf-8').read()
    merges = [tuple(line.split(' ')) for line in merges_txt.split('\n')[1:] if line]
    enc = bpe.Encoder(vocab, merges)
    opt_vocab = {t: i for i, t in enumerate(SPECIALS)}
    for t, i in vocab.items():
        opt_vocab[t] = i + len(SPECIALS)
    V = len(opt_vocab)
    assert sorted(opt_vocab.values()) == list(range(V))
    stream = []
    for d in DOCS:
        d = d.strip()
        # the second document spells "</s>" as text: OPT's tokenizer maps it to the special token
        parts = d.split('</s>')
        ids = [2]
        for k, p in enumerate(parts):
            if k:
                ids.append(2)
            ids += [i + len(SPECIALS) for i in enc.encode(p.encode())]
        stream += ids
    name, c, g, inputs, logits = hf.make_opt('opt_bos', 7000, 'F32', True, 'model.decoder.', D=32, E=32, H=4, F=64,
                                             V=V, P=64, tokens=stream)
    assert len(stream) <= 64, len(stream)
    lp = torch.log_softmax(logits, dim=-1)
    ce = -sum(lp[i, stream[i + 1]].item() for i in range(len(stream) - 1)) / (len(stream) - 1)
    hf.OUT = os.path.join(ROOT, 'tests', 'data', 'hf')
    hf.write_model(name, c, g, inputs, logits)
    d = os.path.join(hf.OUT, name)
    golden = json.load(open(os.path.join(d, 'golden.json')))
    del golden['logits']  # 51 x 2261 numbers: the mean cross-entropy below checks them all, in 1/1000th the size
    golden.update({'text': SEP.join(DOCS), 'sep': SEP, 'mean_ce': ce,
                   'protocol': 'each stripped document encoded with </s> (id 2) first, "</s>" in text is id 2; '
                               'mean next-token cross-entropy over the whole stream'})
    with open(os.path.join(d, 'golden.json'), 'w') as f:
        json.dump(golden, f, separators=(',', ':'))
        f.write('\n')
    with open(os.path.join(d, 'vocab.json'), 'w', encoding='utf-8') as f:
        json.dump(opt_vocab, f, ensure_ascii=False)
    with open(os.path.join(d, 'merges.txt'), 'w', encoding='utf-8') as f:
        f.write(merges_txt)
    print(f'opt_bos: {len(stream)} tokens, mean CE {ce:.6f}')


if __name__ == '__main__':
    main()
