import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ShapeError } from '../src/errors.js';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { size, strides, type Nd } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

/** Multi-index helpers for the float64 references. */
function unravel(i: number, shape: readonly number[]): number[] {
  const st = strides(shape);
  return st.map((s, d) => Math.floor(i / s) % shape[d]!);
}
function ravel(ix: readonly number[], shape: readonly number[]): number {
  const st = strides(shape);
  return ix.reduce((a, c, d) => a + c * st[d]!, 0);
}

function refConcat(xs: Nd[], axis: number): Nd {
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((a, x) => a + x.shape[axis]!, 0);
  const out = new Float64Array(size(shape));
  let at = 0;
  for (const x of xs) {
    for (let i = 0; i < x.data.length; i++) {
      const ix = unravel(i, x.shape);
      ix[axis]! += at;
      out[ravel(ix, shape)] = x.data[i]!;
    }
    at += x.shape[axis]!;
  }
  return { data: out, shape };
}

function refPad(x: Nd, pads: [number, number][], value: number): Nd {
  const shape = x.shape.map((d, i) => d + pads[i]![0] + pads[i]![1]);
  const out = new Float64Array(size(shape)).fill(value);
  for (let i = 0; i < x.data.length; i++) {
    const ix = unravel(i, x.shape).map((c, d) => c + pads[d]![0]);
    out[ravel(ix, shape)] = x.data[i]!;
  }
  return { data: out, shape };
}

describe('concat', () => {
  const cases: [number[][], number][] = [
    [[[1], [7], [33]], 0],
    [[[3, 1], [3, 7], [3, 33]], 1],
    [[[2, 5, 3], [2, 5, 1], [2, 5, 4]], -1],
    [[[1, 4], [7, 4]], 0],
    [[[2, 129], [2, 1000]], 1],
    [[[4, 3, 2], [4, 1, 2]], 1],
  ];
  for (const [shapes, axis] of cases) {
    it(`${JSON.stringify(shapes)} axis ${axis}`, async () => {
      const nd = shapes[0]!.length;
      const ax = axis < 0 ? axis + nd : axis;
      await checkOp(dev, { inputs: shapes.map((shape) => ({ shape })), run: (ts) => ops.concat(ts, axis), ref: (xs) => refConcat(xs, ax) });
    });
  }

  it('strided (transposed) inputs', async () => {
    await checkOp(dev, {
      inputs: [{ shape: [3, 4] }, { shape: [5, 4] }],
      run: ([a, b]) => ops.concat([ops.transpose(a!), ops.transpose(b!)], 1),
      ref: ([a, b]) => {
        const t = (x: Nd) => {
          const [r, c] = x.shape as [number, number];
          const d = new Float64Array(r * c);
          for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) d[j * r + i] = x.data[i * c + j]!;
          return { data: d, shape: [c, r] };
        };
        return refConcat([t(a!), t(b!)], 1);
      },
    });
  });

  it('only some inputs need grad', async () => {
    await checkOp(dev, { inputs: [{ shape: [2, 3] }, { shape: [2, 2], grad: false }], run: (ts) => ops.concat(ts, 1), ref: (xs) => refConcat(xs, 1) });
  });

  it('f16', async () => {
    if (!dev.caps.f16) return;
    await checkOp(dev, { dtype: 'f16', inputs: [{ shape: [3, 7] }, { shape: [3, 33] }], run: (ts) => ops.concat(ts, 1), ref: (xs) => refConcat(xs, 1) });
  });

  it('i32 (contiguous pieces)', async () => {
    const a = Tensor.from(dev, [1, 2, 3, 4, 5, 6], [2, 3], 'i32');
    const b = Tensor.from(dev, [-7, 8], [2, 1], 'i32');
    const c = ops.concat([a, b], 1);
    expect([...(await c.data())]).toEqual([1, 2, 3, -7, 4, 5, 6, 8]);
    const d = ops.concat([a, a], 0);
    expect([...(await d.data())]).toEqual([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
    for (const t of [a, b, c, d]) t.dispose();
  });

  it('rejects mismatched shapes and dtypes', () => {
    const a = ops.zeros(dev, [2, 3]);
    const b = ops.zeros(dev, [3, 3]);
    const h = Tensor.from(dev, [1, 2, 3], [1, 3], 'i32');
    expect(() => ops.concat([a, b], 1)).toThrow(ShapeError);
    expect(() => ops.concat([a, h], 0)).toThrow(DTypeError);
    expect(() => ops.concat([], 0)).toThrow(ShapeError);
    for (const t of [a, b, h]) t.dispose();
  });
});

describe('split', () => {
  it('sizes list: pieces are views; scaled pieces concatenated back', async () => {
    const scales = [1, -2, 3];
    await checkOp(dev, {
      inputs: [{ shape: [4, 33] }],
      run: ([x]) => {
        const parts = ops.split(x!, [7, 1, 25], 1);
        expect(parts.map((p) => p.shape)).toEqual([[4, 7], [4, 1], [4, 25]]);
        expect(parts.every((p) => p.storage === x!.storage)).toBe(true);
        return ops.concat(parts.map((p, i) => ops.scale(p, scales[i]!)), 1);
      },
      ref: ([x]) => {
        const out = new Float64Array(x!.data.length);
        for (let i = 0; i < out.length; i++) {
          const c = i % 33;
          out[i] = x!.data[i]! * (c < 7 ? 1 : c < 8 ? -2 : 3);
        }
        return { data: out, shape: [4, 33] };
      },
    });
  });

  it('chunk size, last piece shorter, along axis 0', async () => {
    const x = Tensor.from(dev, [...Array(7 * 2).keys()], [7, 2]);
    const parts = ops.split(x, 3);
    expect(parts.map((p) => p.shape)).toEqual([[3, 2], [3, 2], [1, 2]]);
    expect([...(await parts[2]!.data())]).toEqual([12, 13]);
    expect([...(await parts[1]!.data())]).toEqual([6, 7, 8, 9, 10, 11]);
    expect(() => ops.split(x, [3, 3])).toThrow(ShapeError);
    for (const t of [x, ...parts]) t.dispose();
  });
});

describe('pad', () => {
  const cases: [number[], [number, number][], number][] = [
    [[1], [[0, 2]], 0],
    [[7], [[3, 0]], 1.5],
    [[3, 33], [[1, 1], [0, 7]], 0],
    [[2, 3, 5], [[0, 0], [2, 1], [1, 3]], -1],
    [[129], [[1, 1]], 0],
  ];
  for (const [shape, pads, value] of cases) {
    it(`${JSON.stringify(shape)} ${JSON.stringify(pads)} value ${value}`, async () => {
      await checkOp(dev, { inputs: [{ shape }], run: ([x]) => ops.pad(x!, pads, value), ref: ([x]) => refPad(x!, pads, value) });
    });
  }
  it('f16', async () => {
    if (!dev.caps.f16) return;
    await checkOp(dev, { dtype: 'f16', inputs: [{ shape: [3, 7] }], run: ([x]) => ops.pad(x!, [[1, 0], [2, 2]], 0.5), ref: ([x]) => refPad(x!, [[1, 0], [2, 2]], 0.5) });
  });
  it('rejects bad pads', () => {
    const x = ops.zeros(dev, [2, 3]);
    expect(() => ops.pad(x, [[1, 1]])).toThrow(ShapeError);
    expect(() => ops.pad(x, [[1, 1], [-1, 0]])).toThrow(ShapeError);
    x.dispose();
  });
});
