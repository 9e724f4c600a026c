// Gradient checkpointing: gradients of every parameter and of the input equal the uncheckpointed ones
// (generic segments with dropout, the HLIP visual trunk with slice/scan/study blocks and drop path,
// BERT, the open_clip text transformer), and the peak of live GPU memory during backward drops.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { BertModel } from '../src/models/bert.js';
import { visualConfigFromJson } from '../src/models/configs.js';
import { TextTransformer, tokenBatch, type TokenBatch } from '../src/models/text-transformer.js';
import { HlipVisualEncoder } from '../src/models/visual.js';
import type { Module } from '../src/nn/module.js';
import { add, concat, dropout, gelu, linear, mul, reshape, sum } from '../src/ops/index.js';
import { checkpoint } from '../src/tensor/checkpoint.js';
import { PhiloxStream } from '../src/tensor/rng.js';
import { scope, scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice } from './helpers/device.js';
import { randomData, relErr } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

/** Successive Philox uniforms: the same sequence for the same seed. */
function seeded(seed: number): () => number {
  const s = new PhiloxStream(seed, 7);
  let i = 0;
  return () => s.uniform(i++);
}

function leaf(data: ArrayLike<number>, shape: number[]): Tensor {
  const t = Tensor.from(dev, data, shape);
  t.requiresGrad = true;
  return t;
}

/** Host copies of the gradients of `tensors` (by name; one readback for all), then clears them. */
async function takeGrads(tensors: [string, Tensor][]): Promise<Map<string, Float32Array>> {
  const have = tensors.filter(([, t]) => t.grad);
  const out = new Map<string, Float32Array>();
  if (have.length) {
    const flat = await scopeAsync(() => concat(have.map(([, t]) => reshape(t.grad as Tensor, [t.size])), 0).data());
    let at = 0;
    for (const [n, t] of have) {
      out.set(n, (flat as Float32Array).slice(at, at + t.size));
      at += t.size;
    }
  }
  clearGrads(tensors);
  return out;
}

function clearGrads(tensors: [string, Tensor][]): void {
  for (const [, t] of tensors) {
    t.grad?.dispose();
    t.grad = null;
  }
}

function expectSameGrads(got: Map<string, Float32Array>, ref: Map<string, Float32Array>): void {
  expect([...got.keys()].sort()).toEqual([...ref.keys()].sort());
  expect(ref.size).toBeGreaterThan(0);
  for (const [n, g] of ref) {
    let any = 0;
    for (const v of g) any = Math.max(any, Math.abs(v));
    expect(any, `${n} has a zero gradient`).toBeGreaterThan(0);
    expect(relErr(got.get(n) as Float32Array, g), n).toBeLessThanOrEqual(1e-6);
  }
}

/** A loss that weights every output element differently (so every gradient is non-trivial). */
function weightedSum(y: Tensor, seed: number): Tensor {
  return scope(() => sum(mul(y, Tensor.from(dev, randomData(y.size, seed), [...y.shape]))));
}

/** Forward + backward twice (plain, checkpointed) with the same randomness; returns both gradient sets. */
async function bothWays(named: [string, Tensor][], setCkpt: (on: boolean) => void, loss: (seed: number) => Tensor): Promise<[Map<string, Float32Array>, Map<string, Float32Array>]> {
  const res: Map<string, Float32Array>[] = [];
  for (const on of [false, true]) {
    setCkpt(on);
    scope(() => loss(17).backward());
    res.push(await takeGrads(named));
  }
  return [res[0] as Map<string, Float32Array>, res[1] as Map<string, Float32Array>];
}

const tinyVisual = (extra: Record<string, unknown> = {}) =>
  new HlipVisualEncoder(
    dev,
    visualConfigFromJson({
      img_size: [4, 8, 8], patch_size: [2, 4, 4], embed_dim: 12, depth: 4, num_heads: 2, max_num_scans: 3, mlp_ratio: 2,
      slice_attn_indexes: [0, 2], scan_attn_indexes: [1], study_attn_indexes: [3], drop_path_rate: 0.3, out_dim: 8, ...extra,
    }),
  );

function tinyBert(): BertModel {
  return new BertModel(dev, { vocabSize: 32, hidden: 16, layers: 3, heads: 2, intermediate: 32, maxPositions: 8, typeVocabSize: 2, eps: 1e-12, padId: 0 }, 5);
}

function tokens(B: number, T: number, seed: number): TokenBatch {
  const r = randomData(B * T, seed, 1, 31);
  const ids = Int32Array.from(r, (v) => Math.floor(v));
  for (let b = 0; b < B; b++) for (let t = T - 1 - (b % 3); t < T; t++) ids[b * T + t] = 0; // some padding
  return tokenBatch(ids, [B, T]);
}

const named = (m: Module, extra: [string, Tensor][] = []): [string, Tensor][] => [...m.namedParameters(), ...extra];

