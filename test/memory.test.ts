import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import { AdamW } from '../src/optim/index.js';
import { keep, scope, scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice, inBrowser } from './helpers/device.js';
import { randomData } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

const V = 13;
const D = 8;
const H = 16;
const O = 3;
const B = 4;
const T = 3;
const tokens = [...randomData(B * T, 5, 0, V)].map(Math.floor);

interface Model {
  emb: Tensor;
  w1: Tensor;
  b1: Tensor;
  w2: Tensor;
  b2: Tensor;
}

function param(data: ArrayLike<number>, shape: number[]): Tensor {
  const t = Tensor.from(dev, data, shape);
  t.requiresGrad = true;
  return t;
}

/** x [n, k] times w [k, m] from broadcasting and a sum. */
// TODO(matmul): switch to ops.matmul once src/ops/matmul.ts lands; the memory check is the same.
function linear(x: Tensor, w: Tensor, b: Tensor): Tensor {
  return ops.add(ops.sum(ops.mul(ops.unsqueeze(x, 2), w), 1), b);
}

/** Embedding → mean over tokens → dropout → linear+gelu → concat skip → linear → MSE. */
function loss(m: Model, target: Tensor, seed: number, training: boolean): Tensor {
  const e = ops.mean(ops.gather(m.emb, tokens, [B, T]), 1);
  const x = ops.dropout(e, 0.1, seed, { training });
  const h = ops.gelu(linear(x, m.w1, m.b1));
  const y = linear(ops.concat([h, x], 1), m.w2, m.b2);
  const d = ops.sub(y, target);
  return ops.mean(ops.mul(d, d));
}

describe('memory', () => {
  it('live GPU bytes stay flat over a 1000-iteration training loop (forward, backward, AdamW step)', async () => {
    const m: Model = {
      emb: param(randomData(V * D, 1), [V, D]),
      w1: param(randomData(D * H, 2, -0.3, 0.3), [D, H]),
      b1: param(new Float32Array(H), [H]),
      w2: param(randomData((H + D) * O, 3, -0.3, 0.3), [H + D, O]),
      b2: param(new Float32Array(O), [O]),
    };
    const target = Tensor.from(dev, randomData(B * O, 4), [B, O]);
    const opt = new AdamW([
      { params: [m.emb, m.w1, m.w2], weightDecay: 0.01 },
      { params: [m.b1, m.b2], weightDecay: 0 },
    ], { lr: 1e-2 });
    const evalLoss = () => scopeAsync(() => loss(m, target, 0, false).item());
    const before = await evalLoss();

    // Chromium (SwiftShader) is slower per dispatch; Node runs the full 1000.
    const iters = inBrowser ? 100 : 1000;
    let live10 = 0;
    let alloc10 = 0;
    let peak10 = 0;
    for (let i = 1; i <= iters; i++) {
      if (i === 10) dev.pool.resetPeak();
      scope(() => {
        const l = loss(m, target, i, true);
        l.backward();
        opt.step();
        opt.zeroGrad();
      });
      if (i === 10) {
        live10 = dev.pool.liveBytes;
        alloc10 = dev.pool.allocations;
        peak10 = dev.pool.peakBytes;
        dev.pool.resetPeak();
      }
    }
    const liveEnd = dev.pool.liveBytes;
    const allocEnd = dev.pool.allocations;
    const peakEnd = dev.pool.peakBytes;
    const after = await evalLoss();

    expect(live10).toBeGreaterThan(0);
    expect(Math.abs(liveEnd - live10)).toBeLessThanOrEqual(0.01 * live10);
    // The pool serves every later iteration from its free lists.
    expect(allocEnd).toBe(alloc10);
    expect(peakEnd).toBeLessThanOrEqual(peak10 * 1.01);
    // And it trained.
    expect(after).toBeLessThan(before * 0.5);

    opt.dispose();
    for (const t of [...Object.values(m), target]) t.dispose();
  });

  it('scope releases its tensors; returned and kept ones survive; nothing leaks after a training step', async () => {
    const base = dev.pool.liveBytes;
    let temp: Tensor | null = null;
    let kept: Tensor | null = null;
    let inner: Tensor | null = null;
    const returned = scope(() => {
      const a = ops.ones(dev, [7]);
      temp = a;
      const b = ops.scale(a, 2);
      kept = keep(ops.add(a, b));
      // A tensor returned from a nested scope moves to this one, and dies with it.
      inner = scope(() => ops.scale(b, 10));
      return { out: b };
    }).out;
    expect(temp!.isDisposed).toBe(true);
    expect(inner!.isDisposed).toBe(true);
    expect(returned.isDisposed).toBe(false);
    expect(kept!.isDisposed).toBe(false);
    expect([...(await returned.data())]).toEqual(Array(7).fill(2));
    expect([...(await kept!.data())]).toEqual(Array(7).fill(3));
    returned.dispose();
    kept!.dispose();
    expect(dev.pool.liveBytes).toBe(base);

    // A whole training step: only the parameters and the optimizer's moments stay.
    const w = param(randomData(33, 8), [33]);
    const opt = new AdamW([w]);
    const afterParam = dev.pool.liveBytes;
    scope(() => {
      const l = ops.sum(ops.mul(ops.dropout(ops.pad(w, [[1, 2]]), 0.5, 3), ops.concat(ops.split(w, [30, 3]).concat([ops.zeros(dev, [3])]))));
      l.backward();
      expect(w.grad).not.toBeNull();
      opt.step();
      opt.zeroGrad();
    });
    // m and v, one buffer each of w's size class.
    expect(dev.pool.liveBytes - afterParam).toBe(2 * (afterParam - base));
    opt.dispose();
    w.dispose();
    expect(dev.pool.liveBytes).toBe(base);
  });
});
