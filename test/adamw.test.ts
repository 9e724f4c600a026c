import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeError } from '../src/errors.js';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import { AdamW, type ParamGroupSpec } from '../src/optim/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice } from './helpers/device.js';
import { randomData, read, relErr } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

interface RefParam {
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
  step: number;
}
interface RefGroup {
  lr: number;
  betas: [number, number];
  eps: number;
  wd: number;
}

/** float64 torch.optim.AdamW step for one parameter. */
function refStep(s: RefParam, g: ArrayLike<number>, h: RefGroup): void {
  s.step++;
  const [b1, b2] = h.betas;
  const bc1 = 1 - b1 ** s.step;
  const bc2 = 1 - b2 ** s.step;
  for (let i = 0; i < s.p.length; i++) {
    s.p[i]! *= 1 - h.lr * h.wd;
    s.m[i] = b1 * s.m[i]! + (1 - b1) * g[i]!;
    s.v[i] = b2 * s.v[i]! + (1 - b2) * g[i]! * g[i]!;
    s.p[i]! -= (h.lr / bc1) * (s.m[i]! / (Math.sqrt(s.v[i]!) / Math.sqrt(bc2) + h.eps));
  }
}

const shapes = { w1: [7, 33], b1: [33], w2: [1000], s: [1] } as const;
type Name = keyof typeof shapes;
const names = Object.keys(shapes) as Name[];
const groupA: RefGroup = { lr: 1e-2, betas: [0.8, 0.99], eps: 1e-8, wd: 0.1 };
const groupB: RefGroup = { lr: 5e-3, betas: [0.9, 0.999], eps: 1e-6, wd: 0 };
const groupOf: Record<Name, RefGroup> = { w1: groupA, b1: groupA, w2: groupB, s: groupB };

function size(n: Name): number {
  return (shapes[n] as readonly number[]).reduce((a, b) => a * b, 1);
}
function gradData(n: Name, step: number): Float64Array {
  return randomData(size(n), 100 * step + names.indexOf(n), -1, 1);
}
function makeParams(): Record<Name, Tensor> {
  const out = {} as Record<Name, Tensor>;
  names.forEach((n, k) => {
    out[n] = Tensor.from(dev, randomData(size(n), 7 + k, -1, 1), shapes[n]);
    out[n].requiresGrad = true;
  });
  return out;
}
function groups(p: Record<Name, Tensor>): ParamGroupSpec[] {
  return [
    { params: [p.w1, p.b1], lr: groupA.lr, betas: groupA.betas, weightDecay: groupA.wd },
    { params: [p.w2, p.s], lr: groupB.lr, eps: groupB.eps, weightDecay: groupB.wd },
  ];
}
/** Sets the step's gradients (s has none at step 2; w1's is a transposed, non-contiguous view). */
function setGrads(p: Record<Name, Tensor>, step: number): void {
  for (const n of names) {
    if (n === 's' && step === 2) continue;
    const g = gradData(n, step);
    if (n === 'w1') {
      const t = new Float64Array(g.length);
      for (let i = 0; i < 7; i++) for (let j = 0; j < 33; j++) t[j * 7 + i] = g[i * 33 + j]!;
      const base = Tensor.from(dev, t, [33, 7]);
      p[n].grad = base.view([7, 33], [1, 7], 0);
      base.dispose();
    } else p[n].grad = Tensor.from(dev, g, shapes[n]);
  }
}

