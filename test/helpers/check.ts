import { expect } from 'vitest';
import type { Device } from '../../src/gpu/device.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { finiteDiffGrads, randomNd, relErr, type Nd } from './ref.js';

export interface InputSpec {
  shape: number[];
  lo?: number;
  hi?: number;
  /** Check this input's gradient (default true). */
  grad?: boolean;
  /** Fixed values instead of random ones. */
  values?: ArrayLike<number>;
}

export interface OpCheck {
  inputs: InputSpec[];
  run: (ts: Tensor[]) => Tensor;
  ref: (xs: Nd[]) => Nd;
  dtype?: 'f32' | 'f16';
  fwdTol?: number;
  bwdTol?: number;
  /** Skip the gradient check (ops without a gradient). */
  noBackward?: boolean;
  seed?: number;
}

/** Forward vs the float64 reference, backward vs float64 finite differences of the reference. */
export async function checkOp(dev: Device, spec: OpCheck): Promise<{ fwd: number; grads: number[] }> {
  const dtype = spec.dtype ?? 'f32';
  const fwdTol = spec.fwdTol ?? (dtype === 'f16' ? 1e-2 : 1e-5);
  const bwdTol = spec.bwdTol ?? (dtype === 'f16' ? 1e-2 : 1e-5);
  const seed = spec.seed ?? 1234;
  const xs: Nd[] = spec.inputs.map((s, k) => (s.values ? { data: Float64Array.from(s.values), shape: [...s.shape] } : randomNd(s.shape, seed + 17 * k, s.lo ?? -1, s.hi ?? 1)));
  // f16 inputs are rounded first so the reference sees what the GPU sees.
  if (dtype === 'f16') for (const x of xs) x.data = Float64Array.from(new Float32Array(await roundF16(dev, x)));
  return scopeAsync(async () => {
    const ts = xs.map((x, k) => {
      const t = Tensor.from(dev, x.data, x.shape, dtype);
      t.requiresGrad = !spec.noBackward && spec.inputs[k]!.grad !== false;
      return t;
    });
    const out = spec.run(ts);
    const ref = spec.ref(xs);
    expect(out.shape).toEqual(ref.shape);
    const got = await out.data();
    const fwd = relErr(got, ref.data);
    expect(fwd, 'forward error').toBeLessThanOrEqual(fwdTol);
    const grads: number[] = [];
    if (!spec.noBackward) {
      const r = randomNd(ref.shape, seed + 999, -1, 1);
      if (dtype === 'f16') r.data = Float64Array.from(new Float32Array(await roundF16(dev, r)));
      const which = spec.inputs.map((s) => s.grad !== false);
      const fd = finiteDiffGrads(spec.ref, xs, r, which);
      out.backward(Tensor.from(dev, r.data, r.shape, dtype));
      for (let k = 0; k < ts.length; k++) {
        const want = fd[k];
        if (!want) continue;
        const g = ts[k]!.grad;
        expect(g, `gradient of input ${k}`).not.toBeNull();
        expect(g!.shape).toEqual(xs[k]!.shape);
        const e = relErr(await g!.data(), want);
        grads.push(e);
        expect(e, `gradient error of input ${k}`).toBeLessThanOrEqual(bwdTol);
      }
    }
    for (const t of ts) t.dispose();
    return { fwd, grads };
  });
}

async function roundF16(dev: Device, x: Nd): Promise<Float32Array> {
  const t = Tensor.from(dev, x.data, x.shape, 'f16');
  const d = (await t.data()) as Float32Array;
  t.dispose();
  return d;
}
