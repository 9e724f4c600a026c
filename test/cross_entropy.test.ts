import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import type { Reduction } from '../src/ops/index.js';
import { scope } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { randomData, relErr, type Nd } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

/** float64 cross-entropy with PyTorch's semantics (mean over rows whose target is not ignored). */
function ceRef(x: Nd, targets: readonly number[], reduction: Reduction, ignore: number): Nd {
  const [n, c] = x.shape as [number, number];
  const rows = new Float64Array(n);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const t = targets[i]!;
    if (t === ignore) continue;
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, x.data[i * c + j]!);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(x.data[i * c + j]! - m);
    rows[i] = m + Math.log(s) - x.data[i * c + t]!;
    sum += rows[i]!;
    count++;
  }
  if (reduction === 'none') return { data: rows, shape: [n] };
  return { data: Float64Array.of(reduction === 'sum' ? sum : sum / count), shape: [] };
}

/** Deterministic targets in [0, c), with every `ignoreEvery`-th row set to `ignore`. */
function makeTargets(n: number, c: number, seed: number, ignore?: number, ignoreEvery = 0): number[] {
  const r = randomData(n, seed, 0, c);
  return Array.from(r, (v, i) => (ignore !== undefined && ignoreEvery > 0 && i % ignoreEvery === 1 ? ignore : Math.min(c - 1, Math.floor(v))));
}