describe('checkpoint()', () => {
  it('a segment with parameters it closes over, a dropout seeded from ctx.random and a kept tensor input: same gradients', async () => {
    const w1 = leaf(randomData(6 * 5, 1), [6, 5]);
    const b1 = leaf(randomData(6, 2), [6]);
    const w2 = leaf(randomData(5 * 6, 3), [5, 6]);
    const x = leaf(randomData(4 * 5, 4), [4, 5]);
    const gate = Tensor.from(dev, randomData(4 * 5, 5), [4, 5]); // an input without gradient
    const seg = (h: Tensor, g: Tensor, random: () => number) =>
      scope(() => add(h, mul(linear(dropout(gelu(linear(h, w1, b1)), 0.3, Math.floor(random() * 2 ** 31)), w2), g)));
    let ckpt = false;
    const [ref, got] = await bothWays(
      [['x', x], ['w1', w1], ['b1', b1], ['w2', w2]],
      (on) => (ckpt = on),
      (seed) => {
        const random = seeded(seed);
        // Two segments in a row, the second one's input the first one's output.
        const run = (h: Tensor) => (ckpt ? checkpoint((xs, ctx) => seg(xs[0] as Tensor, xs[1] as Tensor, ctx.random), [h, gate], { random }) : seg(h, gate, random));
        return weightedSum(run(run(x)), seed);
      },
    );
    expectSameGrads(got, ref);
    for (const t of [w1, b1, w2, x, gate]) t.dispose();
  });

  it('no input needs a gradient: the parameters listed in opts.params still get theirs', async () => {
    const w = leaf(randomData(3 * 4, 8), [3, 4]);
    const x = Tensor.from(dev, randomData(2 * 4, 9), [2, 4]);
    let ckpt = false;
    const [ref, got] = await bothWays([['w', w]], (on) => (ckpt = on), (seed) => weightedSum(ckpt ? checkpoint((xs) => gelu(linear(xs[0] as Tensor, w)), [x], { params: [w] }) : scope(() => gelu(linear(x, w))), seed));
    expectSameGrads(got, ref);
    w.dispose();
    x.dispose();
  });

  it('the re-run must draw what the forward drew', async () => {
    const x = leaf([1, 2, 3], [3]);
    let k = 0;
    await scopeAsync(async () => {
      // A segment whose number of draws changes between runs is not deterministic: backward says so.
      const y = checkpoint((xs, ctx) => {
        for (let i = 0; i <= k; i++) ctx.random();
        k++;
        return mul(xs[0] as Tensor, xs[0] as Tensor);
      }, [x]);
      expect(() => sum(y).backward()).toThrow(/drew more/);
    });
    x.dispose();
  });
});

describe('gradient checkpointing in the models', () => {
  it('HLIP visual encoder (slice, scan, slice, study blocks; drop path; random scan positions): every parameter and the input', async () => {
    const m = tinyVisual();
    const image = leaf(randomData(2 * 2 * 4 * 8 * 8, 21), [2, 2, 1, 4, 8, 8]);
    const [ref, got] = await bothWays(named(m, [['image', image]]), (on) => (m.gradCheckpointing = on), (seed) =>
      scope(() => {
        const o = m.forward(image, { tokens: false, train: true, random: seeded(seed) });
        return weightedSum(o.features, seed);
      }),
    );
    // Every block parameter is reached (drop path 0.3 must not have dropped a whole block here).
    expect(got.has('trunk.blocks.3.mlp.fc2.weight')).toBe(true);
    expectSameGrads(got, ref);
    image.dispose();
    m.dispose();
  });

  it('BERT: every parameter', async () => {
    const m = tinyBert();
    const tok = tokens(3, 8, 31);
    const [ref, got] = await bothWays(named(m), (on) => (m.gradCheckpointing = on), (seed) => scope(() => weightedSum(m.forward(tok), seed)));
    expectSameGrads(got, ref);
    m.dispose();
  });

  it('open_clip text transformer: every parameter', async () => {
    const m = new TextTransformer(dev, { contextLength: 8, vocabSize: 32, width: 16, heads: 2, layers: 3, outputDim: 8, seed: 4 });
    const tok = tokens(3, 8, 41);
    const [ref, got] = await bothWays(named(m), (on) => (m.gradCheckpointing = on), (seed) => scope(() => weightedSum(m.encode(tok), seed)));
    expectSameGrads(got, ref);
    m.dispose();
  });

  it('peak live GPU bytes of forward + backward drop with checkpointing (visual trunk and BERT)', async () => {
    const v = tinyVisual({ img_size: [8, 16, 16], embed_dim: 36, mlp_ratio: 4, depth: 6, slice_attn_indexes: [0, 2, 4], scan_attn_indexes: [1], study_attn_indexes: [3, 5], drop_path_rate: 0 });
    const image = Tensor.from(dev, randomData(2 * 8 * 16 * 16, 51), [1, 2, 1, 8, 16, 16]);
    const bert = new BertModel(dev, { vocabSize: 32, hidden: 32, layers: 6, heads: 2, intermediate: 128, maxPositions: 32, typeVocabSize: 2, eps: 1e-12, padId: 0 }, 9);
    const tok = tokens(4, 32, 52);
    const peaks = async (m: { gradCheckpointing: boolean } & Module, loss: () => Tensor): Promise<number[]> => {
      const out: number[] = [];
      for (const on of [false, true]) {
        m.gradCheckpointing = on;
        const base = dev.pool.liveBytes;
        dev.pool.resetPeak();
        scope(() => loss().backward());
        out.push(dev.pool.peakBytes - base);
        clearGrads(named(m));
      }
      return out;
    };
    const [vPlain, vCkpt] = await peaks(v, () => weightedSum(v.forward(image, { tokens: false, train: true, random: seeded(1) }).features, 3));
    const [bPlain, bCkpt] = await peaks(bert, () => weightedSum(bert.forward(tok), 4));
    // Six blocks' activations against one block's plus six block inputs (parameter gradients count in both).
    expect(vCkpt).toBeLessThan(0.75 * vPlain);
    expect(bCkpt).toBeLessThan(0.75 * bPlain);
    image.dispose();
    v.dispose();
    bert.dispose();
  });
});
