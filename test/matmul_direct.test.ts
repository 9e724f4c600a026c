import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { cpuSubgroupPathAvailable, matmul as matmulKernel } from '../src/kernels/matmul.js';
import { planDirect } from '../src/kernels/matmul_direct.js';
import type { View } from '../src/kernels/view.js';
import * as ops from '../src/ops/index.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice } from './helpers/device.js';
import { geluGradRef, geluRef, linearRef, matmulRef, sumToRef, transposeRef } from './helpers/matmul_ref.js';
import { randomNd, relErr, type Nd } from './helpers/ref.js';

// The direct CPU kernel (llvmpipe only): operands read in place in every layout it accepts, both
// orientations, K tails, M/N tails, batches and the fused epilogue. Elsewhere the cases check that the
// auto-picked path gives the same numbers.

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

/**
 * [batch, R, C] stored as [batch, C, Rp] (Rp = R rounded up to 4, the padding NaN: it must never reach
 * a stored result), for passing as a transposed view.
 */
function batchedTranspose(x: Nd): { data: Float64Array; rp: number } {
  const [b, r, c] = x.shape as [number, number, number];
  const rp = Math.ceil(r / 4) * 4;
  const out = new Float64Array(b * c * rp).fill(NaN);
  for (let i = 0; i < b; i++) for (let p = 0; p < r; p++) for (let q = 0; q < c; q++) out[(i * c + q) * rp + p] = x.data[(i * r + p) * c + q]!;
  return { data: out, rp };
}

interface Case {
  batch: number;
  M: number;
  K: number;
  N: number;
  /** Operand stored transposed ('cols': unit row stride), as the backward's Xᵀ and the forward's Wᵀ. */
  a: 'rows' | 'cols';
  b: 'rows' | 'cols' | 'shared';
  epilogue: 'none' | 'bias' | 'bias+gelu+pre';
  /** Output row stride padding (0 = contiguous): forces the scalar store path. */
  outPad?: number;
  dtype?: 'f32' | 'f16';
}

const cases: Case[] = [
  { batch: 1, M: 70, K: 72, N: 50, a: 'rows', b: 'cols', epilogue: 'bias+gelu+pre' },
  { batch: 2, M: 37, K: 100, N: 44, a: 'cols', b: 'rows', epilogue: 'bias' },
  { batch: 1, M: 36, K: 1000, N: 44, a: 'cols', b: 'rows', epilogue: 'none' },
  { batch: 3, M: 130, K: 40, N: 12, a: 'rows', b: 'rows', epilogue: 'bias+gelu+pre' },
  { batch: 1, M: 129, K: 20, N: 8, a: 'cols', b: 'cols', epilogue: 'bias' },
  { batch: 2, M: 33, K: 64, N: 36, a: 'rows', b: 'shared', epilogue: 'bias+gelu+pre', outPad: 3 },
  { batch: 1, M: 200, K: 36, N: 20, a: 'rows', b: 'cols', epilogue: 'bias', outPad: 1 },
  { batch: 1, M: 3, K: 300, N: 8, a: 'rows', b: 'rows', epilogue: 'bias+gelu+pre' },
  { batch: 1, M: 150, K: 40, N: 6, a: 'rows', b: 'cols', epilogue: 'bias+gelu+pre', outPad: 2 },
  { batch: 1, M: 70, K: 132, N: 40, a: 'rows', b: 'cols', epilogue: 'bias+gelu+pre', dtype: 'f16' },
];

