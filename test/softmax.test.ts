import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import { scope } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { alongAxis, logSoftmaxLine, softmaxLine } from './helpers/along.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { randomData, relErr } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

const kinds = [
  ['softmax', ops.softmax, softmaxLine],
  ['logSoftmax', ops.logSoftmax, logSoftmaxLine],
] as const;

describe('softmax and logSoftmax', () => {
  for (const [name, op, line] of kinds) {
    // Last axis: row lengths around the workgroup sizes, rows longer than the workgroup, batches.
    for (const shape of [[1], [7], [33, 5], [4, 129], [3, 1000], [1, 5000], [2, 3, 33]]) {
      it(`${name} ${JSON.stringify(shape)} last axis`, async () => {
        await checkOp(dev, { inputs: [{ shape, lo: -4, hi: 4 }], run: ([x]) => op(x!), ref: ([x]) => alongAxis(x!, -1, line) });
      });
    }
    for (const [shape, axis] of [
      [[7, 33, 5], 0],
      [[7, 33, 5], 1],
      [[129, 3], 0],
    ] as const) {
      it(`${name} ${JSON.stringify(shape)} axis ${axis}`, async () => {
        await checkOp(dev, {
          inputs: [{ shape: [...shape], lo: -4, hi: 4 }],
          run: ([x]) => {
            const y = op(x!, axis);
            expect(y.isContiguous).toBe(true);
            return y;
          },
          ref: ([x]) => alongAxis(x!, axis, line),
        });
      });
    }
    it(`${name} non-contiguous input (transposed view)`, async () => {
      await checkOp(dev, { inputs: [{ shape: [33, 7] }], run: ([x]) => op(ops.transpose(x!), -1), ref: ([x]) => alongAxis(transposeRef(x!), -1, line) });
    });
    it(`${name} of a contiguous view with an element offset (row slice)`, async () => {
      await checkOp(dev, {
        inputs: [{ shape: [6, 33] }],
        run: ([x]) => op(ops.slice(x!, 0, 2, 5)),
        ref: ([x]) => alongAxis({ data: x!.data.slice(2 * 33, 5 * 33), shape: [3, 33] }, -1, line),
      });
    });
    it(`${name} is stable for large logits (±100)`, async () => {
      await checkOp(dev, { inputs: [{ shape: [5, 129], lo: -100, hi: 100 }], run: ([x]) => op(x!), ref: ([x]) => alongAxis(x!, -1, line) });
    });
    it(`${name} of a constant row of 1000s`, async () => {
      const x = Tensor.from(dev, new Float32Array(300).fill(1000), [3, 100]);
      const y = op(x);
      const want = name === 'softmax' ? 0.01 : -Math.log(100);
      expect(relErr(await y.data(), new Float64Array(300).fill(want))).toBeLessThanOrEqual(1e-6);
      x.dispose();
      y.dispose();
    });
    it(`${name} f16 storage`, async () => {
      if (!dev.caps.f16) return;
      await checkOp(dev, { dtype: 'f16', inputs: [{ shape: [9, 129], lo: -3, hi: 3 }], run: ([x]) => op(x!), ref: ([x]) => alongAxis(x!, -1, line) });
    });
  }

  it('softmax rows sum to one over 66000 rows (2-D dispatch grid)', async () => {
    const rows = 66_000;
    const x = Tensor.from(dev, randomData(rows * 3, 5, -5, 5), [rows, 3]);
    const y = ops.softmax(x);
    const v = await y.data();
    const s = new Float64Array(rows);
    for (let i = 0; i < rows * 3; i++) s[Math.floor(i / 3)]! += v[i]!;
    expect(relErr(s, new Float64Array(rows).fill(1))).toBeLessThanOrEqual(1e-6);
    expect(v[rows * 3 - 1]).toBeGreaterThan(0);
    for (const t of [x, y]) t.dispose();
  });

  it('masked (-inf) entries get probability 0 and log-probability -inf', async () => {
    const x = Tensor.from(dev, [0, -Infinity, 1, -Infinity, -3.4e38, 2], [2, 3]);
    const y = ops.softmax(x);
    const ly = ops.logSoftmax(x);
    const e = Math.E;
    const want = [1 / (1 + e), 0, e / (1 + e), 0, 0, 1];
    expect(relErr(await y.data(), want)).toBeLessThanOrEqual(1e-6);
    const lw = await ly.data();
    expect(lw[1]).toBe(-Infinity);
    expect(lw[3]).toBe(-Infinity);
    expect(relErr([lw[0]!, lw[2]!, lw[5]!], [-Math.log(1 + e), 1 - Math.log(1 + e), 0])).toBeLessThanOrEqual(1e-6);
    for (const t of [x, y, ly]) t.dispose();
  });

  it('rejects i32 input', () => {
    const x = Tensor.from(dev, [1, 2, 3], [3], 'i32');
    expect(() => ops.softmax(x)).toThrow(/floating/);
    x.dispose();
  });

  it('keeps live bytes flat over repeated forward/backward', async () => {
    const step = () =>
      scope(() => {
        const x = Tensor.from(dev, randomData(4 * 33 * 5, 3), [4, 33, 5]);
        x.requiresGrad = true;
        const l = ops.sum(ops.mul(ops.logSoftmax(ops.softmax(x, 1), 0), ops.softmax(x, -1)));
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

function transposeRef(x: { data: Float64Array; shape: number[] }) {
  const [r, c] = x.shape as [number, number];
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = x.data[i * c + j]!;
  return { data: out, shape: [c, r] };
}