describe('crossEntropy', () => {
  const shapes: [number, number][] = [[1, 1], [7, 5], [33, 10], [4, 129], [3, 1000], [1, 5000]];
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    for (const [n, c] of shapes) {
      it(`${reduction} [${n}, ${c}] (targets as an i32 tensor)`, async () => {
        const tg = makeTargets(n, c, n * 31 + c);
        await checkOp(dev, {
          inputs: [{ shape: [n, c], lo: -4, hi: 4 }],
          run: ([x]) => {
            // Built inside run so the check's scope disposes it.
            const t = Tensor.from(dev, tg, [n], 'i32');
            return ops.crossEntropy(x!, t, { reduction });
          },
          ref: ([x]) => ceRef(x!, tg, reduction, -100),
        });
      });
    }
  }
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    it(`${reduction} with ignored rows (default −100 and a custom index), host targets`, async () => {
      const tg = makeTargets(33, 17, 9, -100, 3);
      await checkOp(dev, { inputs: [{ shape: [33, 17] }], run: ([x]) => ops.crossEntropy(x!, tg, { reduction }), ref: ([x]) => ceRef(x!, tg, reduction, -100) });
      const tg2 = makeTargets(33, 17, 10, 4, 4);
      await checkOp(dev, { inputs: [{ shape: [33, 17] }], run: ([x]) => ops.crossEntropy(x!, tg2, { reduction, ignoreIndex: 4 }), ref: ([x]) => ceRef(x!, tg2, reduction, 4) });
    });
  }
  it('logits and targets that are views with an element offset', async () => {
    const tg = makeTargets(6, 33, 12);
    for (const reduction of ['mean', 'none'] as const) {
      await checkOp(dev, {
        inputs: [{ shape: [6, 33] }],
        run: ([x]) => {
          const t = Tensor.from(dev, tg, [6], 'i32');
          return ops.crossEntropy(ops.slice(x!, 0, 2, 5), ops.slice(t, 0, 2, 5), { reduction });
        },
        ref: ([x]) => ceRef({ data: x!.data.slice(2 * 33, 5 * 33), shape: [3, 33] }, tg.slice(2, 5), reduction, -100),
      });
    }
  });
  it('is stable for large logits (±100)', async () => {
    const tg = makeTargets(9, 129, 3);
    await checkOp(dev, { inputs: [{ shape: [9, 129], lo: -100, hi: 100 }], run: ([x]) => ops.crossEntropy(x!, tg), ref: ([x]) => ceRef(x!, tg, 'mean', -100) });
  });
  it('mean over a batch where every row is ignored is NaN with zero gradient', async () => {
    const x = Tensor.from(dev, randomData(12, 1), [3, 4]);
    x.requiresGrad = true;
    const l = ops.crossEntropy(x, [-100, -100, -100]);
    expect(Number.isNaN(await l.item())).toBe(true);
    l.backward();
    expect(Array.from(await x.grad!.data())).toEqual(new Array(12).fill(0));
    l.dispose();
    x.dispose();
  });
  it('host targets out of range throw; device targets give NaN without reading out of bounds', async () => {
    const x = Tensor.from(dev, randomData(3 * 4, 1), [3, 4]);
    expect(() => ops.crossEntropy(x, [0, 4, 1])).toThrow(/outside \[0, 4\)/);
    expect(() => ops.crossEntropy(x, [0, -1, 1])).toThrow(/ignoreIndex/);
    expect(() => ops.crossEntropy(x, [0, 1])).toThrow(/2 targets for 3 rows/);
    x.requiresGrad = true;
    const t = Tensor.from(dev, [0, 1_000_000, 2], [3], 'i32');
    const l = ops.crossEntropy(x, t, { reduction: 'none' });
    const v = await l.data();
    expect(Number.isFinite(v[0]!) && Number.isNaN(v[1]!) && Number.isFinite(v[2]!)).toBe(true);
    l.backward(ops.ones(dev, [3]));
    const g = await x.grad!.data();
    expect(g.slice(0, 4).every(Number.isFinite) && g.slice(4, 8).every(Number.isNaN) && g.slice(8).every(Number.isFinite)).toBe(true);
    for (const a of [x, t, l]) a.dispose();
  });
  it('rejects f32 targets and bad shapes', () => {
    const x = ops.zeros(dev, [3, 4]);
    const tf = ops.zeros(dev, [3]);
    const t2 = Tensor.from(dev, [0, 1], [2], 'i32');
    expect(() => ops.crossEntropy(x, tf)).toThrow(/i32/);
    expect(() => ops.crossEntropy(x, t2)).toThrow(/\[2\]/);
    const x3 = ops.zeros(dev, [2, 3, 4]);
    expect(() => ops.crossEntropy(x3, t2)).toThrow(/\[N, C\]/);
    for (const a of [x, tf, t2, x3]) a.dispose();
  });
  it('f16 storage', async () => {
    if (!dev.caps.f16) return;
    const tg = makeTargets(9, 129, 5);
    for (const reduction of ['mean', 'none'] as const) {
      await checkOp(dev, { dtype: 'f16', inputs: [{ shape: [9, 129], lo: -3, hi: 3 }], run: ([x]) => ops.crossEntropy(x!, tg, { reduction }), ref: ([x]) => ceRef(x!, tg, reduction, -100) });
    }
  });
  it('CLIP-style symmetric loss on a transposed view matches the reference', async () => {
    // logits and logits.T both against arange(B), as in the contrastive loss.
    const B = 6;
    const xs = randomData(B * B, 8, -3, 3);
    const x = Tensor.from(dev, xs, [B, B]);
    const tg = Array.from({ length: B }, (_, i) => i);
    const l = scope(() => ops.scale(ops.add(ops.crossEntropy(x, tg), ops.crossEntropy(ops.transpose(x), tg)), 0.5));
    const xt = new Float64Array(B * B);
    for (let i = 0; i < B; i++) for (let j = 0; j < B; j++) xt[j * B + i] = xs[i * B + j]!;
    const want = 0.5 * (ceRef({ data: xs, shape: [B, B] }, tg, 'mean', -100).data[0]! + ceRef({ data: xt, shape: [B, B] }, tg, 'mean', -100).data[0]!);
    expect(relErr([await l.item()], [want])).toBeLessThanOrEqual(1e-6);
    l.dispose();
    x.dispose();
  });
  it('keeps live bytes flat over repeated forward/backward', async () => {
    const tg = makeTargets(8, 5, 2, -100, 3);
    const step = () =>
      scope(() => {
        const x = Tensor.from(dev, randomData(40, 3), [8, 5]);
        x.requiresGrad = true;
        const l = ops.add(ops.crossEntropy(x, tg), ops.sum(ops.crossEntropy(x, tg, { reduction: 'none' })));
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