describe('direct cpu matmul kernel', () => {
  for (const c of cases) {
    const dtype = c.dtype ?? 'f32';
    const name = `[${c.batch}, ${c.M}, ${c.K}]·[${c.K}, ${c.N}] A ${c.a}, B ${c.b}, ${c.epilogue}${c.outPad ? `, out row stride +${c.outPad}` : ''} ${dtype}`;
    it(name, async () => {
      if (!cpuSubgroupPathAvailable(dev)) return;
      if (dtype === 'f16' && !dev.caps.f16) return;
      const { batch, M, K, N } = c;
      const a = await roundTo(dtype, randomNd([batch, M, K], 1));
      const b = await roundTo(dtype, randomNd([c.b === 'shared' ? 1 : batch, K, N], 2));
      const bias = await roundTo(dtype, randomNd([N], 3));
      const pre = matmulRef(a, b);
      if (c.epilogue !== 'none') for (let i = 0; i < pre.data.length; i++) pre.data[i]! += bias.data[i % N]!;
      const want = c.epilogue === 'bias+gelu+pre' ? pre.data.map(geluRef) : pre.data;

      const at = batchedTranspose(a);
      const bt = batchedTranspose(b);
      const ta = c.a === 'cols' ? Tensor.from(dev, at.data, [batch, K, at.rp], dtype) : Tensor.from(dev, a.data, a.shape, dtype);
      const tb = c.b === 'cols' ? Tensor.from(dev, bt.data, [batch, N, bt.rp], dtype) : Tensor.from(dev, b.data, b.shape, dtype);
      const av: View = c.a === 'cols' ? { buffer: ta.buffer, dtype, shape: [batch, M, K], strides: [K * at.rp, 1, at.rp], offset: 0 } : ta;
      const bv: View =
        c.b === 'cols'
          ? { buffer: tb.buffer, dtype, shape: [batch, K, N], strides: [N * bt.rp, 1, bt.rp], offset: 0 }
          : c.b === 'shared'
            ? { buffer: tb.buffer, dtype, shape: [batch, K, N], strides: [0, N, 1], offset: 0 }
            : tb;
      const rs = N + (c.outPad ?? 0);
      const n = batch * M * rs;
      // Sentinel-filled output (and pre-activation block): padding must stay untouched.
      const out = Tensor.from(dev, new Float64Array(2 * n).fill(7), [2 * n], dtype);
      const ov: View = { buffer: out.buffer, dtype, shape: [batch, M, N], strides: [M * rs, rs, 1], offset: 0 };
      const tbias = Tensor.from(dev, bias.data, [N], dtype);
      const plan = planDirect(av, bv, ov, { batch, M, N, K });
      expect(plan, 'a direct plan').not.toBeNull();
      const epi = c.epilogue === 'none' ? {} : c.epilogue === 'bias' ? { bias: tbias } : { bias: tbias, gelu: true, preOffset: n };
      expect(matmulKernel(dev, av, bv, ov, epi, { path: 'cpu-direct' })).toBe('cpu-direct');
      const got = await out.data();
      const pick = (base: number) => {
        const r = new Float64Array(batch * M * N);
        for (let i = 0; i < batch * M; i++) for (let j = 0; j < N; j++) r[i * N + j] = got[base + i * rs + j]!;
        return r;
      };
      const tol = dtype === 'f16' ? 1e-2 : 1e-5;
      expect(relErr(pick(0), want), 'output').toBeLessThanOrEqual(tol);
      if (c.epilogue === 'bias+gelu+pre') expect(relErr(pick(n), pre.data), 'pre-activation').toBeLessThanOrEqual(tol);
      // Row padding and the unused pre-activation block keep the sentinel.
      let untouched = true;
      for (let i = 0; i < batch * M; i++) for (let j = N; j < rs; j++) untouched &&= got[i * rs + j] === 7;
      if (c.epilogue !== 'bias+gelu+pre') for (let i = n; i < 2 * n; i++) untouched &&= got[i] === 7;
      expect(untouched, 'padding untouched').toBe(true);
      for (const t of [ta, tb, out, tbias]) t.dispose();
    });
  }

  it('the cases cover both orientations and several tile heights', () => {
    // Planning needs no GPU work: placeholder buffers of a vec4-friendly size.
    const buffer = { size: 1 << 20 } as GPUBuffer;
    const seen = new Set<string>();
    for (const c of cases) {
      const { batch, M, K, N } = c;
      const mp = Math.ceil(M / 4) * 4;
      const kp = Math.ceil(K / 4) * 4;
      const a: View = c.a === 'cols' ? { buffer, dtype: 'f32', shape: [batch, M, K], strides: [K * mp, 1, mp], offset: 0 } : { buffer, dtype: 'f32', shape: [batch, M, K], strides: [M * K, K, 1], offset: 0 };
      const b: View =
        c.b === 'cols'
          ? { buffer, dtype: 'f32', shape: [batch, K, N], strides: [N * kp, 1, kp], offset: 0 }
          : { buffer, dtype: 'f32', shape: [batch, K, N], strides: [c.b === 'shared' ? 0 : K * N, N, 1], offset: 0 };
      const rs = N + (c.outPad ?? 0);
      const plan = planDirect(a, b, { buffer, dtype: 'f32', shape: [batch, M, N], strides: [M * rs, rs, 1], offset: 0 }, { batch, M, N, K });
      expect(plan).not.toBeNull();
      seen.add(`swapped ${plan!.swapped}`);
      seen.add(`TM ${plan!.TM}`);
    }
    expect(seen.has('swapped true') && seen.has('swapped false'), [...seen].join(', ')).toBe(true);
    expect([...seen].filter((s) => s.startsWith('TM')).length, [...seen].join(', ')).toBeGreaterThanOrEqual(3);
  });

  it('rejects layouts it cannot read when forced', () => {
    if (!cpuSubgroupPathAvailable(dev)) return;
    // Rows of 33 elements are not vec4-aligned in either orientation.
    const a = ops.zeros(dev, [1, 40, 33]);
    const b = ops.zeros(dev, [1, 33, 40]);
    const out = ops.zeros(dev, [1, 40, 40]);
    expect(() => matmulKernel(dev, a, b, out, {}, { path: 'cpu-direct' })).toThrow(/cpu-direct/);
    for (const t of [a, b, out]) t.dispose();
  });
});

