// Inference API (src/eval/infer.ts): loading a model file from bytes, study preparation, embeddings,
// prompt-pair probabilities against the direct computation, and the relevance map against a float64
// implementation of the spec's closed form (tiny models, shapes that are not multiples of the patch).
import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { preprocessScan } from '../src/data/dataset.js';
import { resizeTrilinear } from '../src/data/resample.js';
import { embedStudies, findingProbabilities, loadModel, prepareStudy, probabilitiesFromEmbedding, promptClassifier, promptTemplate, type LoadedModel, type ModelData } from '../src/eval/infer.js';
import { relevanceDetails } from '../src/eval/relevance.js';
import { parseSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { axcodes, type Volume } from '../src/io/volume.js';
import { StateDictError } from '../src/nn/module.js';
import { noGrad, scope } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { encodeCheckpoint } from '../src/train/checkpoint.js';
import { getDevice } from './helpers/device.js';
import { CONFIG_SCAN, CONFIG_STUDY, tinyModelFile, tinyTokenizer } from './helpers/infer_model.js';
import { randomData, relErr } from './helpers/ref.js';
import { relevanceRef, type BlockWeights } from './helpers/relevance_ref.js';

let dev: Device;
let fileStudy: Uint8Array;
beforeAll(async () => {
  dev = await getDevice();
  fileStudy = await tinyModelFile(dev, CONFIG_STUDY, 3, { 'hlip.prompts': { mass: { positive: 'a mass is present.', negative: 'no mass.' } } });
});

const PROMPTS = [
  { name: 'mass', positive: 'a mass is present.', negative: 'no mass.' },
  { name: 'edema', positive: 'edema is present.', negative: 'normal brain.' },
  { name: 'bleed', positive: 'a bleed.', negative: 'no bleed.' },
];

const study = (shape: [number, number, number, number], seed: number) => Float32Array.from(randomData(shape.reduce((a, b) => a * b, 1), seed));

async function load(bytes: Uint8Array, extra: Partial<Parameters<typeof loadModel>[2]> = {}): Promise<{ m: LoadedModel; specs: unknown[] }> {
  const specs: unknown[] = [];
  const m = await loadModel(dev, bytes, { name: 'tiny.safetensors', tokenizer: (s, c) => (specs.push(s), tinyTokenizer(s, c)), ...extra });
  return { m, specs };
}

describe('loadModel', () => {
  it('reads our model.safetensors from bytes: weights, config, tokenizer spec, data and prompts', async () => {
    const { m, specs } = await load(fileStudy);
    try {
      expect(specs).toEqual([{ vocab: 'vocab.txt' }]);
      expect(m.data).toEqual({ kind: 'mri', shape: [7, 10, 10], numScans: 2, reportPrefix: null });
      expect(m.prompts).toEqual([{ name: 'mass', positive: 'a mass is present.', negative: 'no mass.' }]);
      expect(m.source).toBe('tiny.safetensors');
      expect(m.model.training).toBe(false);
      const st = parseSafetensors(fileStudy);
      let n = 0;
      for (const [name, t] of m.model.stateDict()) {
        expect(Array.from((await t.data()) as Float32Array), name).toEqual(Array.from(st.float32Sync(name)));
        n++;
      }
      expect(n).toBe(st.names().length);
    } finally {
      m.dispose();
    }
  });

  it('accepts a training checkpoint, and reference names with a module. prefix plus a config', async () => {
    const st = parseSafetensors(fileStudy);
    const weights = new Map(st.names().map((n) => [n, { shape: [...st.entry(n).shape], data: Float32Array.from(st.float32Sync(n)) }]));
    const ckpt = encodeCheckpoint({
      model: weights, optimizer: { state: [], paramGroups: [] }, optimizerParams: [], step: 3, epoch: 0, loader: null,
      rng: { algorithm: 'philox4x32-10', seed: 1 },
      config: { model: CONFIG_STUDY as never, tokenizer: 'bert-base-uncased', data: { kind: 'ct', num_scans: 1, train: 'x.json' } },
    });
    const { m: a, specs } = await load(ckpt);
    const ref = [...weights].map(([n, h]) => [n, { dtype: 'F32' as const, shape: h.shape, data: h.data }] as const);
    const { m: b } = await load(writeSafetensors(ref.map(([n, t]) => [`module.${n}`, t])), { config: CONFIG_STUDY, data: { kind: 'mri', numScans: 3 } });
    try {
      expect(specs).toEqual(['bert-base-uncased']);
      expect(a.data).toEqual({ kind: 'ct', shape: [6, 12, 12], numScans: 1, reportPrefix: null });
      expect(b.data).toEqual({ kind: 'mri', shape: [6, 12, 12], numScans: 3, reportPrefix: null });
      for (const m of [a, b]) {
        const t = m.model.stateDict().get('visual.trunk.blocks.1.attn.qkv.weight')!;
        expect(Array.from((await t.data()) as Float32Array)).toEqual(Array.from(weights.get('visual.trunk.blocks.1.attn.qkv.weight')!.data));
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('refuses missing tensors, wrong shapes and a file without a config, naming the file', async () => {
    const st = parseSafetensors(fileStudy);
    const keep = (skip: (n: string) => boolean, reshape?: string) =>
      writeSafetensors(st.names().filter((n) => !skip(n)).map((n) => [n, { dtype: 'F32' as const, shape: n === reshape ? [st.entry(n).shape.reduce((a, b) => a * b, 1)] : [...st.entry(n).shape], data: st.float32Sync(n) }] as const), st.metadata);
    const e = await load(keep((n) => n === 'visual.head.proj.weight')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StateDictError);
    expect((e as Error).message).toMatch(/^tiny\.safetensors: 1 model tensors are missing from the file \(visual\.head\.proj\.weight\)/);
    await expect(load(keep(() => false, 'visual.trunk.blocks.0.mlp.fc2.weight'))).rejects.toThrow(/tiny\.safetensors: .*visual\.trunk\.blocks\.0\.mlp\.fc2\.weight/);
    const bare = writeSafetensors(st.names().map((n) => [n, { dtype: 'F32' as const, shape: [...st.entry(n).shape], data: st.float32Sync(n) }] as const));
    await expect(load(bare)).rejects.toThrow(/tiny\.safetensors: the file carries no model config/);
  });
});

function volume(dims: [number, number, number], seed: number): Volume {
  const affine = [-1.2, 0, 0, 10, 0, 0.9, 0, -4, 0, 0, 2.5, 7, 0, 0, 0, 1];
  return { data: Float32Array.from(randomData(dims[0] * dims[1] * dims[2], seed, 0, 100)), dims, spacing: [1.2, 0.9, 2.5], affine, orientation: axcodes(affine), source: `v${seed}`, frames: 1, frame: 0, affineSource: 'sform' };
}

describe('prepareStudy', () => {
  it('repeats the scans in order to numScans and preprocesses each as evaluation does', () => {
    const vols = [volume([11, 9, 5], 1), volume([8, 13, 6], 2)];
    const data: ModelData = { kind: 'mri', shape: [5, 10, 10], numScans: 3, reportPrefix: null };
    const p = prepareStudy(vols, data);
    expect(p.shape).toEqual([3, 5, 10, 10]);
    expect(p.scans).toEqual([0, 1, 0]);
    const per = 500;
    [0, 1, 0].forEach((v, k) => expect(Array.from(p.images.subarray(k * per, (k + 1) * per))).toEqual(Array.from(preprocessScan(vols[v]!, { kind: 'mri' }, [5, 10, 10]).data)));
    const ct = prepareStudy(vols.slice(1), { kind: 'ct', shape: [4, 7, 9], numScans: 1, reportPrefix: null, pipeline: { kind: 'ct', targetSpacing: null } });
    expect(Array.from(ct.images)).toEqual(Array.from(preprocessScan(vols[1]!, { kind: 'ct', targetSpacing: null }, [4, 7, 9]).data));
  });
});

describe('embeddings and probabilities', () => {
  it('findingProbabilities equals the direct zero-shot computation; embeddings give the same from the host', async () => {
    const { m } = await load(fileStudy);
    try {
      const shape: [number, number, number, number] = [2, 7, 10, 9];
      const xs = [study(shape, 11), study(shape, 12), study(shape, 13)];
      const tpl = promptTemplate(m);
      expect(tpl('x')).toBe('This MRI study shows: x');
      // Direct: encodeImage of the batch, CustomTextCLIP.promptPairScores (GPU pair softmax).
      const img = new Float32Array(xs.length * xs[0]!.length);
      xs.forEach((x, i) => img.set(x, i * x.length));
      const direct = scope(() => noGrad(() => {
        const f = m.model.encodeImage(Tensor.from(dev, img, [3, 2, 1, 7, 10, 9]), { normalize: true });
        return m.model.promptPairScores(m.tokenizer, f, PROMPTS.map((p) => [p.negative, p.positive] as const), tpl);
      }));
      const ref = (await direct.data()) as Float32Array;
      direct.dispose();
      const emb = await embedStudies(m, xs, shape, { batchSize: 2 });
      expect(emb.length).toBe(3);
      for (let i = 0; i < 3; i++) {
        const p = await findingProbabilities(m, xs[i]!, shape, PROMPTS);
        expect(Object.keys(p)).toEqual(['mass', 'edema', 'bleed']);
        PROMPTS.forEach((q, f) => expect(Math.abs(p[q.name]! - ref[i * 3 + f]!), q.name).toBeLessThan(1e-6));
        expect(Math.hypot(...emb[i]!)).toBeCloseTo(1, 5);
        const h = await probabilitiesFromEmbedding(m, emb[i]!, PROMPTS);
        PROMPTS.forEach((q) => expect(Math.abs(h[q.name]! - p[q.name]!)).toBeLessThan(1e-5));
      }
      // The classifier is cached per prompt set.
      expect(promptClassifier(m, PROMPTS)).toBe(promptClassifier(m, PROMPTS));
      await expect(findingProbabilities(m, xs[0]!, [2, 7, 10, 10], PROMPTS)).rejects.toThrow(/study has 1260 values, shape \[2, 7, 10, 10\] needs 1400/);
    } finally {
      m.dispose();
    }
  });

  it('f16 weights give the f32 probabilities within 1e-2 and the relevance within 5e-2', async (ctx) => {
    if (!dev.caps.f16) return ctx.skip();
    const { m } = await load(fileStudy);
    const { m: h } = await load(fileStudy, { dtype: 'f16' });
    try {
      expect(h.model.stateDict().get('visual.trunk.blocks.0.attn.qkv.weight')!.dtype).toBe('f16');
      const x = study([2, 8, 12, 12], 5);
      const a = await findingProbabilities(m, x, [2, 8, 12, 12], PROMPTS);
      const b = await findingProbabilities(h, x, [2, 8, 12, 12], PROMPTS);
      for (const q of PROMPTS) expect(Math.abs(a[q.name]! - b[q.name]!)).toBeLessThan(1e-2);
      // The relevance pass runs in f16 too (probabilities and their gradient in half precision).
      const ra = await relevanceDetails(m, x, [2, 8, 12, 12], PROMPTS[0]!);
      const rb = await relevanceDetails(h, x, [2, 8, 12, 12], PROMPTS[0]!);
      const e = relErr(rb.tokens, ra.tokens);
      expect(e, `f16 relevance rel. error ${e}`).toBeLessThan(5e-2);
    } finally {
      m.dispose();
      h.dispose();
    }
  });
});

/** Float64 copies of the last block's weights and the head. */
async function blockWeights(m: LoadedModel): Promise<BlockWeights> {
  const sd = m.model.stateDict();
  const depth = m.built.visual!.cfg.depth;
  const get = async (n: string) => Float64Array.from((await sd.get(n)!.data()) as Float32Array);
  const b = `visual.trunk.blocks.${depth - 1}.`;
  return {
    n1w: await get(b + 'norm1.weight'), n1b: await get(b + 'norm1.bias'),
    qkvW: await get(b + 'attn.qkv.weight'), qkvB: await get(b + 'attn.qkv.bias'),
    projW: await get(b + 'attn.proj.weight'), projB: await get(b + 'attn.proj.bias'),
    n2w: await get(b + 'norm2.weight'), n2b: await get(b + 'norm2.bias'),
    fc1W: await get(b + 'mlp.fc1.weight'), fc1B: await get(b + 'mlp.fc1.bias'),
    fc2W: await get(b + 'mlp.fc2.weight'), fc2B: await get(b + 'mlp.fc2.bias'),
    nfw: await get('visual.trunk.norm.weight'), nfb: await get('visual.trunk.norm.bias'),
    headW: await get('visual.head.proj.weight'),
  };
}

/**
 * The last block's input windows in the reference row layout, from block depth−2's output: patch rows
 * stay in flat order; prefix rows are averaged (coarser last level) or copied (finer), as hierarchy.ts does.
 */
function lastBlockWindows(prev: Float32Array, prevShape: number[], windows: number, P: number): Float64Array[] {
  const [Wa, rows, C] = prevShape as [number, number, number];
  const La = rows - P;
  const T = Wa * La;
  const L = T / windows;
  const patch = (t: number, c: number) => prev[((Math.floor(t / La) * rows) + P + (t % La)) * C + c]!;
  return Array.from({ length: windows }, (_, w) => {
    const x = new Float64Array((P + L) * C);
    for (let p = 0; p < P; p++) {
      for (let c = 0; c < C; c++) {
        let v = 0;
        if (windows <= Wa) {
          const k = Wa / windows;
          for (let a = 0; a < k; a++) v += prev[((w * k + a) * rows + p) * C + c]! / k;
        } else v = prev[((Math.floor(w / (windows / Wa))) * rows + p) * C + c]!;
        x[p * C + c] = v;
      }
    }
    for (let j = 0; j < L; j++) for (let c = 0; c < C; c++) x[(P + j) * C + c] = patch(w * L + j, c);
    return x;
  });
}

describe('relevanceMap', () => {
  const cases = [
    { name: 'slice → study (one window)', cfg: CONFIG_STUDY, shape: [2, 7, 10, 9] as [number, number, number, number], target: 'logit' as const },
    { name: 'study → scan with a register token (3 windows)', cfg: CONFIG_SCAN, shape: [3, 5, 9, 13] as [number, number, number, number], target: 'logit' as const },
    { name: 'probability target', cfg: CONFIG_SCAN, shape: [2, 6, 12, 8] as [number, number, number, number], target: 'probability' as const },
  ];
  for (const c of cases) {
    it(`matches the float64 closed form: ${c.name}`, async () => {
      const { m } = await load(c.cfg === CONFIG_STUDY ? fileStudy : await tinyModelFile(dev, c.cfg, 9));
      try {
        const x = study(c.shape, 21);
        const prompt = PROMPTS[1]!;
        const r = await relevanceDetails(m, x, c.shape, prompt, { target: c.target });
        const vis = m.built.visual!;
        const P = 1 + vis.cfg.regTokens;
        const [S, D, H, W] = c.shape;
        const g = [Math.floor(D / 2), Math.floor(H / 4), Math.floor(W / 4)];
        expect(r.tokenGrid).toEqual([S, ...g]);
        // Block depth−2's output (row layout) is the last block's input before re-partitioning.
        const out = scope(() => noGrad(() => vis.forward(Tensor.from(dev, x, [1, S, 1, D, H, W]), { blocks: true, tokens: false })));
        const prev = out.blocks![vis.cfg.depth - 2]!;
        const prevData = (await prev.data()) as Float32Array;
        const prevShape = [...prev.shape];
        for (const t of [out.pooled, out.features, ...out.blocks!]) t.dispose();
        const lastLevel = vis.cfg.levels[vis.cfg.depth - 1];
        const windows = lastLevel === 'study' ? 1 : lastLevel === 'scan' ? S : S * g[0]!;
        const cls = (await promptClassifier(m, [prompt]).data()) as Float32Array; // [E, 2]: (negative, positive)
        const E = cls.length / 2;
        const ref = relevanceRef({
          windows: lastBlockWindows(prevData, prevShape, windows, P), P, L: (S * g[0]! * g[1]! * g[2]!) / windows, C: vis.cfg.embedDim, heads: vis.cfg.numHeads,
          eps: vis.cfg.layerNormEps, w: await blockWeights(m), s: Math.exp(await m.model.logitScaleParam.item()),
          cPos: Float64Array.from({ length: E }, (_, e) => cls[e * 2 + 1]!), cNeg: Float64Array.from({ length: E }, (_, e) => cls[e * 2]!), target: c.target,
        });
        const err = relErr(r.tokens, ref.tokens);
        expect(Math.max(...ref.tokens)).toBeGreaterThan(0);
        expect(err, `token relevance rel. error ${err}`).toBeLessThan(1e-5);
        expect(Math.abs(r.probability - 1 / (1 + Math.exp(ref.logits[0] - ref.logits[1])))).toBeLessThan(1e-5);
        // The map is the token grid upsampled per scan (trilinear, align_corners=False) to [S, D, H, W].
        expect(r.map.length).toBe(S * D * H * W);
        const n = g[0]! * g[1]! * g[2]!;
        for (let s = 0; s < S; s++) {
          const up = resizeTrilinear({ data: r.tokens.slice(s * n, (s + 1) * n), shape: g as [number, number, number] }, [D, H, W]).data;
          expect(Array.from(r.map.subarray(s * D * H * W, (s + 1) * D * H * W))).toEqual(Array.from(up));
        }
        // Weights keep requiring grad and received none.
        for (const [name, t] of m.model.namedParameters()) {
          expect(t.requiresGrad, name).toBe(true);
          expect(t.grad, name).toBeNull();
        }
      } finally {
        m.dispose();
      }
    });
  }
});
