import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { cpuSubgroupPathAvailable, matmul as matmulKernel, type MatmulPath } from '../src/kernels/matmul.js';
import { planDirect } from '../src/kernels/matmul_direct.js';
import { fourLaneSimd } from '../src/kernels/lanes.js';
import { sg4Capable } from '../src/kernels/matmul_sg4.js';
import * as ops from '../src/ops/index.js';
import { noGrad, scope, scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { geluGradRef, geluRef, linearRef, matmulRef, patchEmbedRef, patchifyRef, sumToRef, transposeRef } from './helpers/matmul_ref.js';
import { randomNd, relErr, type Nd } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

/** f16 rounding of host data, so references see the values the GPU sees. */
async function roundTo(dtype: 'f32' | 'f16', x: Nd): Promise<Nd> {
  if (dtype === 'f32') return x;
  const t = Tensor.from(dev, x.data, x.shape, 'f16');
  const d = await t.data();
  t.dispose();
  return { data: Float64Array.from(d), shape: x.shape };
}

interface MmCase {
  a: number[];
  b: number[];
  /** Operands stored transposed and passed as transposed views. */
  transA?: boolean;
  transB?: boolean;
  dtype?: 'f32' | 'f16';
}

/**
 * matmul forward vs float64, backward vs the analytic gradients dA = sumTo(G·Bᵀ), dB = sumTo(Aᵀ·G) in
 * float64 (finite differences would cost K·M·N per element for these sizes).
 */
async function checkMatmul(c: MmCase): Promise<void> {
  const dtype = c.dtype ?? 'f32';
  const tol = dtype === 'f16' ? 1e-2 : 1e-5;
  const a = await roundTo(dtype, randomNd(c.a, 11));
  const b = await roundTo(dtype, randomNd(c.b, 12));
  await scopeAsync(async () => {
    const store = (x: Nd, t: boolean) => (t && x.shape.length > 1 ? transposeRef(x) : x);
    const ta = Tensor.from(dev, store(a, !!c.transA).data, store(a, !!c.transA).shape, dtype);
    const tb = Tensor.from(dev, store(b, !!c.transB).data, store(b, !!c.transB).shape, dtype);
    ta.requiresGrad = true;
    tb.requiresGrad = true;
    const av = c.transA ? ops.transpose(ta) : ta;
    const bv = c.transB ? ops.transpose(tb) : tb;
    const y = ops.matmul(av, bv);
    // Reference on ≥2-D operands, then drop promoted axes like numpy.
    const a2: Nd = a.shape.length === 1 ? { data: a.data, shape: [1, a.shape[0]!] } : a;
    const b2: Nd = b.shape.length === 1 ? { data: b.data, shape: [b.shape[0]!, 1] } : b;
    const ref = matmulRef(a2, b2);
    const refShape = ref.shape.slice(0, -2);
    if (a.shape.length > 1) refShape.push(ref.shape[ref.shape.length - 2]!);
    if (b.shape.length > 1) refShape.push(ref.shape[ref.shape.length - 1]!);
    expect(y.shape).toEqual(refShape);
    expect(relErr(await y.data(), ref.data), 'forward').toBeLessThanOrEqual(tol);
    const r = await roundTo(dtype, randomNd(refShape, 13));
    y.backward(Tensor.from(dev, r.data, r.shape, dtype));
    const r2: Nd = { data: r.data, shape: ref.shape };
    const ga = sumToRef(matmulRef(r2, transposeRef(b2)), a2.shape);
    const gb = sumToRef(matmulRef(transposeRef(a2), r2), b2.shape);
    // Gradients of the stored (possibly transposed) tensors.
    const wantA = store({ data: ga.data, shape: a.shape }, !!c.transA);
    const wantB = store({ data: gb.data, shape: b.shape }, !!c.transB);
    expect(ta.grad!.shape).toEqual(wantA.shape);
    expect(tb.grad!.shape).toEqual(wantB.shape);
    expect(relErr(await ta.grad!.data(), wantA.data), 'grad a').toBeLessThanOrEqual(tol);
    expect(relErr(await tb.grad!.data(), wantB.data), 'grad b').toBeLessThanOrEqual(tol);
  });
}

describe('matmul forward and backward', () => {
  const mk = (M: number, K: number, N: number): MmCase => ({ a: [M, K], b: [K, N] });
  const cases: [string, MmCase][] = [
    ['1×1×1', mk(1, 1, 1)],
    ['7×33 · 33×129', mk(7, 33, 129)],
    ['129×1000 · 1000×7', mk(129, 1000, 7)],
    ['33×7 · 7×1000', mk(33, 7, 1000)],
    ['1000×1 · 1×33', mk(1000, 1, 33)],
    ['64×96 · 96×40 (cpu path on llvmpipe)', mk(64, 96, 40)],
    ['129×1000 · 1000×33 (cpu path, odd K)', mk(129, 1000, 33)],
    ['batched [3,7,33]·[3,33,129]', { a: [3, 7, 33], b: [3, 33, 129] }],
    ['broadcast [2,1,5,7]·[3,7,4]', { a: [2, 1, 5, 7], b: [3, 7, 4] }],
    ['weight broadcast [4,33,129]·[129,7]', { a: [4, 33, 129], b: [129, 7] }],
    ['left broadcast [7,33]·[2,33,9]', { a: [7, 33], b: [2, 33, 9] }],
    ['Aᵀ [33,7]ᵀ·[33,129]', { a: [7, 33], b: [33, 129], transA: true }],
    ['Bᵀ [7,33]·[129,33]ᵀ', { a: [7, 33], b: [33, 129], transB: true }],
    ['both transposed, batched', { a: [2, 9, 33], b: [2, 33, 7], transA: true, transB: true }],
    ['Aᵀ on the cpu path [96,64]ᵀ·[96,48]', { a: [64, 96], b: [96, 48], transA: true }],
    ['vector · matrix', { a: [33], b: [33, 7] }],
    ['matrix · vector', { a: [7, 33], b: [33] }],
    ['vector · vector', { a: [129], b: [129] }],
    ['batched matrix · vector', { a: [3, 5, 7], b: [7] }],
  ];
  for (const [name, c] of cases) it(name, () => checkMatmul(c));

  it('f16 storage, f32 accumulation', async () => {
    if (!dev.caps.f16) return;
    await checkMatmul({ a: [33, 129], b: [129, 7], dtype: 'f16' });
    await checkMatmul({ a: [2, 64, 96], b: [96, 40], dtype: 'f16' });
  });

  it('small shapes agree with finite differences', async () => {
    await checkOp(dev, { inputs: [{ shape: [2, 3, 4] }, { shape: [4, 5] }], run: ([a, b]) => ops.matmul(a!, b!), ref: ([a, b]) => matmulRef(a!, b!) });
  });

  it('rejects mismatched shapes and dtypes', () => {
    const a = ops.zeros(dev, [3, 4]);
    const b = ops.zeros(dev, [5, 6]);
    const c = ops.zeros(dev, [4, 2], 'i32');
    const s = ops.zeros(dev, []);
    expect(() => ops.matmul(a, b)).toThrow(/inner dimensions 4 and 5/);
    expect(() => ops.matmul(a, c)).toThrow(/f32 and i32|i32/);
    expect(() => ops.matmul(s, a)).toThrow(/at least one axis/);
    for (const t of [a, b, c, s]) t.dispose();
  });
});

describe('matmul kernel paths', () => {
  // Both kernel families on the same problems (the CPU one only where the adapter has it), with a
  // fused bias + GELU epilogue and the pre-activation stored beside the output.
  interface KCase {
    batch: number;
    M: number;
    K: number;
    N: number;
    /** B stored [N, K] and passed transposed; or one B shared by all batches (batch stride 0). */
    b?: 'transposed' | 'shared';
    dtype?: 'f32' | 'f16';
  }
  const cases: KCase[] = [
    { batch: 1, M: 64, K: 64, N: 48 },
    { batch: 1, M: 100, K: 512 + 96, N: 37 },
    { batch: 3, M: 40, K: 64, N: 33 },
    { batch: 2, M: 33, K: 1056, N: 20, b: 'transposed' },
    { batch: 3, M: 35, K: 96, N: 70, b: 'shared' },
    { batch: 1, M: 70, K: 640, N: 40, dtype: 'f16' },
  ];
  for (const c of cases) {
    const dtype = c.dtype ?? 'f32';
    it(`[${c.batch}, ${c.M}, ${c.K}]·[${c.K}, ${c.N}]${c.b ? ` (B ${c.b})` : ''} ${dtype}`, async () => {
      if (dtype === 'f16' && !dev.caps.f16) return;
      const { batch, M, K, N } = c;
      const paths: MatmulPath[] = ['generic'];
      if (cpuSubgroupPathAvailable(dev)) paths.push('cpu-subgroup', 'cpu-direct');
      const a = await roundTo(dtype, randomNd([batch, M, K], 1));
      const bb = c.b === 'shared' ? 1 : batch;
      const b = await roundTo(dtype, randomNd([bb, K, N], 2));
      const bias = await roundTo(dtype, randomNd([N], 3));
      const pre = matmulRef(a, b);
      for (let i = 0; i < pre.data.length; i++) pre.data[i]! += bias.data[i % N]!;
      const y = pre.data.map(geluRef);
      const tol = dtype === 'f16' ? 1e-2 : 1e-5;
      for (const path of paths) {
        const ta = Tensor.from(dev, a.data, a.shape, dtype);
        const stored = c.b === 'transposed' ? transposeRef(b) : b;
        const tb = Tensor.from(dev, stored.data, stored.shape, dtype);
        const bView = c.b === 'transposed' ? tb.view([batch, K, N], [K * N, 1, K], 0) : c.b === 'shared' ? tb.view([batch, K, N], [0, N, 1], 0) : tb;
        const tbias = Tensor.from(dev, bias.data, [N], dtype);
        const out = Tensor.empty(dev, [2, batch, M, N], dtype);
        const n = batch * M * N;
        if (path === 'cpu-direct' && !planDirect(ta, bView, { buffer: out.buffer, dtype, shape: [batch, M, N], strides: [M * N, N, 1], offset: 0 }, { batch, M, N, K })) {
          // Layouts the direct kernel cannot read (B rows not 4-aligned): the other paths cover them.
          for (const t of [ta, tb, bView, tbias, out]) t.dispose();
          continue;
        }
        const ran = matmulKernel(dev, ta, bView, out.view([batch, M, N], [M * N, N, 1], 0), { bias: tbias, gelu: true, preOffset: n }, { path });
        expect(ran).toBe(path);
        const got = await out.data();
        expect(relErr(got.subarray(0, n), y), `${path} output`).toBeLessThanOrEqual(tol);
        expect(relErr(got.subarray(n), pre.data), `${path} pre-activation`).toBeLessThanOrEqual(tol);
        for (const t of [ta, tb, bView, tbias, out]) t.dispose();
      }
    });
  }
});

describe('matmul sg4 kernel (4-lane subgroups)', () => {
  // The SwiftShader kernel (16 × 8 tiles, 4 K-steps per iteration), forced so that llvmpipe runs it
  // too: sizes off the tile and step multiples, batches, shared and transposed operands, a transposed
  // output, every epilogue, and shapes where it computes outᵀ = bᵀ·aᵀ (fewer padded tiles).
  interface SCase {
    batch: number;
    M: number;
    K: number;
    N: number;
    a?: 'transposed';
    b?: 'transposed' | 'shared';
    out?: 'transposed';
    epi: 'none' | 'bias' | 'gelu' | 'all';
    dtype?: 'f32' | 'f16';
  }
  const cases: SCase[] = [
    { batch: 1, M: 1, K: 1, N: 1, epi: 'none' },
    { batch: 1, M: 7, K: 33, N: 129, epi: 'none' },
    { batch: 1, M: 129, K: 7, N: 33, epi: 'bias' },
    { batch: 1, M: 33, K: 129, N: 7, a: 'transposed', epi: 'gelu' },
    { batch: 3, M: 7, K: 33, N: 129, b: 'transposed', epi: 'all' },
    { batch: 2, M: 33, K: 1, N: 129, epi: 'all' },
    { batch: 3, M: 129, K: 33, N: 7, b: 'shared', epi: 'bias' },
    { batch: 2, M: 33, K: 129, N: 33, a: 'transposed', b: 'transposed', out: 'transposed', epi: 'none' },
    { batch: 2, M: 7, K: 129, N: 33, out: 'transposed', epi: 'all' },
    { batch: 1, M: 33, K: 129, N: 7, epi: 'all', dtype: 'f16' },
  ];
  for (const c of cases) {
    const dtype = c.dtype ?? 'f32';
    const name = `[${c.batch}, ${c.M}, ${c.K}]·[${c.K}, ${c.N}] A ${c.a ?? 'plain'}, B ${c.b ?? 'plain'}, out ${c.out ?? 'plain'}, epilogue ${c.epi} ${dtype}`;
    it(name, async () => {
      if (!sg4Capable(dev) || (dtype === 'f16' && !dev.caps.f16)) return;
      const { batch, M, K, N } = c;
      const a = await roundTo(dtype, randomNd([batch, M, K], 21));
      const bb = c.b === 'shared' ? 1 : batch;
      const b = await roundTo(dtype, randomNd([bb, K, N], 22));
      const bias = await roundTo(dtype, randomNd([N], 23));
      const useBias = c.epi === 'bias' || c.epi === 'all';
      const gelu = c.epi === 'gelu' || c.epi === 'all';
      const pre = matmulRef(a, b);
      if (useBias) for (let i = 0; i < pre.data.length; i++) pre.data[i]! += bias.data[i % N]!;
      const y = gelu ? pre.data.map(geluRef) : pre.data;
      const sa = c.a === 'transposed' ? transposeRef(a) : a;
      const ta = Tensor.from(dev, sa.data, sa.shape, dtype);
      const aView = c.a === 'transposed' ? ta.view([batch, M, K], [M * K, 1, M], 0) : ta;
      const sb = c.b === 'transposed' ? transposeRef(b) : b;
      const tb = Tensor.from(dev, sb.data, sb.shape, dtype);
      const bView = c.b === 'transposed' ? tb.view([batch, K, N], [K * N, 1, K], 0) : c.b === 'shared' ? tb.view([batch, K, N], [0, N, 1], 0) : tb;
      const tbias = Tensor.from(dev, bias.data, [N], dtype);
      // Output at an offset (and its pre-activation block after it), row-major or transposed.
      const n = batch * M * N;
      const off = 5;
      const out = ops.zeros(dev, [off + 2 * n], dtype);
      const oView = out.view([batch, M, N], c.out === 'transposed' ? [M * N, 1, M] : [M * N, N, 1], off);
      const epi = { ...(useBias ? { bias: tbias } : {}), gelu, ...(c.epi === 'all' ? { preOffset: off + n } : {}) };
      expect(matmulKernel(dev, aView, bView, oView, epi, { path: 'sg4' })).toBe('sg4');
      const got = (await out.data()).subarray(off);
      // Back to row-major [batch, M, N] for the comparison.
      const rowMajor = (x: ArrayLike<number>) => (c.out === 'transposed' ? transposeRef({ data: Float64Array.from(x), shape: [batch, N, M] }).data : x);
      const tol = dtype === 'f16' ? 1e-2 : 1e-5;
      expect(relErr(rowMajor(got.subarray(0, n)), y), 'output').toBeLessThanOrEqual(tol);
      if (c.epi === 'all') expect(relErr(rowMajor(got.subarray(n)), pre.data), 'pre-activation').toBeLessThanOrEqual(tol);
      else expect(Array.from(got.subarray(n)).every((v) => v === 0), 'nothing written past the output').toBe(true);
      for (const t of [ta, aView, tb, bView, tbias, out, oView]) t.dispose();
    });
  }

  it('is the automatic path exactly on 4-lane subgroup adapters, and the ops use it', async () => {
    const a = randomNd([1, 40, 24], 31);
    const b = randomNd([1, 24, 20], 32);
    const ta = Tensor.from(dev, a.data, a.shape);
    const tb = Tensor.from(dev, b.data, b.shape);
    const out = Tensor.empty(dev, [1, 40, 20]);
    const ran = matmulKernel(dev, ta, tb, out);
    expect(ran === 'sg4').toBe(fourLaneSimd(dev));
    expect(relErr(await out.data(), matmulRef(a, b).data)).toBeLessThanOrEqual(1e-5);
    for (const t of [ta, tb, out]) t.dispose();
  });
});

describe('linear', () => {
  const variants: [string, { gelu: boolean; bias: boolean; wT: boolean; x: number[]; outF: number }][] = [
    ['bias', { gelu: false, bias: true, wT: false, x: [7, 33], outF: 9 }],
    ['bias + gelu, 3-D input', { gelu: true, bias: true, wT: false, x: [2, 5, 33], outF: 7 }],
    ['gelu without bias, transposed weight', { gelu: true, bias: false, wT: true, x: [3, 17], outF: 6 }],
    ['1-D input', { gelu: false, bias: true, wT: false, x: [9], outF: 4 }],
  ];
  for (const [name, v] of variants) {
    it(`${name} (finite differences)`, async () => {
      const inF = v.x[v.x.length - 1]!;
      const wShape = v.wT ? [inF, v.outF] : [v.outF, inF];
      await checkOp(dev, {
        inputs: [{ shape: v.x, lo: -2, hi: 2 }, { shape: wShape }, ...(v.bias ? [{ shape: [v.outF] }] : [])],
        run: ([x, w, b]) => ops.linear(x!, w!, b ?? null, { ...(v.gelu ? { activation: 'gelu' as const } : {}), weightTransposed: v.wT }),
        ref: ([x, w, b]) => linearRef(x!, w!, b ?? null, v.gelu, v.wT),
      });
    });
  }

  it('bias + gelu on the cpu path, analytic gradients', async () => {
    const x = randomNd([2, 48, 64], 5, -2, 2);
    const w = randomNd([96, 64], 6);
    const b = randomNd([96], 7);
    await scopeAsync(async () => {
      const tx = Tensor.from(dev, x.data, x.shape);
      const tw = Tensor.from(dev, w.data, w.shape);
      const tb = Tensor.from(dev, b.data, b.shape);
      for (const t of [tx, tw, tb]) t.requiresGrad = true;
      const y = ops.linear(tx, tw, tb, { activation: 'gelu' });
      const want = linearRef(x, w, b, true);
      expect(relErr(await y.data(), want.data)).toBeLessThanOrEqual(1e-5);
      const g = randomNd(want.shape, 8);
      y.backward(Tensor.from(dev, g.data, g.shape));
      const pre = linearRef(x, w, b, false);
      const gh: Nd = { data: pre.data.map((p, i) => g.data[i]! * geluGradRef(p)), shape: [2 * 48, 96] };
      const x2: Nd = { data: x.data, shape: [96, 64] };
      const dx = matmulRef(gh, w);
      const dw = matmulRef(transposeRef(gh), x2);
      const db = sumToRef(gh, [96]);
      expect(relErr(await tx.grad!.data(), dx.data), 'dx').toBeLessThanOrEqual(1e-5);
      expect(relErr(await tw.grad!.data(), dw.data), 'dw').toBeLessThanOrEqual(1e-5);
      expect(relErr(await tb.grad!.data(), db.data), 'db').toBeLessThanOrEqual(1e-5);
    });
  });

  it('f16 bias + gelu', async () => {
    if (!dev.caps.f16) return;
    await checkOp(dev, {
      dtype: 'f16',
      inputs: [{ shape: [5, 33], lo: -2, hi: 2 }, { shape: [7, 33] }, { shape: [7] }],
      run: ([x, w, b]) => ops.linear(x!, w!, b!, { activation: 'gelu' }),
      ref: ([x, w, b]) => linearRef(x!, w!, b!, true),
    });
  });

  it('stores the GELU pre-activation only when a gradient will need it', async () => {
    const x = ops.ones(dev, [4, 8]);
    const w = ops.ones(dev, [3, 8]);
    w.requiresGrad = true;
    const inference = noGrad(() => ops.linear(x, w, null, { activation: 'gelu' }));
    expect(inference.storage.bytes).toBe(4 * 3 * 4);
    const training = ops.linear(x, w, null, { activation: 'gelu' });
    expect(training.storage.bytes).toBe(2 * 4 * 3 * 4);
    expect(relErr(await training.data(), await inference.data())).toBe(0);
    for (const t of [x, w, inference, training]) t.dispose();
  });
});

describe('memory', () => {
  it('a training-style loop keeps live bytes flat', async () => {
    // Big enough for the CPU kernel (packed operands, partial-sum scratch) where the adapter has it.
    const x = ops.randn(dev, [2, 64, 128], 1);
    const w1 = ops.randn(dev, [256, 128], 2, { std: 0.1 });
    const b1 = ops.zeros(dev, [256]);
    const w2 = ops.randn(dev, [256, 64], 3, { std: 0.1 });
    for (const t of [w1, b1, w2]) t.requiresGrad = true;
    const live: number[] = [];
    for (let step = 0; step < 6; step++) {
      scope(() => {
        const h = ops.linear(x, w1, b1, { activation: 'gelu' });
        const y = ops.matmul(h, w2);
        ops.sum(y).backward();
      });
      for (const t of [w1, b1, w2]) {
        t.grad?.dispose();
        t.grad = null;
      }
      await dev.sync();
      live.push(dev.pool.liveBytes);
    }
    expect(live[live.length - 1]).toBe(live[1]);
    for (const t of [x, w1, b1, w2]) t.dispose();
  });
});

describe('patchify3d and patchEmbed3d', () => {
  it('patchify3d drops remainders like the strided conv', async () => {
    await checkOp(dev, {
      inputs: [{ shape: [2, 2, 5, 6, 7] }],
      run: ([x]) => ops.patchify3d(x!, [2, 3, 2]),
      ref: ([x]) => patchifyRef(x!, [2, 3, 2]),
    });
  });
  it('patchEmbed3d matches Conv3d(stride = kernel) with bias', async () => {
    await checkOp(dev, {
      inputs: [{ shape: [1, 2, 4, 6, 4] }, { shape: [5, 2, 2, 3, 2] }, { shape: [5] }],
      run: ([x, w, b]) => ops.patchEmbed3d(x!, w!, b!),
      ref: ([x, w, b]) => patchEmbedRef(x!, w!, b!),
    });
  });
  it('patchEmbed3d at an HLIP-like patch (8×24×24, one channel)', async () => {
    const x = randomNd([1, 1, 16, 48, 24], 21);
    const w = randomNd([16, 1, 8, 24, 24], 22, -0.05, 0.05);
    const b = randomNd([16], 23);
    const tx = Tensor.from(dev, x.data, x.shape);
    const tw = Tensor.from(dev, w.data, w.shape);
    const tb = Tensor.from(dev, b.data, b.shape);
    const y = ops.patchEmbed3d(tx, tw, tb);
    expect(y.shape).toEqual([1, 4, 16]);
    expect(relErr(await y.data(), patchEmbedRef(x, w, b).data)).toBeLessThanOrEqual(1e-5);
    for (const t of [tx, tw, tb, y]) t.dispose();
  });
});
