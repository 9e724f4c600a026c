import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import { scope } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { randomData, relErr, type Nd } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

/** float64 LayerNorm over the last axis (biased variance); w and b may be absent. */
function lnRef(x: Nd, w: Nd | null, b: Nd | null, eps: number): Nd {
  const n = x.shape[x.shape.length - 1]!;
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < x.data.length / n; r++) {
    let mean = 0;
    for (let j = 0; j < n; j++) mean += x.data[r * n + j]!;
    mean /= n;
    let v = 0;
    for (let j = 0; j < n; j++) v += (x.data[r * n + j]! - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / n + eps);
    for (let j = 0; j < n; j++) {
      out[r * n + j] = (x.data[r * n + j]! - mean) * rstd * (w ? w.data[j]! : 1) + (b ? b.data[j]! : 0);
    }
  }
  return { data: out, shape: [...x.shape] };
}

type Affine = 'none' | 'weight' | 'bias' | 'both';

function lnCheck(shape: number[], affine: Affine, eps: number, extra: { lo?: number; hi?: number; dtype?: 'f32' | 'f16'; values?: ArrayLike<number> } = {}) {
  const n = shape[shape.length - 1]!;
  const hasW = affine === 'weight' || affine === 'both';
  const hasB = affine === 'bias' || affine === 'both';
  const inputs = [{ shape, lo: extra.lo ?? -2, hi: extra.hi ?? 2, ...(extra.values ? { values: extra.values } : {}) }];
  if (hasW) inputs.push({ shape: [n], lo: 0.5, hi: 1.5 });
  if (hasB) inputs.push({ shape: [n], lo: -1, hi: 1 });
  return checkOp(dev, {
    ...(extra.dtype ? { dtype: extra.dtype } : {}),
    inputs,
    run: ([x, ...p]) => ops.layerNorm(x!, hasW ? p[0] : null, hasB ? p[hasW ? 1 : 0] : null, eps),
    ref: ([x, ...p]) => lnRef(x!, hasW ? p[0]! : null, hasB ? p[hasW ? 1 : 0]! : null, eps),
  });
}

describe('layerNorm', () => {
  for (const shape of [[3, 1], [5, 7], [4, 33], [3, 129], [2, 1000], [2, 3, 64], [1, 5000]]) {
    it(`${JSON.stringify(shape)} weight+bias eps 1e-6`, async () => {
      await lnCheck(shape, 'both', 1e-6);
    });
  }
  for (const affine of ['none', 'weight', 'bias'] as const) {
    it(`[6, 33] ${affine} eps 1e-12`, async () => {
      await lnCheck([6, 33], affine, 1e-12);
    });
  }
  it('[300, 20] many rows (dweight/dbias over several chunks)', async () => {
    await lnCheck([300, 20], 'both', 1e-5);
  });
  it('rows with a large mean and small spread (two-pass statistics)', async () => {
    // f32-exact values around 100 with spread 1: one-pass E[x²] − E[x]² would lose about 4 digits.
    const values = Float32Array.from(randomData(4 * 129, 77, 99.5, 100.5));
    await lnCheck([4, 129], 'both', 1e-6, { values, lo: 99.5, hi: 100.5 });
  });
  it('constant rows give bias (eps 1e-12 keeps rstd finite)', async () => {
    const x = Tensor.from(dev, new Float32Array(2 * 50).fill(3.25), [2, 50]);
    const b = Tensor.from(dev, randomData(50, 4), [50]);
    const y = ops.layerNorm(x, null, b, 1e-12);
    const got = await y.data();
    const want = new Float64Array(100);
    const bv = await b.data();
    for (let i = 0; i < 100; i++) want[i] = bv[i % 50]!;
    expect(relErr(got, want)).toBeLessThanOrEqual(1e-6);
    for (const t of [x, b, y]) t.dispose();
  });
  it('non-contiguous input', async () => {
    await checkOp(dev, {
      inputs: [{ shape: [33, 6] }, { shape: [33] }, { shape: [33] }],
      run: ([x, w, b]) => ops.layerNorm(ops.transpose(x!), w, b, 1e-6),
      ref: ([x, w, b]) => {
        const t = new Float64Array(33 * 6);
        for (let i = 0; i < 33; i++) for (let j = 0; j < 6; j++) t[j * 33 + i] = x!.data[i * 6 + j]!;
        return lnRef({ data: t, shape: [6, 33] }, w!, b!, 1e-6);
      },
    });
  });
  it('contiguous view with an element offset (row slice)', async () => {
    await checkOp(dev, {
      inputs: [{ shape: [6, 33] }, { shape: [33] }, { shape: [33] }],
      run: ([x, w, b]) => ops.layerNorm(ops.slice(x!, 0, 2, 5), w, b, 1e-6),
      ref: ([x, w, b]) => lnRef({ data: x!.data.slice(2 * 33, 5 * 33), shape: [3, 33] }, w!, b!, 1e-6),
    });
  });
  it('f16 storage', async () => {
    if (!dev.caps.f16) return;
    await lnCheck([7, 129], 'both', 1e-6, { dtype: 'f16' });
  });
  it('rejects a weight of the wrong shape or dtype', () => {
    const x = ops.zeros(dev, [2, 8]);
    const w = ops.zeros(dev, [7]);
    const wi = ops.zeros(dev, [8], 'i32');
    expect(() => ops.layerNorm(x, w)).toThrow(/\[8\]/);
    expect(() => ops.layerNorm(x, wi)).toThrow(/i32/);
    for (const t of [x, w, wi]) t.dispose();
  });
  it('keeps live bytes flat over repeated forward/backward', async () => {
    const w = Tensor.from(dev, randomData(33, 1), [33]);
    const b = Tensor.from(dev, randomData(33, 2), [33]);
    w.requiresGrad = b.requiresGrad = true;
    const step = () =>
      scope(() => {
        const x = Tensor.from(dev, randomData(5 * 33, 3), [5, 33]);
        x.requiresGrad = true;
        const l = ops.sum(ops.mul(ops.layerNorm(x, w, b, 1e-6), ops.layerNorm(x, null, null, 1e-12)));
        l.backward();
        x.dispose();
        return l;
      });
    const clearGrads = () => {
      for (const p of [w, b]) {
        p.grad?.dispose();
        p.grad = null;
      }
    };
    step().dispose();
    clearGrads();
    await dev.sync();
    const before = dev.pool.liveBytes;
    for (let i = 0; i < 10; i++) {
      step().dispose();
      clearGrads();
    }
    await dev.sync();
    expect(dev.pool.liveBytes).toBe(before);
    w.dispose();
    b.dispose();
  });
});
