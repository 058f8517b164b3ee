// Runs a GGUF file in llama.cpp itself (node-llama-cpp's prebuilt CPU build)
// and prints, as JSON, what the tests compare with zquant:
//   --tokens IDS --ctx N   llama.cpp's mean NLL over windows cut as
//                          `zquant eval` cuts them (non-overlapping, a short
//                          last window if it predicts anything)
//   --logprobs FILE        with --tokens: KL(P_file || P_llama.cpp) per token
//                          and top-1 agreement, FILE from `zquant eval --logprobs`
//   --text FILE --ids-out OUT   the text tokenized by llama.cpp as `zquant
//                          tokenize` does (documents split at lines holding
//                          <|endoftext|>, stripped, BOS first), raw uint32
//   --generate N           N greedy tokens after BOS
//   --bench-prefill N --bench-decode N [--reps R]   llama-bench's two
//                          figures on 2 threads: one pass over N random
//                          prompt tokens, and N tokens one at a time (each
//                          from an empty cache), medians of R (default 3)
//                          after a warm-up, tokens/s (--ctx must hold N)
// usage: node llama_cpp_check.mjs MODEL.gguf [options]
import {readFileSync, writeFileSync} from "node:fs";
import {getLlama} from "node-llama-cpp";

const args = {model: process.argv[2]};
for (let i = 3; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: args.model});
const bos = model.tokens.bos;
const ctxLen = Number(args.ctx || 512);
const context = await model.createContext({contextSize: ctxLen, batchSize: ctxLen, threads: 2});
const seq = context.getSequence();
const out = {};

function readU32(path) {
    const b = readFileSync(path);
    return Array.from(new Uint32Array(b.buffer, b.byteOffset, b.length / 4));
}

// llama.cpp's logits for every position of tokens but the last, as arrays
async function windowLogits(tokens) {
    await seq.clearHistory();
    const input = tokens.map((t, i) => (i < tokens.length - 1 ? [t, {generateNext: {logits: true}}] : t));
    const res = await seq.controlledEvaluate(input);
    return res.slice(0, tokens.length - 1).map((r) => {
        const z = new Float64Array(r.next.logits.size);
        for (const [id, v] of r.next.logits) z[id] = v;
        return z;
    });
}

function logSoftmax(z) {
    let mx = -Infinity;
    for (const v of z) mx = Math.max(mx, v);
    let s = 0;
    for (const v of z) s += Math.exp(v - mx);
    const lse = mx + Math.log(s);
    return z.map((v) => v - lse);
}

if (args.tokens) {
    const ids = readU32(args.tokens);
    const ref = args.logprobs ? readFileSync(args.logprobs) : null;
    const refF = ref ? new Float32Array(ref.buffer, ref.byteOffset, ref.length / 4) : null;
    let nll = 0, kl = 0, agree = 0, count = 0, V = 0;
    const full = Math.floor(ids.length / ctxLen), tail = ids.length % ctxLen;
    const windows = [];
    for (let w = 0; w < full; w++) windows.push(ids.slice(w * ctxLen, (w + 1) * ctxLen));
    if (tail >= 2) windows.push(ids.slice(full * ctxLen));
    for (const win of windows) {
        const zs = await windowLogits(win);
        zs.forEach((z, k) => {
            const lp = logSoftmax(z);
            V = lp.length;
            nll -= lp[win[k + 1]];
            if (refF) {
                const r = refF.subarray(count * V, (count + 1) * V);
                let klk = 0, am = 0, ar = 0;
                for (let i = 0; i < V; i++) {
                    klk += Math.exp(r[i]) * (r[i] - lp[i]);
                    if (lp[i] > lp[am]) am = i;
                    if (r[i] > r[ar]) ar = i;
                }
                kl += klk;
                agree += am === ar;
            }
            count++;
        });
    }
    if (refF && refF.length !== count * V) throw new Error(`--logprobs holds ${refF.length / V} positions, llama.cpp predicted ${count}`);
    Object.assign(out, {positions: count, nll: nll / count});
    if (refF) Object.assign(out, {kl: kl / count, top1: agree / count});
}

if (args.text) {
    const text = readFileSync(args.text, "utf8");
    const docs = text.split("\n").reduce((acc, line) => {
        if (line.trim() === "<|endoftext|>") acc.push([]);
        else acc[acc.length - 1].push(line);
        return acc;
    }, [[]]);
    const ids = [];
    for (const d of docs) {
        const doc = d.join("\n").trim();
        if (doc) ids.push(bos, ...model.tokenize(doc));
    }
    writeFileSync(args["ids-out"], Buffer.from(new Uint32Array(ids).buffer));
    out.text_tokens = ids.length;
}

if (args.generate) {
    const n = Number(args.generate);
    const gen = [];
    await seq.clearHistory();
    let next = bos;
    for (let k = 0; k < n; k++) {
        const [r] = await seq.controlledEvaluate([[next, {generateNext: {logits: true}}]]);
        let best = -1, bv = -Infinity;
        for (const [id, v] of r.next.logits) if (v > bv || (v === bv && id < best)) (best = id), (bv = v);
        gen.push(best);
        next = best;
    }
    out.generated = gen;
}

if (args["bench-prefill"] || args["bench-decode"]) {
    const np = Number(args["bench-prefill"] || 0), nd = Number(args["bench-decode"] || 0), reps = Number(args.reps || 3);
    const vocab = model.fileInsights.tokens?.count ?? 32000;
    let rng = 12345;
    const draw = (n) => Array.from({length: n}, () => ((rng = (rng * 1103515245 + 12345) >>> 0) % vocab));
    const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const prefillOnce = async (n) => {
        await seq.clearHistory();
        const t0 = performance.now();
        await seq.evaluateWithoutGeneratingNewTokens(draw(n));
        return (performance.now() - t0) / 1000;
    };
    const decodeOnce = async (n) => {
        await seq.clearHistory();
        const ids = draw(n), t0 = performance.now();
        for (const id of ids) await seq.controlledEvaluate([[id, {generateNext: {logits: true}}]]);
        return (performance.now() - t0) / 1000;
    };
    if (np) await prefillOnce(Math.min(np, 32));
    if (nd) await decodeOnce(Math.min(nd, 4));
    const pre = [], dec = [];
    for (let r = 0; r < reps; r++) {
        if (np) pre.push(np / (await prefillOnce(np)));
        if (nd) dec.push(nd / (await decodeOnce(nd)));
    }
    if (np) Object.assign(out, {prefill_tps: median(pre), prefill_tps_min: Math.min(...pre), prefill_tps_max: Math.max(...pre)});
    if (nd) Object.assign(out, {decode_tps: median(dec), decode_tps_min: Math.min(...dec), decode_tps_max: Math.max(...dec)});
}

console.log(JSON.stringify(out));
await context.dispose();
await model.dispose();
