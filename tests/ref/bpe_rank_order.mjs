// The merge order of byte-level BPE when a merges list ranks a merge before the merges that create its parts (never
// the case in a trained list): what Hugging Face's tokenizers do, through an independent implementation,
// @lenml/tokenizers (transformers.js's tokenizers; installed by scripts/refs.sh). Prints the ids that
// tests/test_gpt2_bpe.c (test_rank_order) expects; there the vocabulary has the 256 byte tokens first, so a, b, c are
// 97, 98, 99 and ab, aba, cab, caba are 256..259 (here 3..6).
//   node tests/ref/bpe_rank_order.mjs          (PTQ_REFS as for the tests)
import path from "path";
import { fileURLToPath } from "url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const refs = process.env.PTQ_REFS || path.join(root, "build-ref");
const { TokenizerLoader } = await import(path.join(refs, "npm/node_modules/@lenml/tokenizers/dist/main.mjs"));
const model = { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
                fuse_unk: false, byte_fallback: false, vocab: { a: 0, b: 1, c: 2, ab: 3, aba: 4, cab: 5, caba: 6 },
                merges: ["ab a", "c ab", "cab a", "a b"] };
const t = TokenizerLoader.fromPreTrained({
  tokenizerJSON: { version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer: null,
                   pre_tokenizer: null, post_processor: null, decoder: null, model },
  tokenizerConfig: {},
});
const names = ["a", "b", "c", "ab", "aba", "cab", "caba"];
for (const s of ["abab", "aba", "cabab"])
  console.log(s, "->", t.encode(s, { add_special_tokens: false }).map((i) => names[i]).join(" "));
