import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeError } from '../src/errors.js';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { randomData, read, type Nd } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

function refGather(table: Nd, idx: ArrayLike<number>, shape: number[]): Nd {
  const [v, d] = table.shape as [number, number];
  const out = new Float64Array(idx.length * d);
  for (let t = 0; t < idx.length; t++) {
    const k = idx[t]!;
    if (k < 0 || k >= v) continue;
    for (let c = 0; c < d; c++) out[t * d + c] = table.data[k * d + c]!;
  }
  return { data: out, shape: [...shape, d] };
}

function indices(n: number, v: number, seed: number): number[] {
  return [...randomData(n, seed, 0, v)].map(Math.floor);
}

describe('gather (embedding lookup) with scatter-add backward', () => {
  const cases: [string, number, number, number[]][] = [
    ['V1 D1 n1', 1, 1, [1]],
    ['V7 D1 n7', 7, 1, [7]],
    ['V33 D5 n33', 33, 5, [33]],
    ['V5 D7 batched [2,3] (repeats)', 5, 7, [2, 3]],
    ['V129 D7 n1000 (many repeats)', 129, 7, [1000]],
    ['V7 D33 batched [4, 129]', 7, 33, [4, 129]],
  ];
  for (const [name, v, d, shape] of cases) {
    it(name, async () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const idx = indices(n, v, v * 31 + d);
      await checkOp(dev, { inputs: [{ shape: [v, d] }], run: ([t]) => ops.gather(t!, idx, shape), ref: ([t]) => refGather(t!, idx, shape) });
    });
  }

  it('f16 table', async () => {
    if (!dev.caps.f16) return;
    const idx = indices(257, 33, 5);
    await checkOp(dev, { dtype: 'f16', inputs: [{ shape: [33, 9] }], run: ([t]) => ops.gather(t!, idx), ref: ([t]) => refGather(t!, idx, [257]) });
  });

  it('strided (transposed) table', async () => {
    const idx = [3, 0, 3, 1];
    // table = transpose of a [D, V] tensor.
    await checkOp(dev, {
      inputs: [{ shape: [5, 4] }],
      run: ([t]) => ops.gather(ops.transpose(t!), idx),
      ref: ([t]) => {
        const tt = new Float64Array(20);
        for (let i = 0; i < 5; i++) for (let j = 0; j < 4; j++) tt[j * 5 + i] = t!.data[i * 4 + j]!;
        return refGather({ data: tt, shape: [4, 5] }, idx, [4]);
      },
    });
  });

  it('host indices outside [0, V) throw ShapeError', async () => {
    const t = ops.zeros(dev, [4, 3]);
    expect(() => ops.gather(t, [0, 4])).toThrow(ShapeError);
    expect(() => ops.gather(t, [-1])).toThrow(ShapeError);
    expect(() => ops.gather(t, [1.5])).toThrow(ShapeError);
    expect(() => ops.gather(t, [0, 1, 2], [2, 2])).toThrow(ShapeError);
    t.dispose();
  });

  it('GPU indices outside [0, V) read zeros and get no gradient', async () => {
    await scopeAsync(async () => {
      const v = 4;
      const d = 3;
      const tdata = randomData(v * d, 9);
      const table = Tensor.from(dev, tdata, [v, d]);
      table.requiresGrad = true;
      const idxHost = [2, -1, 4, 2, 1000, 0];
      const idx = Tensor.from(dev, idxHost, [6], 'i32');
      const out = ops.gather(table, idx);
      const got = await read(out);
      const want = refGather({ data: Float64Array.from(tdata), shape: [v, d] }, idxHost, [6]);
      for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(want.data[i]!, 6);
      const s = ops.sum(out);
      s.backward();
      const g = await read(table.grad!);
      expect([...g]).toEqual([1, 1, 1, 0, 0, 0, 2, 2, 2, 0, 0, 0]);
    });
  });

  it('backward is deterministic across runs (bit-identical)', async () => {
    const v = 17;
    const d = 33;
    const idx = indices(1000, v, 77);
    const run = async () =>
      scopeAsync(async () => {
        const table = Tensor.from(dev, randomData(v * d, 1), [v, d]);
        table.requiresGrad = true;
        const out = ops.gather(table, idx);
        out.backward(Tensor.from(dev, randomData(1000 * d, 2), [1000, d]));
        return new Uint32Array((await read(table.grad!)).buffer);
      });
    const a = await run();
    const b = await run();
    expect([...a]).toEqual([...b]);
  });
});
