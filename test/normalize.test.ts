import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import { scope } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { alongAxis } from './helpers/along.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { randomData, relErr } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

function normLine(eps: number) {
  return (v: Float64Array) => {
    let s = 0;
    for (const x of v) s += x * x;
    const d = Math.max(Math.sqrt(s), eps);
    return v.map((x) => x / d);
  };
}

describe('l2Normalize', () => {
  for (const [shape, axis] of [
    [[1], -1],
    [[7], 0],
    [[33, 5], -1],
    [[4, 129], 1],
    [[2, 1000], -1],
    [[2, 3, 33], -1],
    [[7, 33, 5], 1],
    [[129, 3], 0],
  ] as const) {
    it(`${JSON.stringify(shape)} axis ${axis}`, async () => {
      await checkOp(dev, { inputs: [{ shape: [...shape] }], run: ([x]) => ops.l2Normalize(x!, axis), ref: ([x]) => alongAxis(x!, axis, normLine(1e-12)) });
    });
  }
  it('norms below eps divide by eps (forward and gradient)', async () => {
    // Rows with ‖x‖ ≈ 1e-3 against eps 1e-2: y = x / eps and dy/dx = 1/eps.
    await checkOp(dev, { inputs: [{ shape: [3, 5], lo: -4e-4, hi: 4e-4 }], run: ([x]) => ops.l2Normalize(x!, -1, 1e-2), ref: ([x]) => alongAxis(x!, -1, normLine(1e-2)) });
  });
  it('a zero row stays zero with a finite gradient', async () => {
    const x = Tensor.from(dev, [0, 0, 0, 3, 4, 0], [2, 3]);
    x.requiresGrad = true;
    const y = ops.l2Normalize(x);
    expect(Array.from(await y.data())).toEqual([0, 0, 0, 0.6000000238418579, 0.800000011920929, 0]);
    const l = scope(() => ops.sum(ops.mul(y, Tensor.from(dev, [1, 2, 3, 1, 1, 1], [2, 3]))));
    l.backward();
    const g = await x.grad!.data();
    expect(g.every(Number.isFinite)).toBe(true);
    // Zero row: gradient g/eps.
    expect(relErr(g.slice(0, 3), [1e12, 2e12, 3e12])).toBeLessThanOrEqual(1e-6);
    for (const t of [x, y, l]) t.dispose();
  });
  it('f16 storage with large values (sum of squares beyond the f16 range)', async () => {
    if (!dev.caps.f16) return;
    await checkOp(dev, { dtype: 'f16', inputs: [{ shape: [5, 129], lo: -50, hi: 50 }], run: ([x]) => ops.l2Normalize(x!), ref: ([x]) => alongAxis(x!, -1, normLine(1e-12)) });
  });
  it('keeps live bytes flat over repeated forward/backward', async () => {
    const step = () =>
      scope(() => {
        const x = Tensor.from(dev, randomData(4 * 6 * 5, 3), [4, 6, 5]);
        x.requiresGrad = true;
        const l = ops.sum(ops.mul(ops.l2Normalize(x, 1), ops.l2Normalize(x)));
        l.backward();
        x.dispose();
        return l;
      });
    step().dispose();
    await dev.sync();
    const before = dev.pool.liveBytes;
    for (let i = 0; i < 10; i++) step().dispose();
    await dev.sync();
    expect(dev.pool.liveBytes).toBe(before);
  });
});