describe('AdamW', () => {
  it('matches a float64 torch.optim.AdamW over 5 steps with two groups (one without weight decay)', async () => {
    const p = makeParams();
    const ref = {} as Record<Name, RefParam>;
    for (const n of names) ref[n] = { p: Float64Array.from(await read(p[n])), m: new Float64Array(size(n)), v: new Float64Array(size(n)), step: 0 };
    const opt = new AdamW(groups(p), { lr: 1 });
    expect(opt.paramGroups.map((g) => g.lr)).toEqual([groupA.lr, groupB.lr]);
    expect(opt.paramGroups[1]!.betas).toEqual([0.9, 0.999]);
    for (let step = 0; step < 5; step++) {
      setGrads(p, step);
      opt.step();
      opt.zeroGrad();
      for (const n of names) if (!(n === 's' && step === 2)) refStep(ref[n], gradData(n, step), groupOf[n]);
    }
    expect(names.every((n) => p[n].grad === null)).toBe(true);
    const sd = await opt.stateDict();
    for (const [k, n] of names.entries()) {
      const got = await read(p[n]);
      const init = randomData(size(n), 7 + k, -1, 1);
      // The parameters did move (by ~5 lr), and to where float64 AdamW puts them.
      expect(relErr(got, init)).toBeGreaterThan(groupOf[n].lr);
      expect(relErr(got, ref[n].p), `param ${n}`).toBeLessThanOrEqual(1e-5);
      const st = sd.state[k]!;
      expect(st.step).toBe(ref[n].step);
      expect(relErr(st.expAvg, ref[n].m), `m of ${n}`).toBeLessThanOrEqual(1e-5);
      expect(relErr(st.expAvgSq, ref[n].v), `v of ${n}`).toBeLessThanOrEqual(1e-5);
    }
    expect(sd.state[3]!.step).toBe(4);
    expect(sd.paramGroups.map((g) => g.params)).toEqual([[0, 1], [2, 3]]);
    opt.dispose();
    for (const n of names) p[n].dispose();
  });

  it('stateDict / loadStateDict round trip continues identically', async () => {
    const a = makeParams();
    const optA = new AdamW(groups(a));
    for (let step = 0; step < 3; step++) {
      setGrads(a, step);
      optA.step();
      optA.zeroGrad();
    }
    const sd = await optA.stateDict();
    // A structured clone stands in for saving to disk.
    const saved = structuredClone(sd);
    // A fresh optimizer over copies of the parameters, deliberately with other hyperparameters.
    const b = {} as Record<Name, Tensor>;
    for (const n of names) {
      b[n] = Tensor.from(dev, await read(a[n]), shapes[n]);
      b[n].requiresGrad = true;
    }
    const optB = new AdamW([{ params: [b.w1, b.b1] }, { params: [b.w2, b.s] }], { lr: 0.5, weightDecay: 0.5 });
    optB.loadStateDict(saved);
    expect(optB.paramGroups.map((g) => [g.lr, g.weightDecay, g.eps])).toEqual(optA.paramGroups.map((g) => [g.lr, g.weightDecay, g.eps]));
    for (let step = 3; step < 5; step++) {
      for (const [p, opt] of [[a, optA], [b, optB]] as const) {
        setGrads(p, step);
        opt.step();
        opt.zeroGrad();
      }
    }
    for (const n of names) {
      const pa = new Uint32Array((await read(a[n])).buffer);
      const pb = new Uint32Array((await read(b[n])).buffer);
      expect([...pb], `param ${n}`).toEqual([...pa]);
    }
    const sa = await optA.stateDict();
    const sb = await optB.stateDict();
    expect(sb.state.map((s) => s!.step)).toEqual(sa.state.map((s) => s!.step));
    expect([...sb.state[2]!.expAvgSq]).toEqual([...sa.state[2]!.expAvgSq]);
    // Mismatched state is rejected before anything changes.
    const bad = structuredClone(sa);
    bad.state[0]!.expAvg = new Float32Array(3);
    expect(() => optB.loadStateDict(bad)).toThrow(ShapeError);
    expect(() => optB.loadStateDict({ state: [], paramGroups: [] })).toThrow(ShapeError);
    optA.dispose();
    optB.dispose();
    for (const n of names) {
      a[n].dispose();
      b[n].dispose();
    }
  });

  it('f16 parameters (f32 moments)', async () => {
    if (!dev.caps.f16) return;
    const n = 129;
    const init = randomData(n, 3);
    const p = Tensor.from(dev, init, [n], 'f16');
    const s: RefParam = { p: Float64Array.from(await read(p)), m: new Float64Array(n), v: new Float64Array(n), step: 0 };
    const opt = new AdamW([p], { lr: 1e-2 });
    for (let step = 0; step < 3; step++) {
      const g = randomData(n, 50 + step);
      p.grad = Tensor.from(dev, g, [n], 'f16');
      refStep(s, await read(p.grad), { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, wd: 1e-2 });
      opt.step();
      opt.zeroGrad();
    }
    expect(relErr(await read(p), s.p)).toBeLessThanOrEqual(1e-2);
    opt.dispose();
    p.dispose();
  });

  it('rejects non-contiguous parameters and mismatched gradients', () => {
    const base = ops.zeros(dev, [3, 4]);
    const t = ops.transpose(base);
    expect(() => new AdamW([t])).toThrow(ShapeError);
    base.requiresGrad = true;
    const opt = new AdamW([base]);
    base.grad = ops.zeros(dev, [4, 3]);
    expect(() => opt.step()).toThrow(ShapeError);
    opt.zeroGrad();
    expect(base.grad).toBeNull();
    for (const x of [t, base]) x.dispose();
    opt.dispose();
  });
});
