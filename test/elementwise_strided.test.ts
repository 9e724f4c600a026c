import { beforeAll, describe, expect, it } from 'vitest';
import { GpuError } from '../src/errors.js';
import type { Device } from '../src/gpu/device.js';
import { castInto } from '../src/kernels/cast.js';
import { elementwise } from '../src/kernels/elementwise.js';
import { stridedPlan } from '../src/kernels/strided.js';
import * as ops from '../src/ops/index.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { randomData } from './helpers/ref.js';

// The strided kernels' addressing is generated per coalesced rank (odometer mode) and for transposing
// layouts (tiled mode); these tests pin every rank and both modes against a host walk of the strides.

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

interface Layout {
  shape: number[];
  strides: number[];
  offset: number;
}

function rowMajor(shape: readonly number[]): number[] {
  const s = shape.map(() => 1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = (s[i + 1] as number) * (shape[i + 1] as number);
  return s;
}

/** A permuted view of a contiguous [base] block at `offset`: the shape is base permuted by perm. */
function permuted(base: number[], perm: number[], offset = 0): Layout {
  const st = rowMajor(base);
  return { shape: perm.map((p) => base[p] as number), strides: perm.map((p) => st[p] as number), offset };
}

/** Host reference: out[layout] = f(inputs at their layouts), over out's shape in row-major order. */
function hostApply(outBuf: Float64Array, out: Layout, ins: { data: ArrayLike<number>; l: Layout }[], f: (v: number[], idx: number) => number): void {
  const n = out.shape.reduce((a, b) => a * b, 1);
  const c = out.shape.map(() => 0);
  for (let i = 0; i < n; i++) {
    const at = (l: Layout) => l.offset + c.reduce((a, x, d) => a + x * (l.strides[d] as number), 0);
    outBuf[at(out)] = f(ins.map((x) => x.data[at(x.l)] as number), i);
    for (let d = c.length - 1; d >= 0; d--) {
      if (++c[d]! < (out.shape[d] as number)) break;
      c[d] = 0;
    }
  }
}

function span(l: Layout): number {
  return l.offset + l.shape.reduce((a, d, i) => a + (d - 1) * (l.strides[i] as number), 0) + 1;
}

/** Runs `expr` on device views and compares the whole output buffer (untouched slots included). */
async function check(expr: string, out: Layout, ins: Layout[], f: (v: number[], idx: number) => number, dtype: 'f32' | 'f16' = 'f32'): Promise<void> {
  await scopeAsync(async () => {
    const hostIns = ins.map((l, k) => randomData(span(l), 7 + k, -4, 4));
    if (dtype === 'f16') for (const h of hostIns) for (let i = 0; i < h.length; i++) h[i] = Math.round((h[i] as number) * 64) / 64;
    const outLen = span(out);
    const outInit = new Float64Array(outLen).fill(-7);
    const tIns = hostIns.map((h, k) => Tensor.from(dev, h, [h.length], dtype).view(ins[k]!.shape, ins[k]!.strides, ins[k]!.offset));
    const tOut = Tensor.from(dev, outInit, [outLen], dtype);
    elementwise(dev, expr, tOut.view(out.shape, out.strides, out.offset), tIns);
    const want = Float64Array.from(outInit);
    hostApply(want, out, hostIns.map((data, k) => ({ data, l: ins[k]! })), f);
    const got = await tOut.data();
    const tol = dtype === 'f16' ? 1e-2 : 1e-6;
    let worst = 0;
    for (let i = 0; i < outLen; i++) worst = Math.max(worst, Math.abs((got[i] as number) - (want[i] as number)) / Math.max(1, Math.abs(want[i] as number)));
    expect(worst, `${expr} over [${out.shape}]`).toBeLessThanOrEqual(tol);
  });
}

// Shapes whose dims never merge after a reversing permutation (no size-1 dims), ranks 1..8.
const bases: number[][] = [[37], [5, 7], [3, 4, 5], [2, 3, 5, 7], [3, 2, 4, 3, 2], [2, 3, 2, 3, 2, 3], [2, 2, 3, 2, 2, 3, 2], [2, 3, 2, 2, 3, 2, 2, 3]];

describe('strided elementwise addressing, ranks 1..8', () => {
  for (const base of bases) {
    const r = base.length;
    const rev = [...Array(r).keys()].reverse();
    const rot = [...Array(r).keys()].map((i) => (i + 1) % r);
    it(`rank ${r}: copy of a reversed permutation (offset input)`, async () => {
      await check('a', { shape: rev.map((p) => base[p]!), strides: rowMajor(rev.map((p) => base[p]!)), offset: 0 }, [permuted(base, rev, 3)], ([a]) => a!);
    });
    it(`rank ${r}: copy into a strided, offset output`, async () => {
      const out = permuted(base, rot, 5);
      await check('a', out, [{ shape: out.shape, strides: rowMajor(out.shape), offset: 2 }], ([a]) => a!);
    });
    it(`rank ${r}: binary with a permuted input and a broadcast input`, async () => {
      const a = permuted(base, rot, 1);
      // b broadcasts over every other dim (stride 0) and is contiguous over the rest.
      const keep = a.shape.map((d, i) => (i % 2 === 0 ? d : 1));
      const bStrides = rowMajor(keep).map((s, i) => (i % 2 === 0 ? s : 0));
      await check('a - 2.0 * b', { shape: a.shape, strides: rowMajor(a.shape), offset: 0 }, [a, { shape: a.shape, strides: bStrides, offset: 4 }], ([x, y]) => x! - 2 * y!);
    });
  }
  it('idx counts output elements in row-major order under any layout', async () => {
    // A transposing layout that would otherwise be tiled: idx must keep tiling off.
    await check('a + f32(idx)', { shape: [40, 35], strides: [35, 1], offset: 0 }, [permuted([35, 40], [1, 0])], ([a], i) => a! + i);
    await check('f32(idx)', permuted([3, 4, 5, 6], [0, 3, 1, 2], 2), [permuted([3, 5, 6, 4], [0, 2, 3, 1])], (_, i) => i);
  });
  it('scalar (rank 0) and size-1 dims', async () => {
    await check('a + 1.0', { shape: [], strides: [], offset: 3 }, [{ shape: [], strides: [], offset: 2 }], ([a]) => a! + 1);
    await check('a', { shape: [1, 7, 1], strides: [99, 1, 99], offset: 0 }, [{ shape: [1, 7, 1], strides: [5, 2, 3], offset: 1 }], ([a]) => a!);
  });
  it('rejects layouts that stay above rank 8 after coalescing', () => {
    const shape = [2, 2, 2, 2, 2, 2, 2, 2, 2];
    const x = Tensor.empty(dev, [512]);
    const v = x.view(shape, rowMajor(shape).reverse(), 0);
    const out = Tensor.empty(dev, shape);
    expect(() => elementwise(dev, 'a', out, [v])).toThrow(GpuError);
    out.dispose();
    x.dispose();
  });
});

describe('tiled transposes', () => {
  const cases: [string, number[], number[]][] = [
    ['2-D, sizes off the tile', [33, 47], [1, 0]],
    ['2-D, one partial tile', [17, 16], [1, 0]],
    ['batched 3-D', [3, 20, 19], [0, 2, 1]],
    ['4-D, unit stride in the middle', [2, 18, 3, 21], [0, 3, 2, 1]],
    ['4-D, batch dims both sides', [2, 40, 3, 50], [2, 3, 0, 1]],
  ];
  for (const [name, base, perm] of cases) {
    it(`copy: ${name}`, async () => {
      // These layouts do take the tiled path (TR is its tile constant).
      const l = permuted(base, perm);
      const x = Tensor.empty(dev, [span(l)]);
      const y = Tensor.empty(dev, l.shape);
      expect(stridedPlan('{{START}}{{STEP}}', y, [x.view(l.shape, l.strides, 0)], dev.caps).constants['TR']).toBeGreaterThan(0);
      x.dispose();
      y.dispose();
      const a = permuted(base, perm, 3);
      await check('a', { shape: a.shape, strides: rowMajor(a.shape), offset: 1 }, [a], ([x]) => x!);
    });
    it(`binary with a broadcast row: ${name}`, async () => {
      const a = permuted(base, perm, 0);
      const r = a.shape.length;
      const bStrides = a.shape.map((_, i) => (i === r - 1 ? 1 : 0));
      await check('a * b', { shape: a.shape, strides: rowMajor(a.shape), offset: 0 }, [a, { shape: a.shape, strides: bStrides, offset: 2 }], ([x, y]) => x! * y!);
    });
  }
  it('transposed output (writes along the unit-stride dim)', async () => {
    const out = permuted([30, 41], [1, 0], 2);
    await check('a', out, [{ shape: out.shape, strides: rowMajor(out.shape), offset: 0 }], ([x]) => x!);
  });
  it('f16 transpose', async () => {
    if (!dev.caps.f16) return;
    const a = permuted([35, 50], [1, 0]);
    await check('a * 0.5', { shape: a.shape, strides: rowMajor(a.shape), offset: 0 }, [a], ([x]) => x! * 0.5, 'f16');
  });
  it('cast f32 → i32 through a transposed view, and back', async () => {
    await scopeAsync(async () => {
      const host = randomData(33 * 40, 5, -50, 50);
      const x = Tensor.from(dev, host, [33, 40]);
      const xt = ops.transpose(x);
      const asInt = Tensor.empty(dev, [40, 33], 'i32');
      castInto(dev, asInt, xt);
      const back = Tensor.empty(dev, [33, 40]);
      castInto(dev, back, ops.transpose(asInt));
      const gotI = await asInt.data();
      const gotB = await back.data();
      for (let i = 0; i < 40; i++) for (let j = 0; j < 33; j++) expect(gotI[i * 33 + j]).toBe(Math.trunc(host[j * 40 + i]!) + 0);
      for (let k = 0; k < 33 * 40; k++) expect(gotB[k]).toBe(Math.trunc(host[k]!) + 0);
    });
  });
});

describe('strided copies through ops, with gradients', () => {
  it('permute + contiguous of a rank-6 patchify-like view', async () => {
    const base = [2, 3, 4, 3, 2, 5];
    const perm = [0, 2, 4, 1, 3, 5];
    await checkOp(dev, {
      inputs: [{ shape: base }],
      run: ([x]) => ops.contiguous(ops.permute(x!, perm)),
      ref: ([x]) => {
        const l = permuted(base, perm);
        const out = new Float64Array(x!.data.length);
        hostApply(out, { shape: l.shape, strides: rowMajor(l.shape), offset: 0 }, [{ data: x!.data, l }], ([v]) => v!);
        return { data: out, shape: l.shape };
      },
    });
  });
  it('transpose then add a broadcast bias (tiled forward, reduced backward)', async () => {
    await checkOp(dev, {
      inputs: [{ shape: [20, 18] }, { shape: [20] }],
      run: ([x, b]) => ops.add(ops.transpose(x!), b!),
      ref: ([x, b]) => {
        const out = new Float64Array(18 * 20);
        for (let i = 0; i < 18; i++) for (let j = 0; j < 20; j++) out[i * 20 + j] = x!.data[j * 18 + i]! + b!.data[j]!;
        return { data: out, shape: [18, 20] };
      },
    });
  });
});
