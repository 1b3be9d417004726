#!/usr/bin/env python3
"""Goldens for stories260K from the independent numpy reference (../shared/reference/llama2c_ref.py).

Writes tests/data/llama2c/:
  tokens.txt   the token ids of tinystories-valid-100.txt under the document protocol (one line)
  greedy.txt   the greedy continuation of BOS for 200 steps (token ids, one line)
  ppl.txt      tokens, scored, mean_ce and ppl with full precision

Rerun: /usr/bin/python3 tests/ref/make_llama2c_goldens.py [SHARED_DATA_DIR]   (needs python3-numpy; ~1 min)
"""
import os, sys
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, '..', 'shared', 'data')
sys.path.insert(0, os.path.join(data, '..', 'reference'))
import llama2c_ref as ref  # noqa: E402

out = os.path.join(root, 'tests', 'data', 'llama2c')
os.makedirs(out, exist_ok=True)
p = ref.load_ckpt(os.path.join(data, 'stories260K', 'stories260K.bin'))
vocab, scores = ref.load_tok(os.path.join(data, 'stories260K', 'tok512.bin'), p['V'])

txt = open(os.path.join(data, 'tinystories', 'tinystories-valid-100.txt'), encoding='utf-8').read()
toks = []
for s in [s.strip() for s in txt.split('<|endoftext|>') if s.strip()]:
    toks += ref.encode(s, vocab, scores, bos=True)
open(os.path.join(out, 'tokens.txt'), 'w').write(' '.join(map(str, toks)) + '\n')

T = p['T']; tot = 0.0; n = 0
for i in range(0, len(toks) - 1, T):
    c = toks[i:i + T + 1]; lg = ref.forward(p, c[:-1]); lg -= lg.max(-1, keepdims=True)
    lp = lg - np.log(np.exp(lg).sum(-1, keepdims=True)); t = np.array(c[1:])
    tot += -lp[np.arange(len(t)), t].sum(); n += len(t)
open(os.path.join(out, 'ppl.txt'), 'w').write(f'{len(toks)} {n} {tot / n:.10f} {np.exp(tot / n):.10f}\n')

g = [1]
for _ in range(200):
    nxt = int(ref.forward(p, g)[-1].argmax())
    if nxt == 1: break
    g.append(nxt)
open(os.path.join(out, 'greedy.txt'), 'w').write(' '.join(map(str, g[1:])) + '\n')
print('wrote', out, len(toks), 'tokens; mean CE', tot / n)
