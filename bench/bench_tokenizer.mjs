// The JavaScript reference for bench/bench_tokenizer.c: @lenml/tokenizers (transformers.js's tokenizers) on the same
// files and text, printing the same JSON fields. Run by bench/bench_tokenizer.sh.
import fs from "fs";
import path from "path";

const refs = process.env.PTQ_REFS || "build-ref";
const data = process.env.PTQ_DATA || "../shared/data";
const repeat = Number(process.argv[2] || 1);
const npm = path.join(refs, "npm/node_modules/@lenml");
const { TokenizerLoader } = await import(path.resolve(npm, "tokenizers/dist/main.mjs"));
const one = fs.readFileSync(path.join(data, "wikitext-2/wikitext2-raw-test.txt"));
const bytes = Buffer.concat(Array(repeat).fill(one));
const text = bytes.toString("utf8");

for (const name of ["llama2", "llama3"]) {
  const dir = path.join(npm, "tokenizer-" + name, "models");
  let t0 = performance.now();
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
  });
  const load = (performance.now() - t0) / 1000;
  for (const unit of ["text", "lines"]) {
    const pieces = unit === "text" ? [text] : text.split(/(?<=\n)/);
    let best = 0, tokens = 0, h = 0;
    for (let rep = 0; rep < 3 && best < 5; rep++) { // best of 3, or one round when a round takes over 5 s
      tok.model.clear_cache?.(); // no head start from the previous round's word cache
      t0 = performance.now();
      tokens = 0;
      h = 2166136261;
      for (const p of pieces) {
        const ids = tok.encode(p, { add_special_tokens: false });
        tokens += ids.length;
        for (const id of ids) h = Math.imul(h ^ id, 16777619) >>> 0;
      }
      const dt = (performance.now() - t0) / 1000;
      best = rep === 0 ? dt : Math.min(best, dt);
    }
    console.log(JSON.stringify({ impl: "js", tokenizer: name, unit, bytes: bytes.length, tokens, hash: h,
      load_s: +load.toFixed(4), encode_s: +best.toFixed(4), mb_per_s: +(bytes.length / 1e6 / best).toFixed(3) }));
  }
}
