// Float64 CPU references and the error metric the acceptance criteria use.
import type { Tensor } from '../../src/tensor/tensor.js';

export interface Nd {
  data: Float64Array;
  shape: number[];
}

export function nd(data: ArrayLike<number>, shape: number[]): Nd {
  return { data: Float64Array.from(data), shape: [...shape] };
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Deterministic test data (mulberry32), in [lo, hi). */
export function randomData(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  let a = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}

export function randomNd(shape: number[], seed: number, lo = -1, hi = 1): Nd {
  return { data: randomData(size(shape), seed, lo, hi), shape: [...shape] };
}

/** max|got − ref| / max|ref| over the tensor (absolute when ref is all zero). */
export function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (got.length !== ref.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i]!;
    const r = ref[i]!;
    if (Number.isNaN(g) !== Number.isNaN(r)) return Infinity;
    if (Number.isNaN(r)) continue;
    if (!Number.isFinite(r) || !Number.isFinite(g)) {
      if (g !== r) return Infinity;
      continue;
    }
    num = Math.max(num, Math.abs(g - r));
    den = Math.max(den, Math.abs(r));
  }
  return den === 0 ? num : num / den;
}

/** Index helper for broadcasting references: value of x at the broadcast multi-index of out. */
export function broadcastIndex(outShape: readonly number[], inShape: readonly number[]): (i: number) => number {
  const os = strides(outShape);
  const is = strides(inShape);
  const lead = outShape.length - inShape.length;
  return (i: number) => {
    let off = 0;
    let rest = i;
    for (let d = 0; d < outShape.length; d++) {
      const c = Math.floor(rest / os[d]!);
      rest -= c * os[d]!;
      const k = d - lead;
      if (k >= 0 && inShape[k] !== 1) off += c * is[k]!;
    }
    return off;
  };
}

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Elementwise map with broadcasting over any number of inputs. */
export function mapNd(xs: Nd[], f: (...v: number[]) => number): Nd {
  const shape = xs.reduce<number[]>((s, x) => broadcastShape(s, x.shape), []);
  const n = size(shape);
  const idx = xs.map((x) => broadcastIndex(shape, x.shape));
  const out = new Float64Array(n);
  const v = new Array<number>(xs.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < xs.length; k++) v[k] = xs[k]!.data[idx[k]!(i)]!;
    out[i] = f(...v);
  }
  return { data: out, shape };
}

/**
 * Gradients of L = Σ ref(xs) ∘ r with respect to each input, by float64 central differences on the
 * reference. Accurate to ~1e-9 relative for smooth ops, so it checks GPU backward kernels at 1e-5.
 */
export function finiteDiffGrads(ref: (xs: Nd[]) => Nd, xs: Nd[], r: Nd, which: boolean[], h = 1e-6): (Float64Array | null)[] {
  const loss = (ys: Nd) => {
    let s = 0;
    for (let i = 0; i < ys.data.length; i++) s += ys.data[i]! * r.data[i]!;
    return s;
  };
  return xs.map((x, k) => {
    if (!which[k]) return null;
    const g = new Float64Array(x.data.length);
    for (let i = 0; i < x.data.length; i++) {
      const orig = x.data[i]!;
      const step = h * Math.max(1, Math.abs(orig));
      x.data[i] = orig + step;
      const lp = loss(ref(xs));
      x.data[i] = orig - step;
      const lm = loss(ref(xs));
      x.data[i] = orig;
      g[i] = (lp - lm) / (2 * step);
    }
    return g;
  });
}

export async function read(t: Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}
