import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError } from '../src/errors.js';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { randomData, read, relErr } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

const shapes = [[1], [7], [33], [129], [1000], [3, 5, 7]];

describe('cast', () => {
  for (const shape of shapes) {
    it(`f32 → f16 → f32 ${JSON.stringify(shape)}`, async () => {
      if (!dev.caps.f16) return;
      // Values the f16 grid holds exactly round-trip exactly; gradients pass through both casts.
      await checkOp(dev, { inputs: [{ shape, lo: -3, hi: 3 }], run: ([x]) => ops.cast(ops.cast(x!, 'f16'), 'f32'), ref: ([x]) => x!, fwdTol: 1e-3, bwdTol: 1e-2 });
    });
    it(`f16 → f32 ${JSON.stringify(shape)}`, async () => {
      if (!dev.caps.f16) return;
      await checkOp(dev, { dtype: 'f16', inputs: [{ shape }], run: ([x]) => ops.cast(x!, 'f32'), ref: ([x]) => x! });
    });
    it(`f32 → f32 copy ${JSON.stringify(shape)}`, async () => {
      await checkOp(dev, { inputs: [{ shape }], run: ([x]) => ops.cast(x!, 'f32'), ref: ([x]) => x! });
    });
  }

  it('f32 → f16 rounds like the host conversion (strided input), gradient comes back as f32', async () => {
    if (!dev.caps.f16) return;
    await scopeAsync(async () => {
      const host = randomData(33 * 7, 3, -100, 100);
      const x = Tensor.from(dev, host, [33, 7]);
      x.requiresGrad = true;
      const y = ops.cast(ops.transpose(x), 'f16');
      expect(y.dtype).toBe('f16');
      const want = Tensor.from(dev, host, [33, 7], 'f16');
      const wt = ops.contiguous(ops.transpose(want));
      expect(relErr(await read(y), await read(wt))).toBeLessThanOrEqual(2 ** -11);
      ops.sum(ops.cast(y, 'f32')).backward();
      expect(x.grad!.dtype).toBe('f32');
      expect([...(await read(x.grad!))].every((v) => v === 1)).toBe(true);
    });
  });

  it('i32 → f32 and f32 → i32 (no gradient into integers)', async () => {
    await scopeAsync(async () => {
      const i = Tensor.from(dev, [0, -3, 7, 2 ** 24], [4], 'i32');
      expect([...(await read(ops.cast(i, 'f32')))]).toEqual([0, -3, 7, 2 ** 24]);
      const f = Tensor.from(dev, [1.9, -2.7, 0.2, 5], [4]);
      expect([...(await ops.cast(f, 'i32').data())]).toEqual([1, -2, 0, 5]);
    });
  });

  it('f16 without shader-f16 is a DTypeError', () => {
    if (dev.caps.f16) return;
    const x = ops.zeros(dev, [3]);
    expect(() => ops.cast(x, 'f16')).toThrow(DTypeError);
    x.dispose();
  });
});
