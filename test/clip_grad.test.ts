// Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_) against a float64 reference.
import { beforeAll, describe, expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits } from '../src/dtype.js';
import type { Device } from '../src/gpu/device.js';
import { clipGradNorm } from '../src/train/clip-grad.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice } from './helpers/device.js';
import { randomData } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

// Sizes around the workgroup (256) and the per-tensor workgroup cap (64·256), plus a scalar.
const SIZES = [1, 7, 256, 1000, 33 * 257, 70_001];

function params(scale: number, dtype: 'f32' | 'f16' = 'f32'): { ps: Tensor[]; grads: Float64Array[] } {
  const ps: Tensor[] = [];
  const grads: Float64Array[] = [];
  SIZES.forEach((n, i) => {
    const p = Tensor.from(dev, new Float32Array(n), [n], dtype);
    p.requiresGrad = true;
    let g = randomData(n, 50 + i, -scale, scale);
    if (dtype === 'f16') g = Float64Array.from(g, (x) => f16BitsToF32(f32ToF16Bits(x)));
    p.grad = Tensor.from(dev, g, [n], dtype);
    ps.push(p);
    grads.push(g);
  });
  return { ps, grads };
}

const norm64 = (gs: Float64Array[]) => Math.sqrt(gs.reduce((a, g) => a + g.reduce((s, x) => s + x * x, 0), 0));

describe('clipGradNorm', () => {
  it('norm and clipped gradients match float64 (clipping, no clipping, norm only)', async () => {
    await scopeAsync(async () => {
      for (const [maxNorm, scale] of [[1, 1], [1e6, 1], [null, 0.5]] as const) {
        const { ps, grads } = params(scale);
        const want = norm64(grads);
        const n = clipGradNorm(ps, maxNorm);
        expect(n.shape).toEqual([]);
        const got = await n.item();
        expect(Math.abs(got - want) / want).toBeLessThan(1e-5);
        const coef = maxNorm === null ? 1 : Math.min(maxNorm / (want + 1e-6), 1);
        for (let i = 0; i < ps.length; i++) {
          const g = (await (ps[i] as Tensor).grad!.data()) as Float32Array;
          const ref = grads[i] as Float64Array;
          let err = 0;
          let mx = 0;
          for (let k = 0; k < ref.length; k++) {
            err = Math.max(err, Math.abs((g[k] as number) - (ref[k] as number) * coef));
            mx = Math.max(mx, Math.abs((ref[k] as number) * coef));
          }
          expect(err / mx, `size ${SIZES[i]} maxNorm ${maxNorm}`).toBeLessThan(1e-5);
        }
        if (maxNorm === 1) {
          // After clipping to 1 the norm is 1 (up to the 1e-6 guard).
          const again = clipGradNorm(ps, null);
          expect(await again.item()).toBeCloseTo(1, 5);
        }
        for (const p of ps) p.dispose();
      }
    });
  });

  it('gradients that share memory (add passes g to both inputs) are each scaled once', async () => {
    await scopeAsync(async () => {
      const a = Tensor.from(dev, [0, 0, 0], [3]);
      const b = Tensor.from(dev, [0, 0, 0], [3]);
      a.requiresGrad = b.requiresGrad = true;
      const g = Tensor.from(dev, [3, 0, 4], [3]);
      a.grad = g;
      b.grad = g.retainHandle();
      const n = clipGradNorm([a, b], 1);
      // Norm of [3,0,4,3,0,4] = √50; each gradient becomes g / √50.
      expect(await n.item()).toBeCloseTo(Math.sqrt(50), 5);
      const s = 1 / (Math.sqrt(50) + 1e-6);
      for (const p of [a, b]) {
        const d = (await p.grad!.data()) as Float32Array;
        expect(d[0]).toBeCloseTo(3 * s, 6);
        expect(d[2]).toBeCloseTo(4 * s, 6);
      }
      // No gradient at all: norm 0.
      const c = Tensor.from(dev, [1], [1]);
      expect(await clipGradNorm([c], 1).item()).toBe(0);
      for (const t of [a, b, c]) t.dispose();
    });
  });

  it('f16 gradients: norm accumulated in f32', async () => {
    if (!dev.caps.f16) return;
    await scopeAsync(async () => {
      const { ps, grads } = params(0.5, 'f16');
      const want = norm64(grads);
      const got = await clipGradNorm(ps, 2).item();
      expect(Math.abs(got - want) / want).toBeLessThan(1e-4);
      const g = (await ps[3]!.grad!.data()) as Float32Array;
      const coef = Math.min(2 / (want + 1e-6), 1);
      expect(Math.abs((g[5] as number) - (grads[3]![5] as number) * coef)).toBeLessThan(1e-2 * Math.abs(grads[3]![5] as number) + 1e-3);
      for (const p of ps) p.dispose();
    });
  });
});
