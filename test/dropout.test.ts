import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeError } from '../src/errors.js';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import { PhiloxStream } from '../src/tensor/rng.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { randomData, read, type Nd } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

function refDropout(x: Nd, p: number, seed: number, stream = 0): Nd {
  const s = new PhiloxStream(seed, stream);
  const pf = Math.fround(p);
  const out = x.data.map((v, i) => (s.uniform(i) >= pf ? v / (1 - p) : 0));
  return { data: out, shape: x.shape };
}

describe('dropout', () => {
  const shapes = [[1], [7], [33, 5], [1000], [2, 3, 129]];
  for (const p of [0.1, 0.5, 0.9]) {
    for (const shape of shapes) {
      it(`p ${p} ${JSON.stringify(shape)}`, async () => {
        const seed = 1000 + shape.length;
        await checkOp(dev, { inputs: [{ shape }], run: ([x]) => ops.dropout(x!, p, seed, { stream: 3 }), ref: ([x]) => refDropout(x!, p, seed, 3) });
      });
    }
  }

  it('strided input: mask follows the logical index', async () => {
    await checkOp(dev, {
      inputs: [{ shape: [5, 7] }],
      run: ([x]) => ops.dropout(ops.transpose(x!), 0.3, 2 ** 35 + 1),
      ref: ([x]) => {
        const t = new Float64Array(35);
        for (let i = 0; i < 5; i++) for (let j = 0; j < 7; j++) t[j * 5 + i] = x!.data[i * 7 + j]!;
        return refDropout({ data: t, shape: [7, 5] }, 0.3, 2 ** 35 + 1);
      },
    });
  });

  it('f16', async () => {
    if (!dev.caps.f16) return;
    await checkOp(dev, { dtype: 'f16', inputs: [{ shape: [129] }], run: ([x]) => ops.dropout(x!, 0.25, 5), ref: ([x]) => refDropout(x!, 0.25, 5) });
  });

  it('p = 0 and training = false are the identity (with gradient)', async () => {
    for (const run of [(x: Tensor) => ops.dropout(x, 0, 1), (x: Tensor) => ops.dropout(x, 0.5, 1, { training: false })]) {
      await checkOp(dev, { inputs: [{ shape: [33] }], run: ([x]) => run(x!), ref: ([x]) => x! });
    }
  });

  it('p = 1 drops everything', async () => {
    await checkOp(dev, { inputs: [{ shape: [7] }], run: ([x]) => ops.dropout(x!, 1, 9), ref: ([x]) => ({ data: new Float64Array(x!.data.length), shape: x!.shape }) });
  });

  it('kept fraction is 1 − p; seeds and streams change the mask', async () => {
    await scopeAsync(async () => {
      const n = 100000;
      const x = ops.ones(dev, [n]);
      const a = await read(ops.dropout(x, 0.3, 11));
      const b = await read(ops.dropout(x, 0.3, 11, { stream: 1 }));
      const c = await read(ops.dropout(x, 0.3, 12));
      const kept = a.reduce((s, v) => s + (v !== 0 ? 1 : 0), 0) / n;
      expect(Math.abs(kept - 0.7)).toBeLessThan(0.005);
      expect(a.find((v) => v !== 0)).toBeCloseTo(1 / 0.7, 5);
      let diffB = 0;
      let diffC = 0;
      for (let i = 0; i < n; i++) {
        if ((a[i] === 0) !== (b[i] === 0)) diffB++;
        if ((a[i] === 0) !== (c[i] === 0)) diffC++;
      }
      // Independent masks disagree on 2·0.3·0.7 = 42 % of elements.
      expect(diffB / n).toBeGreaterThan(0.4);
      expect(diffC / n).toBeGreaterThan(0.4);
    });
  });

  it('rejects p outside [0, 1]', () => {
    const x = Tensor.from(dev, randomData(3, 1), [3]);
    expect(() => ops.dropout(x, 1.5, 0)).toThrow(ShapeError);
    expect(() => ops.dropout(x, NaN, 0)).toThrow(ShapeError);
    x.dispose();
  });
});