describe('training-shaped products (auto path)', () => {
  // The shapes of a small HLIP block at reduced token count: the forward x·Wᵀ, dX = G·W and
  // dW = Gᵀ·X (K = tokens), all through the op layer with views as the linear op makes them.
  for (const [inF, outF] of [
    [72, 216],
    [288, 72],
  ] as const) {
    it(`linear ${inF}→${outF} with bias + GELU on 300 tokens, analytic gradients`, async () => {
      const x = randomNd([3, 100, inF], 5, -2, 2);
      const w = randomNd([outF, inF], 6, -0.2, 0.2);
      const b = randomNd([outF], 7);
      await scopeAsync(async () => {
        const tx = Tensor.from(dev, x.data, x.shape);
        const tw = Tensor.from(dev, w.data, w.shape);
        const tb = Tensor.from(dev, b.data, b.shape);
        for (const t of [tx, tw, tb]) t.requiresGrad = true;
        const y = ops.linear(tx, tw, tb, { activation: 'gelu' });
        expect(relErr(await y.data(), linearRef(x, w, b, true).data), 'y').toBeLessThanOrEqual(1e-5);
        const g = randomNd([...y.shape], 8);
        y.backward(Tensor.from(dev, g.data, g.shape));
        const pre = linearRef(x, w, b, false);
        const gh: Nd = { data: pre.data.map((p, i) => g.data[i]! * geluGradRef(p)), shape: [300, outF] };
        const x2: Nd = { data: x.data, shape: [300, inF] };
        expect(relErr(await tx.grad!.data(), matmulRef(gh, w).data), 'dx').toBeLessThanOrEqual(1e-5);
        expect(relErr(await tw.grad!.data(), matmulRef(transposeRef(gh), x2).data), 'dw').toBeLessThanOrEqual(1e-5);
        expect(relErr(await tb.grad!.data(), sumToRef(gh, [outF]).data), 'db').toBeLessThanOrEqual(1e-5);
      });
    });
  }

  it('Xᵀ·G with both operands as views of contiguous activations (weightTransposed layout)', async () => {
    const x = randomNd([260, 72], 9);
    const g = randomNd([260, 216], 10);
    const tx = Tensor.from(dev, x.data, x.shape);
    const tg = Tensor.from(dev, g.data, g.shape);
    const xt = ops.transpose(tx);
    const y = ops.matmul(xt, tg);
    expect(relErr(await y.data(), matmulRef(transposeRef(x), g).data)).toBeLessThanOrEqual(1e-5);
    for (const t of [tx, tg, xt, y]) t.dispose();
  });
});
